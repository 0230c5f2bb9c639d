"""A broken SLA file, as RevOps people write one by hand: each mutation of the example is refused
with one line naming the key path and what is wrong, in plain words (no traceback, no pydantic
wording, no name of a class inside Handoff), and a refused file changes nothing."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.domain.policy import Policy, policy_warnings
from tests.unit.test_sla_yaml_reading import EXAMPLE, checked

# What no answer to a person shows: Python's and pydantic's words, and Handoff's inner names.
INTERNALS = re.compile(
    r"Traceback|type=|input_value|errors\.pydantic|instance of|object at 0x|\bNone\b|"
    r"unable to (?:parse|interpret)|Duration|Keys should|keys should be strings|nanh|infh"
)
NOTHING = "(YAML reads an empty value, or one that starts with #, as nothing)"


TRUE_NUMBER = "read as true (YAML reads yes, on and y without quotes as true): write a number"
FALSE_NUMBER = "read as false (YAML reads no, off and n without quotes as false): write a number"
STEP = 'at: "50%", do: remind_channel'
CLOSED = 'closed: ["2026-12-24", "2026-12-31"]'
WHEN = "when: {employees_min: 1000}"

MUTATIONS = [
    # An empty value, or one YAML reads as a comment (`channel: #enterprise`), is nothing.
    (
        "channel: C0ENT",
        "channel: #enterprise",
        f"segments[0].channel: has no value: write text {NOTHING}",
    ),
    ("timezone: Australia/Sydney", "timezone:", f"timezone: has no value: write text {NOTHING}"),
    (
        "disposition_deadline: 72h",
        "disposition_deadline:",
        f"disposition_deadline: has no value: write a duration, like 72h or 2 business hours "
        f"{NOTHING}",
    ),
    (
        "within: 2w}",
        "within: }",
        f"follow_up.within: has no value: write a duration, like 72h or 2 business hours {NOTHING}",
    ),
    (
        'start: "09:00"',
        "start:",
        f'business_hours.start: has no value: write a time of day, like "09:00" {NOTHING}',
    ),
    (
        STEP,
        "at: , do: remind_channel",
        f"escalation.unclaimed[0].at: has no value: write a percentage of the deadline, like 50% "
        f"{NOTHING}",
    ),
    (
        STEP,
        'at: "50%", do: ',
        "escalation.unclaimed[0].do: has no value: write one of remind_channel, remind_owner, "
        f"notify_manager, reassign {NOTHING}",
    ),
    (
        "managers: [U0MGR1, U0MGR2]",
        "managers:",
        f"managers: has no value: write a list, like [a, b] {NOTHING}",
    ),
    (
        "segments:\n  - name: enterprise",
        "segments:\n  -\n  - name: enterprise",
        f"segments[0]: has no value: write its keys under it (key: value) {NOTHING}",
    ),
    # A mapping written as something else names what it is, not a class inside Handoff.
    (
        "channels:\n  marketing_feedback: C0MKTFEED    # every reject / nurture / recycle with "
        "its reason\n  escalations: C0ESCALATE          # overdue leads, for managers\n  digest: "
        "C0REVOPS                 # weekly SLA digest",
        "channels: C0MKTFEED",
        "channels: should be a mapping of keys (key: value), not text",
    ),
    (
        WHEN,
        "when: [employees_min, 1000]",
        "segments[0].when: should be a mapping of keys (key: value), not a list",
    ),
    (
        "    # cap: {open: 20, per_day: 8}",
        "    cap: 20",
        "segments[0].cap: should be a mapping of keys (key: value), not a number",
    ),
    (
        "follow_up: {min_attempts: 6, within: 2w}",
        "follow_up: 6 attempts in 2w",
        "follow_up: should be a mapping of keys (key: value), not text",
    ),
    # Text that YAML reads as a number.
    (
        "name: Acme Marketing–Sales SLA (FY27)",
        "name: 2027",
        'name: 2027 is read as a number: write it in quotes, like "2027"',
    ),
    # Numbers written as words, with units, commas or a fraction.
    (
        "threshold: 60",
        "threshold: sixty",
        "mql.threshold: 'sixty' is not a whole number: write it in digits",
    ),
    ("threshold: 60", "threshold: 60%", "mql.threshold: '60%' is not a whole number: write 60"),
    ("threshold: 60", "threshold: 60.5", "mql.threshold: 60.5 is not a whole number"),
    (
        WHEN,
        "when: {employees_min: '1,000'}",
        "segments[0].when.employees_min: '1,000' is not a whole number: write 1000",
    ),
    (
        "average_deal: 40000",
        "average_deal: $40,000",
        "plan.average_deal: '$40,000' is not a number: write 40000",
    ),
    (
        "average_deal: 40000",
        "average_deal: 40k",
        "plan.average_deal: '40k' is not a number: write it in digits",
    ),
    # A share written as a percentage says how to write it, wherever it is.
    (
        "sal_rate: 0.75",
        "sal_rate: 75%",
        "plan.sal_rate: '75%' is a percentage: write it as a share, like 0.75 for 75%",
    ),
    (
        "first_touch_compliance: 0.9",
        "first_touch_compliance: 90%",
        "targets.first_touch_compliance: '90%' is a percentage: write it as a share, like 0.9 "
        "for 90%",
    ),
    (
        'reason_required: true\n    reasons: ["Wrong',
        'reason_required: maybe\n    reasons: ["Wrong',
        "dispositions[2].reason_required: 'maybe' is not true or false",
    ),
    # A closed day that is a number (read as seconds since 1970) or has a time of day.
    (
        CLOSED,
        "closed: [20261224]",
        "business_hours.closed[0]: 20261224 is not a date: write it like 2026-12-24",
    ),
    (CLOSED, "closed: [0]", "business_hours.closed[0]: 0 is not a date: write it like 2026-12-24"),
    (
        CLOSED,
        "closed: [2026-12-24 10:00]",
        "business_hours.closed[0]: 2026-12-24 10:00 has a time of day: write the date alone, "
        "like 2026-12-24",
    ),
    # Numbers that are no duration get no nonsense fix (like "-5h" or "nanh").
    (
        "disposition_deadline: 72h",
        "disposition_deadline: -5",
        "disposition_deadline: -5 is not a duration: write it like 30m, 24h or 1bd",
    ),
    (
        "disposition_deadline: 72h",
        "disposition_deadline: .nan",
        "disposition_deadline: nan is not a duration: write it like 30m, 24h or 1bd",
    ),
    (
        "url: /pricing, within: 7d",
        "url: /pricing, within: .inf",
        "mql.intent[0].within: inf is not a duration: write a recency window like 7d",
    ),
    (
        "url: /pricing, within: 7d",
        "url: /pricing, within: {}",
        "mql.intent[0].within: {} is not a duration: write it like 30m, 24h or 1bd",
    ),
    # A weekly MQL target is a count.
    (
        "mql_per_week: {enterprise: 10,",
        "mql_per_week: {enterprise: -10,",
        "targets.mql_per_week.enterprise: -10 is negative: write a count of MQLs a week, 0 or more",
    ),
    # A word YAML reads as true or false where a number belongs (pydantic took true as 1).
    ("threshold: 60", "threshold: yes", f"mql.threshold: {TRUE_NUMBER}"),
    (
        "{employees_min: 51, points: 20}",
        "{employees_min: 51, points: on}",
        f"mql.fit[0].points: {TRUE_NUMBER}",
    ),
    (
        "mql_per_week: {enterprise: 10,",
        "mql_per_week: {enterprise: off,",
        f"targets.mql_per_week.enterprise: {FALSE_NUMBER}",
    ),
    # A key that is not text.
    (
        "recycle_after: 30d",
        "recycle_after: 30d\n42: x",
        "(top level): 42 is not a key name (a key is text, like timezone)",
    ),
    (
        "recycle_after: 30d",
        "recycle_after: 30d\n~: x",
        "(top level): a key has no name (nothing, ~ or null before its colon)",
    ),
    # A key of a mapping that YAML reads as something other than text.
    (
        "mql_per_week: {enterprise: 10,",
        "mql_per_week: {2026-01-01: 10, enterprise: 10,",
        "targets.mql_per_week: the key 2026-01-01 is read as a date: write it in quotes, like "
        '"2026-01-01"',
    ),
    (
        "    # weights: {U0REP1: 2}",
        "    weights: {12345: 2}",
        'segments[0].weights: the key 12345 is read as a number: write it in quotes, like "12345"',
    ),
    (
        "mql_per_week: {enterprise: 10,",
        "mql_per_week: {~: 10, enterprise: 10,",
        "targets.mql_per_week: a key has no name (nothing, ~ or null before its colon)",
    ),
    # A character that does not show (a no-break space or a BOM pasted from a document).
    (
        "clock: team",
        "clock: \u00a0team",
        "clock: '\\xa0team' holds a character that does not show: retype it (input should be "
        "'team' or 'owner')",
    ),
    (
        "clock: team",
        "clock\u00a0: team",
        "clock\u00a0: unknown key: 'clock\\xa0' holds a character that does not show: retype it",
    ),
    (
        "  - {code: qualified,",
        "  - {code: \ufeffqualified,",
        "dispositions[0].code: '\\ufeffqualified' is not a code: use lower_snake_case like "
        "not_a_fit",
    ),
    (
        "mql_per_week: {enterprise: 10,",
        "mql_per_week: {yes: 10, enterprise: 10,",
        "targets.mql_per_week: read as true: YAML reads yes, on and y without quotes (in any "
        'letter case) as true; write the text in quotes, like "ON"',
    ),
    # A number too long for Python to read.
    (
        "threshold: 60",
        "threshold: " + "9" * 5000,
        "line 61, column 14: not valid YAML: a number of 5000 digits, too long to read",
    ),
    # A control character YAML refuses, named by its line and column.
    (
        "name: Acme Marketing–Sales SLA (FY27)",
        "name: Acme\x00 SLA",
        "line 6, column 11: not valid YAML: a control character (#x0000) that YAML does not "
        "allow: remove it",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "problem"), MUTATIONS, ids=[new[:40] for _, new, _ in MUTATIONS]
)
def test_a_broken_file_gets_one_plain_line_naming_the_key_and_the_problem(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    problems = checked(tmp_path, old, new)
    assert problems == [problem]
    assert not INTERNALS.search(problem), problem


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.mark.usefixtures("restored_logging")
def test_check_answers_a_file_with_a_control_character_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NUL pasted into sla.yaml ended `handoff check` with PyYAML's ReaderError traceback."""
    path = tmp_path / "sla.yaml"
    path.write_text(EXAMPLE.replace("name: Acme", "name: Acme\x00", 1), encoding="utf-8")
    assert main(["check", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: 1 problem(s)",
        "  line 6, column 11: not valid YAML: a control character (#x0000) that YAML does not "
        "allow: remove it",
    ]


@pytest.mark.usefixtures("restored_logging")
def test_serve_refuses_a_broken_file_before_it_touches_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve` reads the SLA file before anything else: a broken one is its problems and exit 2,
    and the database is neither created nor migrated."""
    path = tmp_path / "sla.yaml"
    path.write_text(EXAMPLE.replace("channel: C0ENT", "channel: #enterprise", 1), encoding="utf-8")
    database = tmp_path / "handoff.db"
    for name, value in {
        "HANDOFF_SLA_FILE": str(path),
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "PORT": "0",
        "LOG_FORMAT": "text",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["serve"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"handoff: the SLA file {path} has 1 problem(s):",
        f"  segments[0].channel: has no value: write text {NOTHING}",
        "  (run `handoff check` for the full report)",
    ]
    assert not database.exists()


@pytest.mark.parametrize("key", ["defaults", "defualt", "Default_"])
def test_a_misspelled_default_talk_track_is_warned_of(tmp_path: Path, key: str) -> None:
    """`talk_tracks` is keyed by lead source, any text: `defaults:` passed in silence, and a lead
    of any other source got no track."""
    policy = checked(tmp_path, "  default: >-", f"  {key}: >-")
    assert isinstance(policy, Policy), policy
    assert policy_warnings(policy) == [
        f"talk_tracks.{key}: no track is called default, so a lead whose source has no track of "
        f"its own gets none; did you mean default?"
    ]


@pytest.mark.parametrize(
    "day", ["2026-12-24 00:00:00", "2026-12-24T00:00:00Z", '"2026-12-24T00:00"', "2026-12-24"]
)
def test_a_closed_date_at_midnight_is_that_day(tmp_path: Path, day: str) -> None:
    """A YAML timestamp at midnight was read as its date (pydantic's rule for a date): a file
    that said so stays valid now that a date with another time of day is refused."""
    policy = checked(tmp_path, CLOSED, f"closed: [{day}]")
    assert isinstance(policy, Policy), policy
    assert [day.isoformat() for day in policy.business_hours.closed] == ["2026-12-24"]


def test_a_closed_day_written_as_a_number_in_quotes_is_not_a_date(tmp_path: Path) -> None:
    """pydantic read "20261224" as seconds since 1970, and answered in its own words."""
    assert checked(tmp_path, CLOSED, 'closed: ["20261224"]') == [
        "business_hours.closed[0]: 20261224 is not a date: write it like 2026-12-24"
    ]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "  mql_per_week:",
            "  lead_quality: 80%\n  mql_per_week:",
            "targets.lead_quality: '80%' is not a number: write 80",
        ),
        (
            "average_deal: 40000",
            "average_deal: 10%",
            "plan.average_deal: '10%' is not a number: write 10",
        ),
        (
            "revenue_split: {enterprise: 0.6,",
            "revenue_split: {enterprise: 60%,",
            "plan.revenue_split.enterprise: '60%' is a percentage: write it as a share, like 0.6 "
            "for 60%",
        ),
        (
            "yellow_margin: 0.05",
            "yellow_margin: 5%",
            "report.yellow_margin: '5%' is a percentage: write it as a share, like 0.05 for 5%",
        ),
    ],
)
def test_a_percentage_is_answered_with_a_share_only_where_a_share_belongs(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    """A 1-5 rating or an amount written with % was told to be written as a share (`0.8`), which
    is then refused too: only a share's key gets that advice."""
    assert checked(tmp_path, old, new) == [problem]
