"""README.md and docs/: every relative link leads somewhere, every quoted command exists.

Links: each relative Markdown link must name an existing file, and a `#anchor` must name a
heading of that file by GitHub's slug rules. Commands: each `handoff <subcommand> [--option]`
quoted in code (inline or fenced) must be offered by `python -m bot.cli --help` (and the
option by the subcommand's `--help`), and each `python -m <module>` must be importable, so
the docs never promise a command that does not run today.

References: the tables and lists a reader looks things up in are held to what the code reads,
offers and declares, both ways (docs/operations.md's variables, commands with their defaults and
manifest; the SLA file's keys; the routes; README.md's dependencies; the metrics, against a
running server's scrape in tests/e2e/test_metrics.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tomllib
import types
import typing
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from pydantic import BaseModel

from bot.domain.policy import Policy

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(```|~~~)")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HANDOFF = re.compile(r"(?<![\w/.$-])handoff[ \t]+(?P<sub>[a-z][a-z-]*)(?P<rest>[^\n]*)")
_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
_PYTHON_M = re.compile(r"(?<![\w/.-])python3?[ \t]+-m[ \t]+(?P<module>[A-Za-z_][\w.]*)")
_SHELL_END = re.compile(r"\s#|&&|;|>>|2>")


@dataclass(frozen=True)
class Page:
    path: Path
    text: str  # the page without its fenced blocks, where headings are
    prose: str  # the text outside code, where links are
    code: list[str]  # fenced blocks and inline spans, where commands are


def split(path: Path) -> Page:
    """The page's prose (code blanked out) and its code (fenced blocks, inline spans)."""
    prose_lines: list[str] = []
    code: list[str] = []
    block: list[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line.strip()):
            if block is None:
                block = []
            else:
                code.append("\n".join(block))
                block = None
            prose_lines.append("")
        elif block is not None:
            block.append(line)
            prose_lines.append("")
        else:
            prose_lines.append(line)
    text = "\n".join(prose_lines)
    for match in _INLINE_CODE.finditer(text):
        code.append(" ".join(match.group(2).split()))  # a span wrapped over lines is one line
    return Page(path, text, _INLINE_CODE.sub(lambda m: " " * len(m.group(0)), text), code)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lowercased, punctuation dropped,
    spaces as hyphens (emoji and other symbols go too; hyphens and underscores stay)."""
    text = _LINK.sub(lambda m: m.group("text"), heading)
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, repeats numbered as GitHub does (`x`, `x-1`)."""
    seen: Counter[str] = Counter()
    found = set()
    for line in split(path).text.splitlines():  # a `# comment` in a code block is no heading
        heading = _HEADING.match(line)
        if heading is None:
            continue
        base = slug(heading.group(2))
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


def broken_links(page: Page, root: Path = ROOT) -> list[str]:
    """The page's relative links whose file, or whose heading, is not there."""
    problems = []
    for match in _LINK.finditer(page.prose):
        target = match.group("target")
        if _SCHEME.match(target):
            continue  # https:, mailto:: not ours to check offline
        file_part, _, anchor = target.partition("#")
        where = (page.path.parent / file_part).resolve() if file_part else page.path
        name = f"{page.path.relative_to(root)}: ({target})"
        if not where.exists():
            problems.append(f"{name}: no such file {where}")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            problems.append(f"{name}: no heading #{anchor} in {where.relative_to(root)}")
    return problems


def quoted_commands(page: Page) -> list[tuple[str, list[str]]]:
    """Each quoted `handoff <sub> …` with the options given on its line."""
    commands = []
    for snippet in page.code:
        for match in _HANDOFF.finditer(snippet):
            rest = _SHELL_END.split(match.group("rest"), maxsplit=1)[0]
            commands.append((match.group("sub"), _OPTION.findall(rest)))
    return commands


