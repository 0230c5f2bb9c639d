"""Where Slack's reference data is: the product's `shared/slack/` folder (Slack's published
app-manifest schema, and each Web API method's scopes, tier, arguments and errors). It lives
beside the checkout, not in it; `HANDOFF_SLACK_REFERENCE` names it where it is elsewhere (`.ci/run`
finds it beside the checkout a CI clone came from). Tests that need it skip without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VARIABLE = "HANDOFF_SLACK_REFERENCE"


def slack_reference(name: str) -> Path:
    """The reference file or folder `name` (skips the test when it is not there)."""
    folder = Path(os.environ.get(VARIABLE) or ROOT.parent / "shared" / "slack")
    path = folder / name
    if not path.exists():
        pytest.skip(f"Slack's reference data is not at {path} (set {VARIABLE})")
    return path
