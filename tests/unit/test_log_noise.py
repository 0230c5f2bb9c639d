"""What `serve` writes on every start and every sweep: only what an operator should read."""

from __future__ import annotations

import io
import logging

from bot import logs


def test_routine_library_lines_are_left_out_and_the_rest_kept() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    logs.configure(logging.INFO, "text", out)
    try:
        bolt = logging.getLogger("slack_bolt.AsyncApp")
        bolt.warning("As you gave `client` as well, `token` will be unused.")  # by design
        logging.getLogger("apscheduler.executors.default").info('Running job "sweep"')
        bolt.warning("Failed to connect (error: not_allowed_token_type)")  # said: it matters
        logging.getLogger("handoff.sweep").info("sweep: 3 leads changed")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    written = out.getvalue()
    assert "As you gave" not in written and "Running job" not in written
    assert "not_allowed_token_type" in written and "sweep: 3 leads changed" in written
