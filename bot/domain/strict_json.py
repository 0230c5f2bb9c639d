"""JSON as every HTTP body Handoff takes must be, strictly (intake, CRM activity, the CRM's
webhooks): finite numbers only (no `NaN`, `Infinity` or `1e999`), no key twice in one object,
and no deeper than MAX_DEPTH (a body of 200,000 `[` once exhausted the parser's recursion)."""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32  # arrays and objects inside one another (a lead needs 3)


class NotJson(ValueError):
    """Not JSON as a body must be (its message says why, in plain words)."""


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise NotJson(f"the number {text[:40]} is too large: numbers must be finite")
    return number


def _no_constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON number: numbers must be finite")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise NotJson(f"the key {key[:80]!r} appears twice in one object")
            seen.add(key)
    return found


def _depth(value: Any) -> int:
    """How deep arrays and objects nest in a parsed value (iteratively: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        )
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def loads(text: str) -> Any:
    """`text` as JSON, strictly; NotJson saying what is wrong."""
    try:
        value = json.loads(
            text,
            parse_float=_finite,
            parse_constant=_no_constant,
            object_pairs_hook=_no_duplicates,
        )
    except RecursionError:
        raise NotJson(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as error:
        raise NotJson(f"not valid JSON: {error}") from None
    except NotJson:
        raise
    except ValueError:  # Python's limit on an integer's digits (4,300), not JSON's
        raise NotJson("a number in the body is too large") from None
    # Nothing nests deeper than it has brackets: a lead's body has a handful, so the walk
    # over every value (a few percent of an intake's CPU) runs only for bodies that could.
    if _openers(text) > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise NotJson(f"the body nests deeper than {MAX_DEPTH} levels")
    return value


def _openers(text: str) -> int:
    """How many `[` and `{` the text has (inside strings too): a bound on how deep it nests."""
    return text.count("[") + text.count("{")
