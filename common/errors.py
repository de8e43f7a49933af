"""Domain errors: every problem found, each with a path and a machine-readable code.

Pure Python (no Django), so the rule language can raise them. An error says what kind of
failure it is by its class; `common.api.http_status` maps the kind to HTTP, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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


# ---------------------------------------------------------------------------- codes
# A problem's machine-readable code: a member of its domain's enum (a str, so payloads and
# comparisons with plain strings are unchanged).

class Code(StrEnum):
    """Codes every domain uses: a value's shape, presence, range or a missing object."""

    CONFLICT = "conflict"
    DUPLICATE = "duplicate"
    EMPTY = "empty"
    INVALID = "invalid"
    INVALID_CHOICE = "invalid_choice"
    INVALID_CURSOR = "invalid_cursor"
    INVALID_DATE = "invalid_date"
    INVALID_DATETIME = "invalid_datetime"
    INVALID_EMAIL = "invalid_email"
    INVALID_JSON = "invalid_json"
    INVALID_KEY = "invalid_key"
    INVALID_RANGE = "invalid_range"
    INVALID_TIME = "invalid_time"
    INVALID_TOKEN = "invalid_token"
    INVALID_TYPE = "invalid_type"
    INVALID_VALUE = "invalid_value"
    IN_FUTURE = "in_future"
    INGEST_BACKLOG = "ingest_backlog"  # a workspace's inbox is past its limit: retry later
    IN_THE_PAST = "in_the_past"
    NOT_FOUND = "not_found"
    NOT_UTF8 = "not_utf8"
    NULL_CHARACTERS_NOT_ALLOWED = "null_characters_not_allowed"
    OUT_OF_RANGE = "out_of_range"
    PERMISSION_DENIED = "permission_denied"
    RATE_LIMITED = "rate_limited"
    REQUIRED = "required"
    RESERVED = "reserved"
    SURROGATE_CHARACTERS_NOT_ALLOWED = "surrogate_characters_not_allowed"
    TOO_DEEP = "too_deep"
    TOO_LARGE = "too_large"
    TOO_LONG = "too_long"
    TOO_MANY = "too_many"
    TOO_MANY_COLUMNS = "too_many_columns"
    TOO_SHORT = "too_short"
    TYPE_MISMATCH = "type_mismatch"
    UNKNOWN_CUSTOMER = "unknown_customer"
    UNKNOWN_FIELD = "unknown_field"
    UNKNOWN_SEGMENT = "unknown_segment"
    UNKNOWN_SURVEY = "unknown_survey"


class TenantCode(StrEnum):
    """Workspaces, members, invitations, roles, departments, API keys."""

    ALREADY_MEMBER = "already_member"
    ALREADY_REVOKED = "already_revoked"
    BUILTIN_ROLE = "builtin_role"
    DUPLICATE_INVITATION = "duplicate_invitation"
    DUPLICATE_NAME = "duplicate_name"
    EMAIL_MISMATCH = "email_mismatch"
    EXPIRED_TOKEN = "expired_token"
    INVALID_LOOKUP_KEY = "invalid_lookup_key"
    INVALID_USER_HASH = "invalid_user_hash"
    LAST_ADMIN = "last_admin"
    LOGIN_REQUIRED = "login_required"
    NOT_OPEN = "not_open"
    REVOKED_LOOKUP_KEY = "revoked_lookup_key"
    REVOKED_TOKEN = "revoked_token"
    ROLE_IN_USE = "role_in_use"
    TAKEN = "taken"
    UNKNOWN_DEPARTMENT = "unknown_department"
    UNKNOWN_PERMISSION = "unknown_permission"
    UNKNOWN_SCOPE = "unknown_scope"
    UPPERCASE = "uppercase"
    USED_TOKEN = "used_token"
    WEAK_PASSWORD = "weak_password"


class OpsCode(StrEnum):
    """Operations: metrics, exports, backups."""

    EXPORT_NOT_FAILED = "export_not_failed"
    EXPORT_RUNNING = "export_running"
    METRICS_UNAUTHORIZED = "metrics_unauthorized"
    UNKNOWN_TABLE = "unknown_table"


class CustomerCode(StrEnum):
    """Customer data: traits, events, surveys, consent, CSV and Parquet imports."""

    ALREADY_STARTED = "already_started"
    AMBIGUOUS = "ambiguous"
    BLANK_COLUMN = "blank_column"
    BUILTIN_TRAIT = "builtin_trait"
    CORRUPT_PARQUET = "corrupt_parquet"
    DUPLICATE_COLUMN = "duplicate_column"
    DUPLICATE_TARGET = "duplicate_target"
    EMPTY_FILE = "empty_file"
    INVALID_BODY = "invalid_body"
    MISSING_TARGET = "missing_target"
    NO_HEADER = "no_header"
    NO_ROWS = "no_rows"
    NOT_A_LIST = "not_a_list"
    NOT_FAILED = "not_failed"
    NOT_TEXT = "not_text"
    PERSONAL_EXPOSED = "personal_exposed"
    TYPE_CONFLICT = "type_conflict"
    UNKNOWN_COLUMN = "unknown_column"
    UNKNOWN_KIND = "unknown_kind"
    UNKNOWN_QUESTION = "unknown_question"


class SegmentCode(StrEnum):
    """Segments and the rule language."""

    CYCLE = "cycle"
    INVALID_CSV = "invalid_csv"
    INVALID_DURATION = "invalid_duration"
    INVALID_OP = "invalid_op"
    NOT_DYNAMIC = "not_dynamic"
    NOT_STATIC = "not_static"
    REFERENCED = "referenced"
    TOO_MANY_ROWS = "too_many_rows"
    UNKNOWN_EVENT = "unknown_event"
    UNKNOWN_TRAIT = "unknown_trait"
    UNKNOWN_VERSION = "unknown_version"


class InsightCode(StrEnum):
    """Clustering, predictive models, lookalikes."""

    ALREADY_USED = "already_used"
    NO_PROPOSAL = "no_proposal"
    NOT_FINISHED = "not_finished"
    TOO_LITTLE_DATA = "too_little_data"
    UNKNOWN_FEATURE = "unknown_feature"
    UNKNOWN_GROUP = "unknown_group"


class CampaignCode(StrEnum):
    """Plays, campaigns, schedules, content, webhooks."""

    BEFORE_START = "before_start"
    FINISHED = "finished"
    INCOMPLETE_CAP = "incomplete_cap"
    INVALID_FOR_CHANNEL = "invalid_for_channel"
    INVALID_TRANSITION = "invalid_transition"
    INVALID_URL = "invalid_url"
    LOCKED_AFTER_LAUNCH = "locked_after_launch"
    NAIVE_DATETIME = "naive_datetime"
    NO_FUTURE_OCCASION = "no_future_occasion"
    SEGMENT_DELETED = "segment_deleted"
    TEMPLATE_RENDER = "template_render"
    TEMPLATE_SYNTAX = "template_syntax"
    UNKNOWN_ENDPOINT = "unknown_endpoint"
    UNKNOWN_PLAY = "unknown_play"
    UNKNOWN_VARIANT = "unknown_variant"
