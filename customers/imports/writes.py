"""One chunk of mapped rows into the one write path: customers and events as `Message`s into
customers.ingest, survey answers into customers.feedback; each row's problems kept with
its row and column. A chunk that fails as a whole is retried row by row (isolating)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DataError, IntegrityError, connection, transaction

from common.errors import Code
from customers.feedback import SurveyAnswerIn, survey_answers_record
from customers.imports import mapping as maps
from customers.imports import parsing
from customers.imports.customer_upsert import upsert_customers
from customers.ingest.message import ANON_PREFIX, Message
from customers.ingest.store import ingest_messages
from customers.selectors import customers_by_external_ids
from segments.rules.vocabulary import BUILTIN_TRAITS, TraitType


SOURCE = "csv_import"


@dataclass
class RowProblem:
    row: int
    column: str
    code: str
    message: str


@dataclass
class Outcome:
    imported: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    def add(self, other: "Outcome") -> "Outcome":
        self.imported += other.imported
        self.unchanged += other.unchanged
        self.problems += other.problems
        return self

    @property
    def failed_rows(self) -> int:
        return len({p.row for p in self.problems})


@dataclass
class _Prepared:
    """A row read into typed values (or its problems)."""

    row: int
    values: dict[str, Any]  # target → value (empty cells left out)


def _identity(external_id: str) -> tuple[str | None, str | None]:
    if external_id.startswith(ANON_PREFIX):
        return None, external_id[len(ANON_PREFIX):]
    return external_id, None


@dataclass(frozen=True)
class _Cell:
    """How one mapped column's cells are read, worked out once per chunk, not per cell."""

    index: int
    name: str
    target: str
    type: TraitType | None
    builtin: str | None  # the built-in trait it fills (checked beyond its type), if any
    limit: int | None  # the longest text its field holds (non-trait targets)


def _cells_of(plan: maps.Plan) -> list[_Cell]:
    out = []
    for column in plan.columns:
        key = column.target[len(maps.TRAIT):] if column.target.startswith(maps.TRAIT) else None
        out.append(_Cell(column.index, column.name, column.target, column.type,
                         key if key in BUILTIN_TRAITS else None, _LIMITS.get(column.target)))
    return out


def _prepare(rows: list[tuple[int, Any]], plan: maps.Plan) -> tuple[list[_Prepared], list[RowProblem]]:
    prepared, problems = [], []
    cells_of = _cells_of(plan)
    required = [(target, plan.column_of(target).name) for target in maps.REQUIRED[plan.kind]]
    convert, check_builtin = maps.convert, maps.check_builtin
    for row, cells in rows:
        if isinstance(cells, parsing.BadRecord):
            problems.append(RowProblem(row, "", "malformed_row", cells.message))
            continue
        if len(cells) != plan.width:
            problems.append(RowProblem(row, "", "wrong_column_count",
                                       f"The row has {len(cells)} cells; the header has {plan.width} columns."))
            continue
        values, bad = {}, []
        for cell in cells_of:
            value, problem = convert(cells[cell.index], cell.type)
            if value is not None and problem is None:
                if cell.builtin:
                    problem = check_builtin(cell.builtin, value)
                elif cell.limit and isinstance(value, str) and len(value) > cell.limit:
                    problem = maps.CellProblem(Code.TOO_LONG, f"At most {cell.limit} characters.")
            if problem:
                bad.append(RowProblem(row, cell.name, problem.code, problem.message))
            elif value is not None:
                values[cell.target] = value
        for target, name in required:
            if target not in values and not any(p.column == name for p in bad):
                bad.append(RowProblem(row, name, "required", "This cell must not be empty."))
        if bad:
            problems += bad
        else:
            prepared.append(_Prepared(row, values))
    return prepared, problems


_LIMITS = {"external_id": maps.MAX_EXTERNAL_ID, "name": maps.MAX_EVENT_NAME, "message_id": maps.MAX_MESSAGE_ID,
           "question": maps.MAX_QUESTION, "comment": maps.MAX_COMMENT, "survey": 64}


def _content_id(kind: str, values: dict[str, Any]) -> str:
    """A message id from what the row says, so the same row in a re-uploaded (or re-run)
    file is the same message and is stored once."""
    body = json.dumps([kind, sorted((k, v) for k, v in values.items() if k != "message_id")],
                      sort_keys=True, separators=(",", ":"), default=str)
    return "csv:" + hashlib.sha256(body.encode()).hexdigest()[:40]


def _ingest_problems(result_problems, plan: maps.Plan) -> list[RowProblem]:
    """Problems ingestion reported (by message index = row) as (row, column)."""
    column_of = {c.target: c.name for c in plan.columns}
    out = []
    for problem in result_problems:
        path = problem.path.lstrip(".")
        if path.startswith("traits."):
            column = column_of.get(maps.TRAIT + path[len("traits."):], "")
        elif path in ("userId", "anonymousId"):
            column = column_of.get("external_id", "")
        else:
            column = ""
        out.append(RowProblem(problem.index, column, problem.code, problem.message))
    return out


