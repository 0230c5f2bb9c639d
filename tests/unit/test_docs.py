"""README.md and docs/: every relative link leads somewhere, every quoted command exists.

Links: each relative Markdown link must name an existing file, and a `#anchor` must name a
heading of that file by GitHub's slug rules. Commands: each `handoff <subcommand> [--option]`
quoted in code (inline or fenced) must be offered by `python -m bot.cli --help` (and the
option by the subcommand's `--help`), and each `python -m <module>` must be importable, so
the docs never promise a command that does not run today.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

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