@cache
def cli_help(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def subcommands() -> set[str]:
    """The subcommands `python -m bot.cli --help` lists (one per indented line)."""
    return set(re.findall(r"^ {2,}([a-z][a-z-]*)\s", cli_help(), flags=re.MULTILINE)) - {"h"}


@pytest.fixture(scope="module")
def pages() -> list[Page]:
    return [split(path) for path in DOCS]


def test_the_docs_are_there() -> None:
    names = {path.name for path in DOCS}
    assert "README.md" in names and len(names) > 1, names


def test_every_relative_link_and_anchor_exists(pages: list[Page]) -> None:
    problems = [problem for page in pages for problem in broken_links(page)]
    assert not problems, "\n".join(problems)


def test_every_quoted_handoff_command_exists(pages: list[Page]) -> None:
    known = subcommands()
    assert {"serve", "demo", "check"} <= known, known  # the help is what we think it is
    problems = []
    for page in pages:
        name = page.path.relative_to(ROOT)
        for sub, options in quoted_commands(page):
            if sub not in known:
                problems.append(f"{name}: `handoff {sub}` is not a command of {sorted(known)}")
                continue
            offered = set(_OPTION.findall(cli_help(sub)))
            problems += [
                f"{name}: `handoff {sub} {o}`: no such option" for o in options if o not in offered
            ]
    assert not problems, "\n".join(problems)


def test_every_quoted_python_module_exists(pages: list[Page]) -> None:
    modules = {
        m.group("module") for page in pages for s in page.code for m in _PYTHON_M.finditer(s)
    }
    assert "bot.cli" in modules  # the extraction finds what the README quotes
    missing = sorted(module for module in modules if importlib.util.find_spec(module) is None)
    assert missing == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Delivery at Slack's pace", "delivery-at-slacks-pace"),
        ("`POST /leads/{external_id}/activity`", "post-leadsexternal_idactivity"),
        ("`handoff sweep` and cron", "handoff-sweep-and-cron"),
        ("The SLA report 📈", "the-sla-report-"),
        ("[Linked](x.md) heading", "linked-heading"),
    ],
)
def test_slugs_follow_githubs_rules(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[gone](missing.md) [here](page.md#title) [not here](page.md#nope)\n\n"
        "```sh\nhandoff doctor\n# not a heading\nhandoff report --week 2026-W01 --nope\n```\n"
        "Run `handoff serve --socket` ([web](https://example.com)).\n",
        encoding="utf-8",
    )
    parsed = split(page)
    problems = broken_links(parsed, tmp_path)
    assert len(problems) == 2, problems
    assert "no such file" in problems[0] and "no heading #nope" in problems[1], problems
    assert anchors(page) == {"title"}
    assert quoted_commands(parsed) == [
        ("doctor", []),
        ("report", ["--week", "--nope"]),
        ("serve", ["--socket"]),
    ]


# The reference tables of docs/operations.md, held to what the code reads, offers and declares.

OPERATIONS = ROOT / "docs" / "operations.md"
_NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")
_OS_ENVIRON = re.compile(r"os\.environ(?:\.get\(|\[)\s*\"([A-Z][A-Z0-9_]+)\"")


def section(path: Path, heading: str) -> str:
    """The text under `## heading` (or `### heading`), up to the next heading of any level."""
    text = split(path).text  # fenced blocks blanked: a `# comment` in one is no heading
    lines = text.splitlines()
    start = next(
        i for i, line in enumerate(lines) if re.fullmatch(rf"#+ {re.escape(heading)}", line)
    )
    end = next((i for i in range(start + 1, len(lines)) if _HEADING.match(lines[i])), len(lines))
    return "\n".join(lines[start + 1 : end])


def table_rows(text: str) -> list[tuple[str, str]]:
    """Each row of the Markdown tables in `text`, as (first cell, the rest cells joined)."""
    rows = []
    for line in text.splitlines():
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        if len(cells) < 2 or set(cells[0].strip()) <= {"-", ":"}:
            continue
        rows.append((cells[0].strip(), "|".join(cells[1:]).strip()))
    return rows


def documented_variables() -> dict[str, str]:
    """Each variable of the Configuration table, with its meaning (the header names none)."""
    found = {}
    for first, meaning in table_rows(section(OPERATIONS, "Configuration")):
        for name in _NAME.findall(first):
            found[name] = meaning
    return found


class Reading(dict[str, str]):
    """An empty environment that remembers every name asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return default

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)


def variables_read() -> set[str]:
    """What Handoff reads from the environment: every name `Settings.from_env` asks for, and
    each name the code reads from `os.environ` itself (LOG_FORMAT, LOG_LEVEL in the CLI)."""
    from bot.settings import Settings

    env = Reading()
    Settings.from_env(env)
    read = set(env.asked)
    for folder in ("bot", "handlers", "storage"):
        for source in (ROOT / folder).rglob("*.py"):
            read |= set(_OS_ENVIRON.findall(source.read_text(encoding="utf-8")))
    return read


def test_every_documented_variable_is_read_and_every_variable_read_is_documented() -> None:
    """A variable in the table that nothing reads is a setting that does nothing; one read but
    not in the table is a setting nobody can find."""
    documented = documented_variables()
    assert {"SLACK_BOT_TOKEN", "LOG_LEVEL", "HANDOFF_TEST_POSTGRES_URL"} <= set(documented)
    tests_only = {name for name, meaning in documented.items() if meaning.startswith("tests")}
    test_sources = " ".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "tests").rglob("*.py")
    )
    assert [name for name in sorted(tests_only) if f'"{name}"' not in test_sources] == []
    read = variables_read()
    assert sorted(set(documented) - tests_only - read) == [], "documented, never read"
    assert sorted(read - set(documented)) == [], "read, not in docs/operations.md"


def commands() -> dict[str, argparse.ArgumentParser]:
    """`handoff`'s subcommands, by name, from its own parser (the help wraps its lines)."""
    from bot.cli.main import _parser

    (found,) = (a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(found.choices)


def option_defaults(command: argparse.ArgumentParser) -> dict[str, object]:
    """The defaults of a command's options, by option (`--weeks`: 12)."""
    return {
        option: action.default
        for action in command._actions
        for option in action.option_strings
        if option.startswith("--")
    }


def test_the_commands_table_names_every_command_and_its_defaults() -> None:
    """Every subcommand has its row in docs/operations.md's Commands table, and a default the
    row shows (`[--weeks 26]`) is the one the command takes."""
    rows = table_rows(section(OPERATIONS, "Commands"))
    named: dict[str, str] = {}
    for first, _ in rows:
        for span in _INLINE_CODE.finditer(first):
            match = _HANDOFF.search(span.group(2))
            if match:
                named.setdefault(match.group("sub"), "")
                named[match.group("sub")] += " " + match.group("rest")
    offered = commands()
    assert sorted(set(offered) - set(named)) == [], "commands missing from the table"
    problems = []
    for sub, rest in sorted(named.items()):
        defaults = option_defaults(offered[sub])
        for option, value in re.findall(r"\[(--[a-z-]+) (\d+)\]", rest):
            if defaults.get(option) != int(value):
                taken = defaults.get(option)
                problems.append(f"handoff {sub} {option}: {value} documented, {taken} taken")
    assert problems == []


def test_the_manifest_is_described_as_it_is() -> None:
    """docs/operations.md's paragraph on the manifest names its scopes, events and slash
    commands: exactly those manifest.yaml declares."""
    import yaml

    manifest = yaml.safe_load((ROOT / "manifest.yaml").read_text(encoding="utf-8"))
    text = section(OPERATIONS, "Connecting a real Slack workspace")
    paragraph = " ".join(text[text.index("The manifest's scopes:") :].split())
    scopes_text, _, rest = paragraph.partition("It subscribes to")
    events_text, _, commands_text = rest.partition("declares")
    scopes = {
        s
        for s in re.findall(r"`([a-z.]+(?::[a-z.]+)?)`", scopes_text)
        if ":" in s or s == "commands"
    }
    events = set(re.findall(r"`([a-z]+_[a-z_]+)`", events_text))
    commands = set(re.findall(r"`(/[a-z-]+)`", commands_text))
    assert scopes == set(manifest["oauth_config"]["scopes"]["bot"])
    assert events == set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert commands == {c["command"] for c in manifest["features"]["slash_commands"]}


def documented_metrics() -> set[str]:
    """Every `handoff_*` name docs/operations.md's metrics table lists (`claims_total`,
    `slack_ack_seconds{kind}`), and every one named in its alerts and in docs/crm.md."""
    text = section(OPERATIONS, "Metrics and what to alert on")
    names = {
        f"handoff_{name}"
        for first, _ in table_rows(text)
        for name in re.findall(r"`([a-z_]+)(?:\{[a-z]+\})?`", first)
    }
    crm = (ROOT / "docs" / "crm.md").read_text(encoding="utf-8").split("\n\n")
    mentioned = [text, *(p for p in crm if "metric" in p.lower())]  # not its `fields:` names
    return names | {n for p in mentioned for n in re.findall(r"(?<![\w/])handoff_[a-z_]+", p)}


def _types(annotation: object) -> list[object]:
    """What a field may hold: its models, `dict` (a mapping: any key under it) or plain types."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        return [t for arg in typing.get_args(annotation) for t in _types(arg)]
    return [dict if origin is dict else annotation]


def sla_key(path: str) -> bool:
    """Whether `segments[0].claim_window` (a dotted path, indexes allowed) is a key of the SLA
    file: each part a field of the model before it, anything under a mapping."""
    kinds: list[object] = [Policy]
    for part in filter(None, re.split(r"\.|\[\w*\]", path)):
        if dict in kinds:
            return True
        fields = [
            k.model_fields[part]
            for k in kinds
            if isinstance(k, type) and issubclass(k, BaseModel) and part in k.model_fields
        ]
        kinds = [t for field in fields for t in _types(field.annotation)]
        if not kinds:
            return False
    return True


SLA_DOCS = ["sla-file.md", "reports.md", "crm.md", "plan-and-whatif.md", "app-home.md"]
_KEY_PATH = re.compile(r"(?<![\w./-])([a-z_]+(?:\[\w*\])?(?:\.[a-z_]+(?:\[\w*\])?)+)(?![\w(])")
REFUSED_EXAMPLES = {"escalation.nope", "segments[0].cap.opne"}  # what `handoff check` refuses


def test_every_sla_key_the_docs_name_exists_and_every_key_is_documented() -> None:
    """A path like `report.compliance_alert.notify` in the docs must be a key `handoff check`
    takes, and every key of the SLA file's models must be named in the docs (docs/sla-file.md
    promises every key)."""
    pages = [split(ROOT / "docs" / name) for name in SLA_DOCS]
    top = set(Policy.model_fields)
    named = {
        m.group(1)
        for page in pages
        for snippet in page.code
        for m in _KEY_PATH.finditer(snippet)
        if re.split(r"[.\[]", m.group(1))[0] in top
    }
    assert "report.compliance_alert.notify" in named, sorted(named)
    assert sorted(p for p in named - REFUSED_EXAMPLES if not sla_key(p)) == []
    code = " ".join(span for page in pages for span in page.code)
    missing, seen, models = [], set(), [("", Policy)]
    while models:
        prefix, model = models.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            if not re.search(rf"\b{name}\b", code):
                missing.append(prefix + name)
            models += [
                (f"{prefix}{name}.", t)
                for t in _types(field.annotation)
                if isinstance(t, type) and issubclass(t, BaseModel)
            ]
    assert sorted(missing) == []


def test_the_route_tables_list_every_route_the_server_registers() -> None:
    """The route tables of README.md and docs/intake.md list exactly the routes
    handlers/http_routes.py registers, with their methods."""
    source = (ROOT / "handlers" / "http_routes.py").read_text(encoding="utf-8")
    registered = {
        f"{method.upper()} {path}"
        for method, path in re.findall(r"web\.(get|post|put|patch|delete)\(\s*\"([^\"]+)\"", source)
    }
    assert {"POST /leads", "GET /metrics"} <= registered, registered
    for page, heading in [
        (ROOT / "README.md", "Routes"),
        (ROOT / "docs" / "intake.md", "Intake and the HTTP interface"),
    ]:
        listed = {
            route
            for first, _ in table_rows(section(page, heading))
            for route in re.findall(r"`((?:GET|POST|PUT|PATCH|DELETE) /[^`]*)`", first)
        }
        assert listed == registered, page.name


def test_the_dependency_table_lists_what_pyproject_installs() -> None:
    """README.md's Dependencies table names every package pyproject.toml installs (dev ones
    marked `dev:`), and nothing it does not."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in requirements}

    runtime, dev = set(), set()
    for first, _ in table_rows(section(ROOT / "README.md", "Dependencies")):
        kind, listed = (dev, first[len("dev:") :]) if first.startswith("dev:") else (runtime, first)
        kind |= {part.split()[0].lower() for part in listed.split(",") if part.strip()}
    runtime.discard("package")  # the header
    assert runtime == names(project["dependencies"])
    assert dev == names(project["optional-dependencies"]["dev"])


