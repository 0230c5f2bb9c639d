"""The SLA versions in force: the current one (read from its file), and the ones running
leads arrived under."""

from __future__ import annotations

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


def _read(path: str, where: str) -> str:
    try:  # utf-8-sig: a file saved as Excel's "CSV UTF-8" (or Notepad's UTF-8) starts with a BOM
        with open(path, encoding="utf-8-sig") as handle:
            return handle.read()
    except FileNotFoundError:
        raise PolicyError([f"{where}: {path} does not exist"], path) from None
    except (OSError, UnicodeDecodeError) as error:  # a directory, no permission, not UTF-8
        reason = getattr(error, "strerror", None) or str(error)
        raise PolicyError([f"{where}: cannot read {path}: {reason}"], path) from None


def load_policy(path: str) -> Policy:
    """Read and validate an SLA file, with its named-accounts CSV (a path relative to the SLA
    file); PolicyError for a missing, unreadable or invalid file. The CSV is read and checked
    even when the SLA file has other problems: every problem is listed at once."""
    checked = check_policy_text(_read(path, "(file)"), path)
    if checked.accounts_file is None:
        return checked.valid(path)
    csv_path = os.path.join(os.path.dirname(path), checked.accounts_file)
    try:
        text = _read(csv_path, "named_accounts_file")
    except PolicyError as error:
        raise PolicyError(checked.problems + error.problems, path) from None
    if checked.policy is None:
        problems = checked.problems + named_accounts_problems(checked.routing, text, csv_path)
        raise PolicyError(problems, path)
    return with_named_accounts(checked.policy, text, csv_path)
