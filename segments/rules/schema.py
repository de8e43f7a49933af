"""The version-1 rule language as JSON Schema (draft 2020-12), published at
`GET /api/v1/segments/schema/` (shared/specs/segment-rules.md).

Built from the language's tables (segments.rules.vocabulary, the parser's too) (operators, measures, metrics, limits), so the two
cannot drift apart. The schema accepts every definition the parser accepts and rejects
whatever can be decided without the tenant: structure, unknown fields, operator fit for
built-in traits and metrics, value shapes, durations (pattern and the 3650-day limit),
nesting depth. What needs the tenant's registry or arithmetic across fields stays with
the parser: whether a custom trait / survey / segment exists, operator fit for a custom
trait's type, reference cycles, real calendar dates, and low ≤ high / from ≤ to.
"""

from __future__ import annotations

from segments.rules.vocabulary import (
    AGGREGATES, ANNIVERSARY, ANY_EVENT, BUILTIN_TRAITS, CHANNELS, CUSTOM_KEY, EQUALITY, FILTER_OPS, HOURS, ISO_DAYS,
    LISTS, MAX_ANNIVERSARY_DAYS, MAX_CONDITIONS, MAX_DEPTH, MAX_LIST, MAX_STEPS, MEASURE_OPS, MEASURES, METRICS,
    MIN_STEPS, OCCURRED, OPS_BY_TYPE, ORDER, PRESENCE, RANGE, RELATIVE, RFM_GROUPS, SETS, SURVEY_MEASURES, TEXT,
    TRAIT_OPS_BY_TYPE, VERSION,
)

SCHEMA_ID = "urn:strata:segment-definition:1"
_MAX_DAYS = 3650
_ISO = (r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}"
        r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?\s*$")


def _upto(limit: int) -> str:
    """A regular expression for the integers 1..limit, without leading zeros."""
    digits = str(limit)
    parts = []
    if len(digits) > 1:
        parts.append(f"[1-9][0-9]{{0,{len(digits) - 2}}}" if len(digits) > 2 else "[1-9]")
    # Same number of digits as the limit: a prefix of it, one smaller digit, anything after.
    for i, d in enumerate(digits):
        low = "1" if i == 0 else "0"
        high = int(d) - 1
        if high >= int(low):
            rest = len(digits) - i - 1
            tail = f"[0-9]{{{rest}}}" if rest else ""
            digit = low if high == int(low) else f"[{low}-{high}]"
            parts.append(digits[:i] + digit + tail)
    parts.append(digits)
    return "(" + "|".join(parts) + ")"