# What the docs say of the defaults, the tests and the metrics' kinds, held to the code.


def _number(value: float) -> str:
    """A default as the docs write it: `30`, `0.5`, `20,000`."""
    return f"{value:,g}"


def documented_defaults() -> dict[str, str]:
    """What docs/operations.md's Configuration table must say of each default, from the code:
    `Settings.from_env` with nothing set (the Slack pace is `Pace`'s, Slack's published one)."""
    from bot.settings import Settings

    s = Settings.from_env({})
    pace = s.pace
    return {
        "SLACK_API_URL": f"default `{s.api_url}`",
        "DATABASE_URL": f"default `{s.database_url}`",
        "HANDOFF_SLA_FILE": f"default `{s.sla_file}`",
        "HOST": f"default `{s.host}:{s.port}`",
        "PORT": f"default `{s.host}:{s.port}`",
        "HANDOFF_SLACK_POSTS_PER_SECOND": f"default {_number(pace.posts_per_second)} per second, "
        f"bursts of {_number(pace.post_burst)}",
        "HANDOFF_SLACK_POST_BURST": f"bursts of {_number(pace.post_burst)}",
        "HANDOFF_SLACK_CALLS_PER_MINUTE": f"default {_number(pace.calls_per_minute)} per minute, "
        f"bursts of {_number(pace.call_burst)}",
        "HANDOFF_SLACK_CALL_BURST": f"bursts of {_number(pace.call_burst)}",
        "HANDOFF_SWEEP_SECONDS": f"default {_number(s.sweep_seconds)}",
        "HANDOFF_INTAKE_MAX_BACKLOG": f"default {_number(s.intake_max_backlog)}",
        "HANDOFF_INTAKE_MAX_IN_FLIGHT": f"default {_number(s.intake_max_in_flight)}",
        "HANDOFF_SHUTDOWN_GRACE": f"default {_number(s.shutdown_grace)}",
        "HANDOFF_SHUTDOWN_DRAIN": f"default {_number(s.shutdown_drain)}",
        "HANDOFF_READY_MAX_OUTBOX_AGE": f"default {_number(s.ready_max_outbox_age)}",
        "HANDOFF_OUTBOX_KEEP_DAYS": f"default {_number(s.outbox_keep_days)}",
        "HANDOFF_REPORT_PROCESS": f"`{int(s.report_process)}` (the default)",
        "HUBSPOT_API_URL": f"default `{s.hubspot_api_url}`",
        "HUBSPOT_ACCESS_TOKEN": f"default `{s.hubspot_api_url}`",  # the row it shares
    }


