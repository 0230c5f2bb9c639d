"""The SLA versions in force: the current one (read from its file), and the ones running
leads arrived under."""

from __future__ import annotations

from datetime import datetime

from bot.domain.lead import LeadView
from bot.domain.policy import Policy, PolicyError, policy_from_snapshot, policy_from_text, snapshot
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


def load_policy(path: str) -> Policy:
    """Read and validate an SLA file; PolicyError for a missing, unreadable or invalid file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise PolicyError([f"(file): {path} does not exist"], path) from None
    except (OSError, UnicodeDecodeError) as error:  # a directory, no permission, not UTF-8
        reason = getattr(error, "strerror", None) or str(error)
        raise PolicyError([f"(file): cannot read {path}: {reason}"], path) from None
    return policy_from_text(text, path)
