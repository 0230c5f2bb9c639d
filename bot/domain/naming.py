"""Names as people write them: one rule for every place a person reads a key of the SLA file
(a refusal from the domain, a post, a report), so the same segment never reads two ways."""

from __future__ import annotations


def readable(key: str) -> str:
    """`mid market` for the key `mid_market`: a segment, source or tier as people write it
    (the SLA file gives them no other label). Not escaped: the caller escapes."""
    return key.replace("_", " ")
