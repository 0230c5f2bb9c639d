"""App Home: read what one person's home shows, for the outbox to render and publish."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.domain.access import BARRED
from bot.domain.effects import RefreshHomes
from bot.domain.lead import LeadView
from bot.domain.report import parse_period
from bot.services.policies import PolicyBook
from bot.services.reports import Reports
from bot.services.routing import Availability, NobodyAway, rotations
from bot.slack.blocks import section
from bot.slack.home import (
    LEADS_READ,
    OVERDUE_SHOWN,
    Dashboard,
    HomeState,
    Queue,
    home_view,
    most_overdue,
)
from bot.slack.route_views import own_share
from storage.home import HomeStore


class Homes:
    """Reads what one person's App Home shows and renders it (for the outbox to publish)."""

    def __init__(
        self,
        rows: HomeStore,
        policies: PolicyBook,
        reports: Reports,
        names: Mapping[str, str] | None = None,
    ) -> None:
        self.names = names if names is not None else {}  # members' display names
        self.rows = rows
        self.policies = policies
        self.reports = reports
        self.availability: Availability = NobodyAway()  # who is away (time away wires in)

    async def opened(self, user: str, now: datetime) -> None:
        """`user` opened App Home: remember them, and queue their home (a request already
        waiting serves: it renders the state as it is when it is sent)."""
        await self.rows.opened(user, now, [RefreshHomes(users=(user,))])

    async def notice(self, user: str, text: str, now: datetime) -> None:
        """Queue `user`'s home with `text` on top: the private answer to a press in it."""
        await self.rows.notice(user, text, now)

    async def view(self, user: str, now: datetime, notice: str | None = None) -> dict[str, Any]:
        # A guest's or a deactivated member's home holds no lead. Asked of the database, not
        # of this replica's list of them: Slack tells one replica (`user_change`), the others learn
        # it at their next look (30 s), and whichever replica's worker publishes the home
        # must not render the overdue list or the queue of a member who just left, nor keep
        # showing one who came back the guests' line.
        if await self.rows.gone(user):
            return {"type": "home", "blocks": [section(BARRED)]}
        return home_view(await self.state(user, now, notice), now)

    async def state(self, user: str, now: datetime, notice: str | None = None) -> HomeState:
        policy = self.policies.current
        manager = policy.is_manager(user)
        rep = bool(policy.segments_of(user))
        leads = await self.rows.rep_leads(user, LEADS_READ)
        shown = [*leads.owned, *leads.suggested]
        queue = None
        if rep or shown or not manager:
            queue = Queue(
                leads.owned, leads.suggested, leads.owned_total, leads.suggested_total, rep
            )
        late: list[LeadView] = []
        if manager:
            late = await self.rows.overdue(now, OVERDUE_SHOWN + 1)
        versions = {
            lead.sla_version: await self.policies.for_lead(lead) for lead in [*shown, *late]
        }
        dashboard = None
        if manager:
            period = parse_period("this-week", now, policy.timezone)
            report = await self.reports.report(period, now)
            ranked = most_overdue(late, versions, now)
            dashboard = Dashboard(report, ranked[:OVERDUE_SHOWN], len(ranked) > OVERDUE_SHOWN)
        share, away = None, False
        if rep:
            shown_rotations = await rotations(self.rows, policy, self.availability, now, picks=0)
            share = own_share(shown_rotations, user)
            away = user in await self.availability.away([user], now)
        return HomeState(policy, versions, queue, dashboard, notice, self.names, share, away)