def duration_pattern() -> str:
    """`<n><unit>`, n ≥ 1, at most 3650 days in any unit."""
    limits = {"m": _MAX_DAYS * 24 * 60, "h": _MAX_DAYS * 24, "d": _MAX_DAYS, "w": _MAX_DAYS // 7}
    return "^(" + "|".join(f"{_upto(n)}{unit}" for unit, n in limits.items()) + ")$"


def anniversary_pattern() -> str:
    """Whole days or weeks, at most 366 days: 1d..366d, 1w..52w."""
    return f"^({_upto(MAX_ANNIVERSARY_DAYS)}d|{_upto(MAX_ANNIVERSARY_DAYS // 7)}w)$"


def _enum(values) -> dict:
    return {"enum": sorted(values)}


def _list(items: dict, *, exact: int | None = None) -> dict:
    if exact is not None:
        return {"type": "array", "items": items, "minItems": exact, "maxItems": exact}
    return {"type": "array", "items": items, "minItems": 1, "maxItems": MAX_LIST}


REF = {name: {"$ref": f"#/$defs/{name}"} for name in (
    "duration", "anniversary_span", "iso_datetime", "number", "string", "boolean", "scalar", "window", "when", "where",
    "condition")}


def _when(ops, then: dict) -> dict:
    return {"if": {"properties": {"op": {"enum": sorted(ops)}}, "required": ["op"]}, "then": then}


def _value(schema: dict) -> dict:
    return {"required": ["value"], "properties": {"value": schema}}


_NO_VALUE = {"properties": {"value": {"type": "null"}}}


def _typed_values(type_: str, list_item: dict | None = None) -> list[dict]:
    """op → value rules of a comparison on a value of `type_` (the parser's `comparison`)."""
    scalar = {"string": REF["string"], "number": REF["number"], "boolean": REF["boolean"],
              "datetime": REF["iso_datetime"]}.get(type_)
    rules = [_when(PRESENCE, _NO_VALUE), _when(RELATIVE, _value(REF["duration"])), _when(TEXT, _value(REF["string"])),
             _when({"before", "after"}, _value(REF["iso_datetime"])), _when(ANNIVERSARY, _value(REF["anniversary_span"]))]
    if type_ == "list":
        rules.append(_when(LISTS, _value(_list(list_item or REF["scalar"]))))
    else:
        rules += [_when(EQUALITY | ORDER, _value(scalar)), _when(SETS, _value(_list(scalar))),
                  _when(RANGE, _value(_list(scalar, exact=2)))]
    return rules


def _untyped_values() -> list[dict]:
    """op → value rules when the type is not known here: a custom trait (its type is in
    the registry) or an event property (typed by operator and value)."""
    ordered = {"anyOf": [REF["number"], REF["iso_datetime"]]}
    same_type = lambda *types: {"anyOf": [_list(REF[t]) for t in types]}  # noqa: E731
    return [
        _when(PRESENCE, _NO_VALUE), _when(RELATIVE, _value(REF["duration"])), _when(TEXT, _value(REF["string"])),
        _when(ANNIVERSARY, _value(REF["anniversary_span"])), _when(LISTS, _value(_list(REF["scalar"]))),
        _when(EQUALITY, _value(REF["scalar"])), _when(SETS, _value(same_type("string", "number", "boolean"))),
        _when(ORDER, _value(ordered)),
        _when(RANGE, _value({"anyOf": [_list(REF["number"], exact=2), _list(REF["iso_datetime"], exact=2)]})),
    ]


def _condition(kind: str, properties: dict, required: list[str], rules: list[dict] | None = None,
               description: str = "") -> dict:
    schema = {"type": "object", "description": description,
              "properties": {"type": {"const": kind}, **properties, "negate": REF["boolean"]},
              "required": ["type", *required], "additionalProperties": False}
    if rules:
        schema["allOf"] = rules
    return schema


def _trait() -> dict:
    by_type: dict[str, list[str]] = {}
    for key, spec in BUILTIN_TRAITS.items():
        by_type.setdefault(spec.type.value, []).append(key)
    rules = []
    for type_, fields in sorted(by_type.items()):
        item = REF["string"] if type_ == "list" else None  # tech_stack holds strings
        rules.append({"if": {"properties": {"field": {"enum": sorted(fields)}}, "required": ["field"]},
                      "then": {"properties": {"op": _enum(TRAIT_OPS_BY_TYPE[type_])},
                               "allOf": _typed_values(type_, item)}})
    custom_pattern = r"^traits\." + CUSTOM_KEY.pattern.removeprefix("^")
    rules.append({"if": {"properties": {"field": {"pattern": custom_pattern}}, "required": ["field"]},
                  "then": {"allOf": _untyped_values()}})
    trait_ops = set().union(*TRAIT_OPS_BY_TYPE.values())
    return _condition("trait", {
        "field": {"anyOf": [_enum(BUILTIN_TRAITS), {"type": "string", "pattern": custom_pattern}],
                  "description": "A built-in trait, or traits.<key> for a custom trait in the tenant's registry "
                                 "(whose type decides the operators; the API checks it)."},
        "op": _enum(trait_ops), "value": {}}, ["field", "op"], rules, "A customer attribute.")


def _metric() -> dict:
    rules = []
    for type_ in ("number", "string"):
        names = sorted(m for m, t in METRICS.items() if t == type_)
        then = {"properties": {"op": _enum(OPS_BY_TYPE[type_])}, "allOf": _typed_values(type_)}
        rules.append({"if": {"properties": {"metric": {"enum": names}}, "required": ["metric"]}, "then": then})
    rfm = _enum(RFM_GROUPS)
    rules.append({"if": {"properties": {"metric": {"const": "rfm_segment"}}, "required": ["metric"]},
                  "then": {"allOf": [_when(EQUALITY, _value(rfm)), _when(SETS, _value(_list(rfm)))]}})
    return _condition("metric", {"metric": _enum(METRICS), "op": _enum(set().union(*OPS_BY_TYPE.values())),
                                 "value": {}}, ["metric", "op"], rules,
                      "A computed value per customer (rfm_segment and cluster are strings, the rest numbers).")


def _measure(kind: str) -> dict:
    if kind in ("first_occurred", "last_occurred"):
        return {"type": "object", "properties": {"op": _enum(OCCURRED), "value": {}}, "required": ["op", "value"],
                "additionalProperties": False,
                "allOf": [_when(RELATIVE, _value(REF["duration"])), _when({"before", "after"}, _value(REF["iso_datetime"]))]}
    properties = {"op": _enum(MEASURE_OPS), "value": {}}
    required = ["op", "value"]
    if kind == "share":  # a fraction of the events: values in 0..1
        fraction = {"type": "number", "minimum": 0, "maximum": 1}
        return {"type": "object", "properties": properties, "required": required, "additionalProperties": False,
                "allOf": [_when(EQUALITY | ORDER, _value(fraction)), _when(SETS, _value(_list(fraction))),
                          _when(RANGE, _value(_list(fraction, exact=2)))]}
    if kind == "aggregate":
        properties = {"fn": _enum(AGGREGATES), "property": {"type": "string", "minLength": 1}, **properties}
        required = ["fn", "property", *required]
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False,
            "allOf": _typed_values("number")}




