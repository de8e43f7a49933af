"""How two versions of a definition differ, as a reader would see it."""

from __future__ import annotations

import difflib
import json
from typing import Any


def definition_diff(before: Any, after: Any, *, labels: tuple[str, str] = ("before", "after")) -> dict:
    """A structural diff of two definitions (paths in the parser's syntax, e.g.
    `conditions[1].count.op`; list items compare by position) and a unified diff of their
    pretty JSON for the UI."""
    added, removed, changed = [], [], []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                sub = f"{path}.{key}" if path else key
                if key not in a:
                    added.append({"path": sub, "value": b[key]})
                elif key not in b:
                    removed.append({"path": sub, "value": a[key]})
                else:
                    walk(a[key], b[key], sub)
        elif isinstance(a, list) and isinstance(b, list):
            for index in range(max(len(a), len(b))):
                sub = f"{path}[{index}]"
                if index >= len(a):
                    added.append({"path": sub, "value": b[index]})
                elif index >= len(b):
                    removed.append({"path": sub, "value": a[index]})
                else:
                    walk(a[index], b[index], sub)
        elif a != b or isinstance(a, bool) != isinstance(b, bool):  # JSON: true is not 1; 1 is 1.0
            changed.append({"path": path, "from": a, "to": b})

    walk(before, after, "")
    pretty = lambda doc: json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).splitlines()  # noqa: E731
    text = "\n".join(difflib.unified_diff(pretty(before), pretty(after), *labels, lineterm=""))
    return {"added": added, "removed": removed, "changed": changed, "text": text}