# Read by bot/cli/main.py itself, not by Settings: their defaults depend on the command.
DEFAULTS_OUTSIDE_SETTINGS = {"LOG_FORMAT", "LOG_LEVEL"}


def test_each_default_the_configuration_table_gives_is_the_codes() -> None:
    """A default in the table is the one `Settings.from_env` takes when the variable is unset,
    and every row that speaks of a default is held to it."""
    documented = documented_variables()
    expected = documented_defaults()
    wrong = [
        f"{name}: the table should say {phrase!r}"
        for name, phrase in expected.items()
        if phrase not in " ".join(documented[name].split())
    ]
    unchecked = sorted(
        name
        for name, meaning in documented.items()
        if "default" in meaning and name not in expected and name not in DEFAULTS_OUTSIDE_SETTINGS
    )
    assert wrong == [] and unchecked == []


_TEST_FILE = re.compile(r"(?<![\w/])(tests/[\w/]+\.py)(?:::(\w+))?")


def named_tests(page: Page) -> list[tuple[str, str | None]]:
    """Each `tests/….py` (and `tests/….py::test_name`) a page names."""
    return [(m.group(1), m.group(2)) for s in page.code for m in _TEST_FILE.finditer(s)]


def missing_tests(page: Page, root: Path = ROOT) -> list[str]:
    """The tests a page names that are not there: no such file, or no such function in it."""
    problems = []
    for path, function in named_tests(page):
        where = root / path
        if not where.is_file():
            problems.append(f"{page.path.name}: {path}: no such file")
        elif function and not re.search(
            rf"^(?:async )?def {function}\(", where.read_text(encoding="utf-8"), re.MULTILINE
        ):
            problems.append(f"{page.path.name}: {path}::{function}: no such test")
    return problems


