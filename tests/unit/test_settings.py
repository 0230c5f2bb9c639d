"""Settings from the environment: every number names its unit when it is wrong."""

from __future__ import annotations

import pytest

from bot.settings import ConfigError, Settings


@pytest.mark.parametrize(
    ("name", "value", "unit"),
    [
        ("HANDOFF_OUTBOX_KEEP_DAYS", "abc", "days"),  # said "seconds" for a number of days
        ("HANDOFF_OUTBOX_KEEP_DAYS", "-1", "days"),
        ("HANDOFF_SWEEP_SECONDS", "nan", "seconds"),  # was taken: a sweep every NaN seconds
        ("HANDOFF_SHUTDOWN_GRACE", "inf", "seconds"),
    ],
)
def test_a_bad_number_names_the_setting_and_its_unit(name: str, value: str, unit: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: value})
    assert (
        str(refused.value) == f"{name} must be a number of {unit} (0 turns it off), not {value!r}"
    )


def test_good_numbers_are_read() -> None:
    settings = Settings.from_env({"HANDOFF_OUTBOX_KEEP_DAYS": "14", "HANDOFF_SWEEP_SECONDS": "0"})
    assert (settings.outbox_keep_days, settings.sweep_seconds) == (14.0, 0.0)
