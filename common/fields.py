"""Partial updates with explicit keyword arguments: a service names every field it may
change, and UNSET tells "not sent" apart from None ("clear it")."""

from __future__ import annotations

from typing import Any, Final


class Unset:
    """The type of UNSET: a keyword argument the caller did not pass."""

    _instance: Unset | None = None

    def __new__(cls) -> Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()


def given(**values: Any) -> dict[str, Any]:
    """The keyword arguments a caller passed: every value but UNSET."""
    return {name: value for name, value in values.items() if value is not UNSET}