def test_every_test_the_docs_name_exists(pages: list[Page]) -> None:
    """docs/reliability.md and the others prove their promises by naming tests: each named
    file (and test function) must be there."""
    assert any(named_tests(page) for page in pages)
    problems = [problem for page in pages for problem in missing_tests(page)]
    assert problems == []


def test_each_promise_of_reliability_names_its_test() -> None:
    """docs/reliability.md: each section's promise names the test behind it."""
    text = split(ROOT / "docs" / "reliability.md").text
    headings = [
        m.group(2) for m in map(_HEADING.match, text.splitlines()) if m and m.group(1) == "##"
    ]
    assert len(headings) > 5, headings
    untested = [
        heading
        for heading in headings
        if not _TEST_FILE.search(section(ROOT / "docs" / "reliability.md", heading))
        and not _TEST_FILE.search(
            # a section's subsections carry its tests too
            text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
        )
    ]
    assert untested == []


def test_the_test_check_catches_a_missing_file_and_function(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_here.py").write_text("async def test_yes() -> None: ...\n")
    page = tmp_path / "page.md"
    page.write_text(
        "Proved by `tests/test_here.py::test_yes`, `tests/test_here.py::test_no` and\n"
        "`tests/test_gone.py`.\n",
        encoding="utf-8",
    )
    problems = missing_tests(split(page), tmp_path)
    assert problems == [
        "page.md: tests/test_here.py::test_no: no such test",
        "page.md: tests/test_gone.py: no such file",
    ]


def metric_kinds() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each `handoff_*` metric the code declares, by the name the docs give it (`claims_total`,
    `slack_ack_seconds`), with its kind and label names; the gauges `Metrics.gauge` adds at
    start (GAUGE_HELP's) included."""
    from bot.metrics import GAUGE_HELP, Metrics

    metrics = Metrics()
    for name in GAUGE_HELP:
        metrics.gauge(name, lambda: 0.0)
    found = {}
    for collector, names in metrics.registry._collector_to_names.items():
        labels = tuple(getattr(collector, "_labelnames", ()))
        kind = getattr(collector, "_type", None)
        for name in names:
            if not name.startswith("handoff_") or kind is None:
                continue
            short = name.removeprefix("handoff_")
            if kind == "counter" and short.endswith("_total"):
                found[short] = (kind, labels)
            elif kind != "counter" and not short.endswith(
                ("_bucket", "_count", "_sum", "_created")
            ):
                found[short] = (kind, labels)
    return found


def test_the_metrics_table_gives_each_metric_its_kind_and_labels() -> None:
    """docs/operations.md's metrics table: each metric's kind (counter, histogram, gauge) and
    its labels (`{kind}`) are the ones bot/metrics.py declares, and every metric is there."""
    declared = metric_kinds()
    assert {"claims_total", "slack_ack_seconds", "slack_token_refused"} <= set(declared)
    listed: dict[str, tuple[str, tuple[str, ...]]] = {}
    for first, rest in table_rows(section(OPERATIONS, "Metrics and what to alert on")):
        names = re.findall(r"`([a-z_]+)((?:\{[a-z_, ]+\})?)`", first)
        kinds = [k.strip() for k in rest.split("|")[0].split(",")]
        if not names or kinds == ["kind"]:
            continue
        if len(kinds) == 1:
            kinds *= len(names)
        assert len(kinds) == len(names), first
        for (name, labels), kind in zip(names, kinds, strict=True):
            listed[name] = (kind, tuple(re.findall(r"[a-z_]+", labels)))
    assert listed == declared
