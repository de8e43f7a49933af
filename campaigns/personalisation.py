"""Safe personalisation of campaign content with Django's template language (no I/O).

The sandbox, and why each part is there:
- a standalone `Engine` with no loaders and no libraries: `{% include %}`, `{% extends %}`
  and `{% load %}` cannot reach files or installed tag libraries;
- builtins are an allow-list (this module's `register`), not Django's defaults: no
  `{% debug %}` (dumps the context and sys.modules), `{% url %}`, `{% csrf_token %}`,
  `{% now %}`; no `|safe` (a customer's own trait must never become markup), `|pprint`,
  `|random`, and no padding filters (`|ljust:"100000000"` would be a memory bomb);
- the context is a plain dict of strings and numbers built by `customer_context`, so
  there are no model instances whose attributes or methods a template could reach
  (Django already refuses names that start with "_");
- HTML bodies render with autoescape on; subjects and plain-text bodies with it off
  (escaping would show "&amp;" to the reader), and subjects lose their line breaks
  (a header injection guard on top of Django's own BadHeaderError).
"""

from __future__ import annotations

import html as html_lib
from typing import Any

from django.template import Context, Engine, Library, TemplateSyntaxError
from django.template import defaultfilters, defaulttags
from django.utils.html import strip_tags

from common.errors import CampaignCode, Code, DomainError, Problem

SAFE_TAGS = ("autoescape", "comment", "cycle", "filter", "firstof", "for", "if", "ifchanged", "resetcycle",
             "spaceless", "templatetag", "verbatim", "with")
SAFE_FILTERS = ("add", "capfirst", "cut", "date", "default", "default_if_none", "divisibleby", "escape",
                "first", "floatformat", "force_escape", "join", "last", "length", "linebreaks", "linebreaksbr",
                "lower", "pluralize", "slice", "slugify", "striptags", "time", "title", "truncatechars",
                "truncatewords", "upper", "urlencode", "wordcount", "yesno")
MAX_SOURCE = {"subject": 500, "body": 100_000, "title": 500, "cta_label": 100, "cta_url": 2000}
MAX_SUBJECT_OUT = 300

register = Library()
for _name in SAFE_TAGS:
    register.tags[_name] = defaulttags.register.tags[_name]
for _name in SAFE_FILTERS:
    register.filters[_name] = defaultfilters.register.filters[_name]



class _SandboxEngine(Engine):
    # TRICKY: Engine always prepends its default_builtins (defaulttags, defaultfilters,
    # loader_tags) to `builtins`; emptying them is what makes the allow-list the whole list.
    default_builtins = []


_ENGINE = _SandboxEngine(loaders=[], libraries={}, builtins=["campaigns.personalisation"], autoescape=True, debug=False,
                         string_if_invalid="")

# Customer columns a template may use, by the name it uses them under.
CUSTOMER_FIELDS = ("external_id", "email", "name", "country", "region", "city", "language", "company",
                   "industry", "plan", "occupation")
SAMPLE = {"external_id": "sample-1", "email": "ada@example.com", "name": "Ada Lovelace", "first_name": "Ada",
          "last_name": "Lovelace", "country": "GB", "city": "London", "company": "Analytical Engines",
          "plan": "pro", "traits": {}}


def customer_context(customer, *, extra: dict | None = None) -> dict[str, Any]:
    """The only values a template sees: scalar columns and scalar custom traits."""
    data: dict[str, Any] = {field: getattr(customer, field, "") or "" for field in CUSTOMER_FIELDS}
    first, _, last = (data["name"] or "").strip().partition(" ")
    data["first_name"], data["last_name"] = first, last.strip()
    traits = getattr(customer, "traits", None) or {}
    data["traits"] = {k: v for k, v in traits.items()
                      if isinstance(k, str) and not k.startswith("_") and isinstance(v, (str, int, float, bool))}
    return data | (extra or {})


def compile_content(content: dict, fields: tuple[str, ...], *, prefix: str = "content") -> list[Problem]:
    """Syntax problems of the named fields (paths like content.subject)."""
    problems = []
    for field in fields:
        source = content.get(field)
        path = f"{prefix}.{field}"
        if not isinstance(source, str) or not source.strip():
            problems.append(Problem(path, Code.REQUIRED, f"Write the {field.replace('_', ' ')}."))
            continue
        if len(source) > MAX_SOURCE.get(field, 10_000):
            problems.append(Problem(path, Code.TOO_LONG, f"At most {MAX_SOURCE.get(field, 10_000):,} characters."))
            continue
        try:
            _ENGINE.from_string(source)
        except TemplateSyntaxError as error:
            problems.append(Problem(path, CampaignCode.TEMPLATE_SYNTAX, f"The template does not compile: {error}"))
    return problems


def render(source: str, data: dict, *, html: bool, path: str) -> str:
    try:
        return _ENGINE.from_string(source).render(Context(data, autoescape=html))
    except TemplateSyntaxError as error:
        raise DomainError.single(path=path, code=CampaignCode.TEMPLATE_SYNTAX,
                                 message=f"The template does not compile: {error}")
    except Exception as error:  # a filter given a bad argument at render time
        raise DomainError.single(path=path, code=CampaignCode.TEMPLATE_RENDER,
                                 message=f"The template failed to render: {type(error).__name__}: {error}")


def render_email(content: dict, data: dict, *, prefix: str = "content") -> dict[str, str]:
    """{"subject", "text", "html" (or "")} for one recipient. `data` carries `unsubscribe_url`."""
    html = content.get("format") == "html"
    subject = render(content["subject"], data, html=False, path=f"{prefix}.subject")
    subject = " ".join(subject.split())[:MAX_SUBJECT_OUT]
    body = render(content["body"], data, html=html, path=f"{prefix}.body")
    unsubscribe = data.get("unsubscribe_url", "")
    if html:
        if unsubscribe and unsubscribe not in body:
            body += f'\n<p style="font-size:12px"><a href="{unsubscribe}">Unsubscribe</a></p>'
        return {"subject": subject, "text": html_lib.unescape(strip_tags(body)), "html": body}
    if unsubscribe and unsubscribe not in body:
        body += f"\n\n--\nUnsubscribe: {unsubscribe}\n"
    return {"subject": subject, "text": body, "html": ""}


def render_in_app(content: dict, data: dict, *, prefix: str = "content") -> dict[str, str]:
    out = {}
    for field in ("title", "body", "cta_label"):
        if content.get(field):
            out[field] = render(content[field], data, html=False, path=f"{prefix}.{field}").strip()
    out["cta_url"] = content.get("cta_url", "")
    return out
