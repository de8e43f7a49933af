"""Deterministic arm and variant assignment (pure: no I/O).

A customer's position is a fraction in [0, 1) taken from SHA-256 of "<salt>:<purpose>:<id>":
the same campaign salt and customer always land in the same place, different purposes
(holdout, variant) are independent draws, and nothing depends on the order customers
arrive in. The result is stored in campaigns_assignment anyway, so editing a campaign's
percentage after launch cannot move people between arms retroactively.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

_SCALE = float(1 << 64)


def fraction(salt: str, purpose: str, customer_id: int) -> float:
    """Uniform in [0, 1): the first 8 bytes of the digest as an unsigned integer / 2^64."""
    digest = hashlib.sha256(f"{salt}:{purpose}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def in_holdout(*, salt: str, customer_id: int, percent: Decimal | float) -> bool:
    return fraction(salt, "holdout", customer_id) < float(percent) / 100.0


@dataclass(frozen=True)
class Arm:
    group: str  # "treatment" | "holdout"
    variant: str  # "" for the holdout and for campaigns without variants


def variant_for(*, salt: str, customer_id: int, variants: Sequence[dict]) -> str:
    """Pick a variant key with probability weight / total weight (independent of the holdout draw)."""
    if not variants:
        return ""
    total = sum(float(v["weight"]) for v in variants)
    point = fraction(salt, "variant", customer_id) * total
    running = 0.0
    for variant in variants:
        running += float(variant["weight"])
        if point < running:
            return variant["key"]
    return variants[-1]["key"]  # float rounding at the very top of the range


def assign(*, salt: str, customer_id: int, percent: Decimal | float, variants: Sequence[dict]) -> Arm:
    if in_holdout(salt=salt, customer_id=customer_id, percent=percent):
        return Arm("holdout", "")
    return Arm("treatment", variant_for(salt=salt, customer_id=customer_id, variants=variants))