def _customers(prepared: list[_Prepared], plan: maps.Plan, now: datetime) -> Outcome:
    """Set-based (customers/imports/customer_upsert.py): a few statements per chunk."""
    written = upsert_customers(rows=[(item.row, item.values) for item in prepared], plan=plan, now=now)
    return Outcome(imported=written.imported, unchanged=written.unchanged,
                   problems=[RowProblem(*problem) for problem in written.problems])


def _events(prepared: list[_Prepared], plan: maps.Plan, now: datetime, default_time: datetime) -> Outcome:
    outcome = Outcome()
    messages = []
    for item in prepared:
        values = item.values
        user_id, anonymous_id = _identity(values["external_id"])
        properties = {**values.get("properties", {}),
                      **{t[len(maps.PROPERTY):]: v for t, v in values.items() if t.startswith(maps.PROPERTY)}}
        timestamp = datetime.fromisoformat(values["timestamp"]) if "timestamp" in values else default_time
        messages.append(Message(type="track", event=values["name"], timestamp=timestamp, user_id=user_id,
                                anonymous_id=anonymous_id, properties=properties,
                                message_id=values.get("message_id") or _content_id(plan.kind, values),
                                index=item.row, path=""))
    if messages:
        result = ingest_messages(messages=messages, source=SOURCE, now=now)
        outcome.problems += _ingest_problems(result.problems, plan)
        outcome.imported += result.accepted
        outcome.unchanged += result.duplicates
    return outcome


def _survey_responses(prepared: list[_Prepared], plan: maps.Plan, default_time: datetime) -> Outcome:
    outcome = Outcome()
    known = customers_by_external_ids({p.values["external_id"] for p in prepared})
    column = {c.target: c.name for c in plan.columns}
    answers = []
    for item in prepared:
        values = item.values
        if values["external_id"] not in known:
            outcome.problems.append(RowProblem(item.row, column["external_id"], "unknown_customer",
                                               f"No customer “{values['external_id']}”: import the customers first."))
            continue
        answered = datetime.fromisoformat(values["responded_at"]) if "responded_at" in values else default_time
        answers.append(SurveyAnswerIn(
            customer_id=known[values["external_id"]], survey=str(values["survey"]), score=values["score"],
            responded_at=answered, question=str(values.get("question", "")), comment=str(values.get("comment", "")),
            message_id=values.get("message_id") or _content_id(plan.kind, values), index=item.row, path=""))
    if answers:
        stored, problems = survey_answers_record(answers=answers)
        outcome.problems += [RowProblem(p.index, column.get(p.path.lstrip("."), ""), p.code, p.message)
                             for p in problems]
        outcome.imported += stored
        outcome.unchanged += len(answers) - stored - len(problems)
    return outcome


def _write_rows(rows: list[tuple[int, Any]], plan: maps.Plan, now: datetime, default_time: datetime) -> Outcome:
    prepared, problems = _prepare(rows, plan)
    outcome = Outcome(problems=problems)
    if not prepared:
        return outcome
    if plan.kind == maps.CUSTOMERS:
        return outcome.add(_customers(prepared, plan, now))
    if plan.kind == maps.EVENTS:
        return outcome.add(_events(prepared, plan, now, default_time))
    return outcome.add(_survey_responses(prepared, plan, default_time))


def write_rows_isolating(rows, plan, now, default_time) -> Outcome:
    """Write the rows; when the database refuses the chunk for a value no check caught,
    halve it until the offending rows are alone, report those and write the rest."""
    try:
        with transaction.atomic():  # a savepoint: a refusal leaves the chunk's transaction usable
            return _write_rows(rows, plan, now, default_time)
    except (DataError, IntegrityError) as error:
        if len(rows) == 1:
            reason = str(error).splitlines()[0][:200]
            return Outcome(problems=[RowProblem(rows[0][0], "", "rejected", f"The database refused the row: {reason}")])
        middle = len(rows) // 2
        return (write_rows_isolating(rows[:middle], plan, now, default_time)
                .add(write_rows_isolating(rows[middle:], plan, now, default_time)))


def store_problems(job_id: int, problems: list[RowProblem]) -> None:
    if not problems:
        return
    with connection.cursor() as cursor:
        with cursor.copy('COPY customers_importrowerror (job_id, "row", "column", code, message) FROM STDIN') as copy:
            for p in sorted(problems, key=lambda p: p.row):
                copy.write_row((job_id, p.row, p.column[:255], p.code[:64], p.message[:500]))
