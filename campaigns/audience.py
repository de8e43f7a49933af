"""Ad-audience export: a segment's members as normalised, SHA-256-hashed identifiers.

Normalisation follows what the ad platforms match on: emails trimmed and lower-cased;
phones reduced to E.164 digits (country code included, no "+", no spaces or punctuation;
a leading "00" is the international prefix). A phone without a country code cannot be
normalised safely and is left out rather than guessed. Only members who granted `ads`
consent are exported. Rows are streamed from a
server-side cursor, so a million members never sit in memory.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator

from django.db.models import Exists, OuterRef

from common.csv import stream_rows
from customers.models import Consent
from segments.selectors.members import segment_members

PHONE_TRAITS = ("phone", "phone_number", "mobile")
_NON_DIGITS = re.compile(r"\D")


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def normalise_email(value: str | None) -> str:
    value = (value or "").strip().lower()
    return value if "@" in value and " " not in value else ""


def normalise_phone(value) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return ""
    text = str(value).strip()
    international = text.startswith("+") or text.startswith("00")
    digits = _NON_DIGITS.sub("", text)
    if text.startswith("00"):
        digits = digits[2:]
    if not international or not 8 <= len(digits) <= 15 or digits.startswith("0"):
        return ""
    return digits


def audience_rows(*, segment, campaign=None) -> Iterator[tuple[str, str]]:
    """Members who granted `ads` consent (an upload to an ad platform is advertising to
    them; no answer is no consent). A campaign's audience is its treatment arm only:
    uploading the holdout would expose it to the ads and erase the lift being measured."""
    members = segment_members(segment=segment).filter(
        Exists(Consent.objects.filter(customer=OuterRef("pk"), channel=Consent.Channel.ADS, granted=True)))
    if campaign is not None:
        members = members.filter(campaign_assignments__campaign=campaign, campaign_assignments__group="treatment")
    members = members.order_by("id").values_list("email", "traits")
    for email, traits in members.iterator(chunk_size=2000):
        phone = next((normalise_phone(traits.get(k)) for k in PHONE_TRAITS if traits and traits.get(k)), "")
        email = normalise_email(email)
        if email or phone:
            yield (sha256_hex(email) if email else "", sha256_hex(phone) if phone else "")


def audience_csv(*, segment, campaign=None) -> Iterator[str]:
    """CSV text chunks (header first), for a StreamingHttpResponse."""
    yield from stream_rows(itertools.chain([("email_sha256", "phone_sha256")],
                                           audience_rows(segment=segment, campaign=campaign)))
