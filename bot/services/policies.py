"""The SLA versions in force: the current one (read from its file), and the ones running
leads arrived under."""

from __future__ import annotations

import codecs
import os
from datetime import datetime

from bot.domain.lead import LeadView
from bot.domain.policy import (
    Policy,
    PolicyError,
    check_policy_text,
    named_accounts_problems,
    policy_from_snapshot,
    snapshot,
    with_named_accounts,
)
from storage.repository import Store


class PolicyBook:
    """Looks up each lead's SLA version (editing sla.yaml never moves running clocks)."""

    def __init__(self, store: Store, current: Policy) -> None:
        self.store = store
        self.current = current
        self._versions: dict[str, Policy] = {current.version: current}

    async def record_current(self, now: datetime) -> None:
        await self.store.save_policy(self.current.version, snapshot(self.current), now)

    async def for_lead(self, lead: LeadView) -> Policy:
        return await self.version(lead.sla_version)

    async def version(self, version: str) -> Policy:
        """The SLA version `version` (the current one if it was never stored)."""
        if version not in self._versions:
            content = await self.store.policy_content(version)
            if content is None:
                return self.current
            self._versions[version] = policy_from_snapshot(content, version)
        return self._versions[version]


def _read(path: str, where: str, save_as: str = "UTF-8") -> str:
    """The text of `path`; PolicyError under `where` if it is missing or unreadable, and,
    if it is not UTF-8, one naming the line and how to save the file (`save_as`)."""
    try:  # utf-8-sig: a file saved as Excel's "CSV UTF-8" (or Notepad's UTF-8) starts with a BOM
        with open(path, encoding="utf-8-sig") as handle:
            return handle.read()
    except FileNotFoundError:
        raise PolicyError([f"{where}: {path} does not exist"], path) from None
    except UnicodeDecodeError:
        reason = f"{_not_utf8(path)}; save the file as {save_as}"
        raise PolicyError([f"{where}: cannot read {path}: {reason}"], path) from None
    except OSError as error:  # a directory, no permission
        raise PolicyError([f"{where}: cannot read {path}: {error.strerror}"], path) from None


def _not_utf8(path: str) -> str:
    """Where the file at `path` stops being UTF-8: `line 2 is not UTF-8 text (byte 0xfc)`."""
    with open(path, "rb") as handle:
        data = handle.read().removeprefix(codecs.BOM_UTF8)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return f"line {line} is not UTF-8 text (byte 0x{data[error.start]:02x})"
    return "not UTF-8 text"  # changed since it was read


def load_policy(path: str) -> Policy:
    """Read and validate an SLA file, with its named-accounts CSV (a path relative to the SLA
    file); PolicyError for a missing, unreadable or invalid file. The CSV is read and checked
    even when the SLA file has other problems: every problem is listed at once."""
    checked = check_policy_text(_read(path, "(file)"), path)
    if checked.accounts_file is None:
        return checked.valid(path)
    csv_path = os.path.join(os.path.dirname(path), checked.accounts_file)
    try:
        text = _read(csv_path, "named_accounts_file", save_as="CSV UTF-8")
    except PolicyError as error:
        raise PolicyError(checked.problems + error.problems, path) from None
    if checked.policy is None:
        problems = checked.problems + named_accounts_problems(checked.routing, text, csv_path)
        raise PolicyError(problems, path)
    return with_named_accounts(checked.policy, text, csv_path)
