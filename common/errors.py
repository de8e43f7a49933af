"""Domain errors: every problem found, each with a path and a machine-readable code.

Pure Python (no Django), so the rule language can raise them. An error says what kind of
failure it is by its class; `common.api.http_status` maps the kind to HTTP, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    path: str
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"path": self.path, "code": self.code, "message": self.message}


@dataclass
class DomainError(Exception):
    """Bad input or a broken business rule. Holds every problem found, not just the first."""

    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def single(cls, *, path: str, code: str, message: str) -> DomainError:
        return cls(problems=[Problem(path=path, code=code, message=message)])

    def __str__(self) -> str:
        return "; ".join(f"{p.path}: {p.code}: {p.message}" for p in self.problems)

    @property
    def messages(self) -> list[str]:
        """The problems' messages, for a page that lists them above a form."""
        return [problem.message for problem in self.problems]

    def as_payload(self) -> dict:
        return {"errors": [p.as_dict() for p in self.problems]}

    def prefixed(self, prefix: str) -> DomainError:
        """The same error with every path under `prefix` (a service names its argument)."""
        return type(self)(problems=[Problem(f"{prefix}.{p.path}" if p.path else prefix, p.code, p.message)
                                    for p in self.problems])


class Unauthenticated(DomainError):
    """The caller must sign in first."""


class Forbidden(DomainError):
    """The caller may not do this."""


class NotFound(DomainError):
    """What the request names does not exist (for this tenant)."""


class Conflict(DomainError):
    """The request is well formed but the object's state does not allow it."""


class Gone(DomainError):
    """It existed once and can no longer be used (a spent or expired token)."""


class TooLarge(DomainError):
    """The request carries more than the limit."""