def _event_name(*, any_event: bool = True) -> dict:
    if not any_event:
        return {**_event_name(), "not": {"const": ANY_EVENT}, "description": "An event name (“*” is not allowed in a step)."}
    return {"type": "string", "maxLength": 200, "pattern": r"\S", "description": "An event name, or “*” for events "
            "of every name (unknown names are a warning, not an error: the event may arrive later)."}


def _group(depth: int) -> dict:
    """A group at `depth` (the root is 1); groups nest at most MAX_DEPTH deep."""
    item = REF["condition"] if depth == MAX_DEPTH else {
        "if": {"required": ["type"]}, "then": REF["condition"], "else": {"$ref": f"#/$defs/group_{depth + 1}"}}
    properties = {"match": {"enum": ["all", "any"]},
                  "conditions": {"type": "array", "items": item, "minItems": 1, "maxItems": MAX_CONDITIONS},
                  "negate": REF["boolean"]}
    if depth == 1:
        return {"type": "object", "properties": {"version": {"const": VERSION}, **properties},
                "required": ["version", "match", "conditions"], "additionalProperties": False}
    return {"type": "object", "description": f"A group at depth {depth} (a node without `type`).",
            "properties": properties, "required": ["match", "conditions"], "additionalProperties": False}


def definition_schema() -> dict:
    """The JSON Schema of a segment definition, version 1."""
    filter_schema = {"type": "object", "properties": {"property": {"type": "string", "minLength": 1},
                                                        "op": _enum(FILTER_OPS), "value": {}},
                     "required": ["property", "op"], "additionalProperties": False, "allOf": _untyped_values()}
    conditions = {
        "trait": _trait(),
        "event": _condition("event", {"event": _event_name(), "where": REF["where"], "window": REF["window"],
                                      "when": REF["when"],
                                      **{kind: {"$ref": f"#/$defs/measure_{kind}"} for kind in MEASURES}},
                            ["event"], [{"oneOf": [{"required": [kind]} for kind in MEASURES]},
                                        {"if": {"required": ["share"]}, "then": {"required": ["when"]}}],
                            "Behaviour: one measure (exactly one of " + ", ".join(MEASURES) + ") over the "
                            "events that pass `where` inside `window` (default: all time before now) and, when "
                            "given, `when`; a share is the part of the events without `when` that `when` keeps."),
        "sequence": _condition("sequence", {
            "steps": {"type": "array", "minItems": MIN_STEPS, "maxItems": MAX_STEPS, "items": {
                "type": "object", "properties": {"event": _event_name(any_event=False), "where": REF["where"]},
                "required": ["event"], "additionalProperties": False}},
            "within": REF["duration"], "window": REF["window"]}, ["steps", "within"],
            description="Every step in order, each strictly after the previous, the last within `within` of the first."),
        "metric": _metric(),
        "survey": _condition("survey", {
            "survey": {"type": "string", "minLength": 1, "description": "nps, csat or a custom survey key."},
            "measure": _enum(SURVEY_MEASURES), "question": {"type": ["string", "null"], "minLength": 1},
            "op": _enum(MEASURE_OPS), "value": {}}, ["survey", "measure", "op"], _typed_values("number"),
            "Survey answers: the latest score, the average score or the number of scored answers."),
        "segment": _condition("segment", {"segment": {"type": "string", "minLength": 1}, "op": {"enum": ["in", "not_in"]}},
                              ["segment", "op"], description="Membership of another segment at evaluation time."),
        "consent": _condition("consent", {"channel": _enum(CHANNELS), "granted": REF["boolean"]}, ["channel", "granted"],
                              description="A recorded grant (true), or no record or a withdrawal (false)."),
    }
    defs = {
        "duration": {"type": "string", "pattern": duration_pattern(),
                     "description": "<n><unit>, unit m h d w, n ≥ 1, at most 3650 days: “30d”."},
        "anniversary_span": {"type": "string", "pattern": anniversary_pattern(),
                             "description": "`anniversary_within`'s span: whole days or weeks, 1d..366d."},
        "when": {"type": "object", "additionalProperties": False,
                 "anyOf": [{"required": ["days"]}, {"required": ["hours"]}],
                 "properties": {
                     "days": {"type": "array", "items": {"type": "integer", "minimum": ISO_DAYS[0], "maximum": ISO_DAYS[-1]},
                              "minItems": 1, "maxItems": len(ISO_DAYS), "uniqueItems": True,
                              "description": "ISO weekdays on the customer's local clock: 1 = Monday … 7 = Sunday."},
                     "hours": {"type": "array", "minItems": 2, "maxItems": 2, "prefixItems": [
                         {"type": "integer", "minimum": HOURS[0], "maximum": HOURS[1] - 1},
                         {"type": "integer", "minimum": HOURS[0] + 1, "maximum": HOURS[1]}],
                               "description": "[start, end): start ≤ local hour < end, start < end."}},
                 "description": "Time of week on the customer's local clock (its `timezone` trait when a known "
                                "IANA zone, else UTC)."},
        "iso_datetime": {"type": "string", "pattern": _ISO,
                         "description": "An ISO 8601 date (a whole UTC day) or datetime (UTC when it has no offset)."},
        "number": {"type": "number"}, "string": {"type": "string"}, "boolean": {"type": "boolean"},
        "scalar": {"type": ["string", "number", "boolean"]},
        "window": {"oneOf": [
            {"type": "object", "properties": {"last": REF["duration"]}, "required": ["last"],
             "additionalProperties": False},
            {"type": "object", "properties": {"from": REF["iso_datetime"], "to": REF["iso_datetime"]},
             "anyOf": [{"required": ["from"]}, {"required": ["to"]}], "additionalProperties": False}],
            "description": "{last: duration} is [now − d, now); {from, to} is [from, to), a date-only `to` "
                           "taking in its whole day."},
        "where": {"type": "array", "items": {"$ref": "#/$defs/property_filter"}, "maxItems": MAX_CONDITIONS,
                  "description": "Event property filters, ANDed; typed by operator and value."},
        "property_filter": filter_schema,
        "condition": {"type": "object", "required": ["type"], "properties": {"type": _enum(conditions)},
                      "allOf": [{"if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
                                 "then": {"$ref": f"#/$defs/{kind}_condition"}} for kind in sorted(conditions)]},
        **{f"{kind}_condition": schema for kind, schema in conditions.items()},
        **{f"measure_{kind}": _measure(kind) for kind in MEASURES},
        **{f"group_{depth}": _group(depth) for depth in range(2, MAX_DEPTH + 1)},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Strata segment definition, version 1",
        "description": (
            "A segment definition (shared/specs/segment-rules.md). The root is a group with version 1; a node "
            "with `type` is a condition, any other node a group; groups nest at most "
            f"{MAX_DEPTH} deep. This schema is coarser than the API's validation: it cannot know the tenant's "
            "registry, so it does not check that a custom trait (traits.<key>), survey or referenced segment "
            "exists, that an operator fits a custom trait's registered type, or that segment references form no "
            "cycle; nor that dates are real calendar dates, `between` has low ≤ high, a window has from ≤ to, "
            "`when.hours` has start < end or its numbers are written without a fraction (6, not 6.0). "
            "Everything else it checks. The API answers those problems with "
            "{errors: [{path, code, message}]}."),
        **_group(1),
        "$defs": defs,
    }
