"""The API's body parser (settings: REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]).

TRICKY: its own module, importing nothing of DRF's views: rest_framework.views reads the
parser setting when it is imported, so a module that imports both would import itself."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from common.jsonvalues import loads


class JsonBody(JSONParser):
    """Every API body: parsed by common.jsonvalues.loads, so nesting past the parsers'
    recursion is a 400 naming the path (never a RecursionError), and NaN or a lone
    surrogate reaches the input checks to be refused there with its path."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return loads(stream.read())
        except ValueError as error:
            raise ParseError(f"The body is not valid JSON: {error}") from None
