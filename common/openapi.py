"""The API's errors in its OpenAPI document (a drf-spectacular postprocessing hook, named
in SPECTACULAR_SETTINGS): every operation documents the statuses it can answer with, each
in the one error shape of common.errors, so a client generated from the document handles
them and the statuses the API answers are all in it."""

from __future__ import annotations

ERRORS = {
    "type": "object", "required": ["errors"],
    "description": "Every problem found, each with the path of the input it concerns and a machine-readable code.",
    "properties": {"errors": {"type": "array", "items": {
        "type": "object", "required": ["path", "code", "message"],
        "properties": {"path": {"type": "string", "description": "e.g. `events[3].properties.email`; empty: the "
                                                                  "request as a whole"},
                       "code": {"type": "string", "description": "e.g. `required`, `unknown_segment`"},
                       "message": {"type": "string"}}}}},
}
READ_STATUSES = {
    "400": "Bad input (a parameter, filter or cursor): each problem with its path and code",
    "401": "No session and no valid API key",
    "403": "The session's role or the key's scopes do not allow this",
    "404": "Nothing of this id or key in this workspace",
}
WRITE_STATUSES = {
    **READ_STATUSES,
    "400": "Bad input: each problem with its path and code (nothing is stored)",
    "409": "The object's state does not allow it (e.g. a campaign's transition, a segment still referenced)",
    "413": "The body is over the endpoint's limit",
}
_METHODS = {"get": READ_STATUSES, "post": WRITE_STATUSES, "put": WRITE_STATUSES, "patch": WRITE_STATUSES,
            "delete": WRITE_STATUSES}


def document_errors(result, generator, request, public):  # noqa: ARG001 - the hook's signature
    result.setdefault("components", {}).setdefault("schemas", {})["Errors"] = ERRORS
    errors = {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {}) if method in _METHODS else {}
            for status, description in _METHODS.get(method, {}).items():
                responses.setdefault(status, {"description": description, "content": errors})
    return result
