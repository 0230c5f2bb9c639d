"""`handoff demo`: the whole loop on the local Slack simulator, with sample leads and reps."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import tempfile
import unicodedata
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from textwrap import shorten
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import yaml

from bot.cli.stack import CHANNELS, INTAKE_TOKEN, PEOPLE, LocalStack, TravelClock, start_stack
from bot.crmfake.hubspot import HubSpotFake
from bot.domain.durations import words
from bot.domain.lead import LeadView, Stage
from bot.domain.naming import readable
from bot.domain.policy import parse_policy
from bot.domain.report import percentile
from bot.simulator.data import Ephemeral, Message
from bot.simulator.text import mrkdwn_to_plain, render_blocks_text
from bot.slack.text import team_time

SAMPLE = Path(__file__).parent / "sample"
RULE = "─" * 78
WIDTH = 100  # the terminal columns every line of the demo fits in
WORDS = re.compile(r"\s*(?:\[ [^\[\]]* \]|\S+)")  # a button (`[ Unable to contact ]`) is one word
ATTEMPTS = ["Log call", "Log email", "Log LinkedIn"]
HOT_LEAD: dict[str, Any] = {
    "external_id": "hs-10299",
    "email": "hannah.schmidt@contoso.example",
    "name": "Hannah Schmidt",
    "title": "VP Sales Operations",
    "company": {"name": "Contoso Freight", "employees": 3200, "industry": "Logistics"},
    "source": "demo_request",
    "campaign": "Pricing page",
    "score": 92,
}
# A channel mention without its name (`<#C0ENT>`): Slack shows the channel's name.
CHANNEL_MENTION = re.compile(r"<#([CG][A-Z0-9]+)\|?>")


def columns(text: str) -> int:
    """The terminal columns `text` takes: two for a wide character or an emoji (one followed by
    U+FE0F, ♻️), none for a combining mark or a zero-width joiner."""
    found = 0
    for char in text:
        if char == "\ufe0f":
            found += 1
        elif not unicodedata.combining(char) and char != "\u200d":
            found += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return found


def fit(text: str, width: int = WIDTH) -> str:
    """`text` with each line broken between words (`WORDS`) to fit `width` columns; what a line
    carries on to the next is indented two more than the line, so it reads as one (a word longer
    than the width stays whole)."""
    lines: list[str] = []
    for line in text.split("\n"):
        indent = " " * (len(line) - len(line.lstrip(" ")) + 2)
        current = ""
        for word in WORDS.findall(line) or [line]:
            if current.strip() and columns(current + word) > width:
                lines.append(current)
                current = indent + word.lstrip()
            else:
                current += word
        lines.append(current)
    return "\n".join(lines)


def show(text: str, out: TextIO) -> None:
    """Print `text` to fit the terminal (`fit`)."""
    print(fit(text), file=out)


class Demo:
    """A scripted morning of a sales team, told through what Slack shows."""

    def __init__(self, stack: LocalStack, clock: TravelClock, out: TextIO, quiet: bool) -> None:
        self.stack = stack
        self.clock = clock
        self.out = out
        self.quiet = quiet
        self.users = stack.sim.user_names()
        # Who each DM is with (the bot's DM with U0REP2 is D0REP2), and when, on the demo's
        # clock, each message appeared (the simulator's ts follow the wall clock).
        self.dms = {stack.sim.dm_channel(user): user for user in self.users}
        self.posted_at: dict[str, datetime] = {}

    def say(self, text: str) -> None:
        if not self.quiet:
            show(text, self.out)

    def name(self, user: str | None) -> str:
        return f"@{PEOPLE[user][0]}" if user in PEOPLE else str(user)

    def at_work(self, minutes: float) -> None:
        """Move the clock on by `minutes` of the team's working time (the SLA's business
        calendar): the reps work in business hours, so the demo's story shows what normal
        looks like (an attempt at 02:00 is not)."""
        calendar = self.stack.services.policy.calendar
        self.clock.now = calendar.add(self.clock.now, timedelta(minutes=minutes))

    def when(self, moment: datetime | None = None) -> str:
        return team_time(moment or self.clock(), self.stack.services.policy.timezone)

    async def settle(self) -> None:
        """Wait for Slack's side of what happened, and note when its new messages appeared."""
        await self.stack.settle()
        now = self.clock()
        for channel in self.stack.sim.all_channels():
            for message in self.stack.sim.all_messages(channel):
                self.posted_at.setdefault(message.ts, now)

    def _named(self, value: Any) -> Any:
        """`value` (mrkdwn, or blocks) with channel mentions carrying their names."""
        if isinstance(value, str):
            return CHANNEL_MENTION.sub(lambda m: f"<#{m[1]}|{CHANNELS.get(m[1], m[1])}>", value)
        if isinstance(value, list):
            return [self._named(item) for item in value]
        if isinstance(value, dict) and value.get("type") != "plain_text":  # shown as written
            return {key: self._named(item) for key, item in value.items()}
        return value

    def plain(self, text: str) -> str:
        """Mrkdwn as Slack shows it: people and channels by name."""
        return mrkdwn_to_plain(self._named(text), self.users)

    def render(self, message: Message | Ephemeral) -> str:
        """A message (or ephemeral) as Slack shows it, people and channels by name."""
        return render_blocks_text(
            self._named(message.blocks), text=self._named(message.text), users=self.users
        )

    async def lead(self, external_id: str) -> LeadView:
        lead = await self.stack.services.store.by_external_id(external_id)
        assert lead is not None, external_id
        return lead

    async def press(self, user: str, label: str, external_id: str) -> None:
        lead = await self.lead(external_id)
        assert lead.message_channel is not None
        await self.stack.driver.press(
            user, label, channel=lead.message_channel, message_ts=lead.message_ts
        )
        await self.settle()
        when = team_time(self.clock(), self.stack.services.policy.timezone)
        self.say(f"  {when}  {self.name(user)} pressed “{label}” on {lead.display_name}")

    async def look_up(self, user: str, external_id: str, event: str) -> None:
        """`user` runs `/lead` on the lead; the demo shows the timeline's line of `event`
        (a claim says whom the lead was suggested to, if that was not the claimer)."""
        card = (await self.stack.driver.command(user, "/lead", external_id)).json or {}
        timeline = [
            line
            for block in card.get("blocks", [])
            if block.get("type") == "section"
            for line in str(block.get("text", {}).get("text", "")).splitlines()
            if line.startswith("• ") and f" · {event}" in line
        ]
        for line in timeline:
            shown = self.plain(line.removeprefix("• "))
            self.say(f"           … {self.name(user)}'s /lead {external_id}: {shown}")

    async def intake(self, leads: list[dict[str, Any]]) -> None:
        self.say("1. Marketing's systems send 20 leads to POST /leads")
        sim = self.stack.sim
        for index, payload in enumerate(leads):
            if index == len(leads) // 2:
                # Slack goes down for two seconds: half the calls fail with 500, the others
                # are carried out but their answers are lost (Handoff cannot know they were).
                sim.inject("chat.*", status=500, every=2, seconds=2)
                sim.inject_connection_drop("chat.*", seconds=2, after=True)
                self.say("  ⚡ Slack is down for 2 s (500s, lost answers); intake keeps answering")
            status, answer = await self.stack.post_lead(payload)
            self.say(f"  {payload['external_id']:<9} → {status} {answer}")
            self.clock.advance(minutes=1)
        await self.settle()
        counts = self.stack.handoff.metrics.counts
        self.say(
            f"  Slack is back: the outbox retried {counts['slack_retries_total']} times and found "
            f"{counts['slack_adopted_total']} posts already in the channel's history, so every "
            f"lead is posted once ({self.duplicates()} duplicates)"
        )
        again, _ = await self.stack.post_lead(leads[0])
        self.say(f"  (the CRM retries {leads[0]['external_id']}: {again}, nothing posted twice)")

    def duplicates(self) -> int:
        """Lead messages beyond the first of each lead, in every channel."""
        seen: Counter[object] = Counter()
        for channel in CHANNELS:
            for message in self.stack.sim.messages(channel):
                meta = message.metadata or {}
                if meta.get("event_type") == "handoff_lead":
                    seen[meta["event_payload"]["lead_id"]] += 1
        return sum(count - 1 for count in seen.values())

    async def work(self) -> None:
        self.say("\n2. Reps claim, race, log attempts and disposition")
        mqls = [lead for lead in await self._leads() if lead.stage.value == "mql"]
        first = mqls[0]
        assert first.message_channel is not None
        # Two reps press Claim on the same lead at the same moment: one wins. A peer presses
        # first, so the lead is most likely taken from the rep it was suggested to.
        segment = self.stack.services.policy.segment(first.segment)
        assert segment is not None
        racers = sorted(segment.reps[:2], key=lambda rep: rep == first.suggested_owner)
        await asyncio.gather(
            *(
                self.stack.driver.press(
                    rep, "Claim", channel=first.message_channel, message_ts=first.message_ts
                )
                for rep in racers
            )
        )
        await self.settle()
        winner = (await self.lead(first.external_id)).owner
        self.say(
            f"  {' and '.join(self.name(r) for r in racers)} both pressed “Claim” on "
            f"{first.display_name}: {self.name(winner)} won, the other was told privately"
        )
        await self.look_up("U0MGR1", first.external_id, "claimed")
        await self.press("U0OUTSIDER", "Claim", mqls[1].external_id)  # not in any pool
        refusal = self.stack.sim.ephemerals(user="U0OUTSIDER")[-1].text
        self.say(f"           … privately: {self.plain(refusal)}")
        for index, lead in enumerate(mqls[:-3]):  # the last three stay unclaimed, clocks running
            if index:
                self.at_work(4)
                await self.press(lead.suggested_owner or "U0MGR1", "Claim", lead.external_id)
            owner = (await self.lead(lead.external_id)).owner or "U0MGR1"
            self.at_work(6 + 9 * (index % 4))
            await self.press(owner, ATTEMPTS[index % 3], lead.external_id)
        await self._dispositions(mqls[:-3])

    async def _dispositions(self, leads: list[LeadView]) -> None:
        plan = [
            "Qualified",
            "Not a fit",
            "Bad timing",
            "Qualified",
            "Bad data",
            "Unable to contact",
            "Needs nurturing",
            "Qualified",
        ]
        reasons = {
            "Not a fit": (
                "Already using competitor",
                "Signed a 3-year deal with a competitor in October; revisit at renewal.",
            ),
            "Bad data": ("Wrong contact", "Form was filled in by an agency on their behalf."),
        }
        # The owner's optional rating of fit and timing: in the modal, or on the message.
        modal_ratings = {"Not a fit": {"fit": "1 poor fit", "timing": "2 a year out"}}
        message_ratings = [("5 ideal fit", "4 this quarter"), ("4 good fit", "3 this year")]
        qualified: list[LeadView] = []
        for lead, label in zip(leads, plan, strict=False):
            owner = (await self.lead(lead.external_id)).owner or "U0MGR1"
            self.at_work(23)
            await self.press(owner, label, lead.external_id)
            if label in reasons:
                reason, note = reasons[label]
                ratings = modal_ratings.get(label, {})
                values: dict[str, Any] = {"reason": reason, "note": note, **ratings}
                await self.stack.driver.submit_view(owner, values)
                await self.settle()
                rated = f" and rated it {', '.join(ratings.values())}" if ratings else ""
                self.say(f"           … and sent the modal: {reason} / “{note}”{rated}")
            if label == "Qualified" and len(qualified) < len(message_ratings):
                fit, timing = message_ratings[len(qualified)]
                await self._rate(owner, lead, fit, timing)
            if label == "Qualified":
                qualified.append(lead)
            if label == "Unable to contact":
                refusal = self.stack.sim.ephemerals(user=owner)[-1].text
                self.say(f"           … privately: {refusal}")
                # Five more attempts, an hour apart in working time: every attempt counts,
                # so six in all meet the follow-up standard (seed 002: 6 attempts over 2
                # weeks), and the lead may be recycled now.
                for attempt in range(5):
                    self.at_work(60)
                    await self.press(owner, ATTEMPTS[attempt % 3], lead.external_id)
                await self.press(owner, label, lead.external_id)
                after = await self.lead(lead.external_id)
                done = "recycled" if after.stage is Stage.RECYCLE else f"still {after.stage}"
                minimum = self.stack.services.policy.follow_up.min_attempts
                self.say(
                    f"           … five more attempts, an hour apart: {after.attempts} of "
                    f"{minimum}, and this time {lead.display_name} is {done}"
                )

    async def _rate(self, owner: str, lead: LeadView, fit: str, timing: str) -> None:
        """The owner picks a fit and a timing on the closed lead's message (one click each)."""
        assert lead.message_channel is not None
        for action_id, option in (("lead_rate_fit", fit), ("lead_rate_timing", timing)):
            await self.stack.driver.choose(
                owner,
                option,
                channel=lead.message_channel,
                action_id=action_id,
                message_ts=lead.message_ts,
            )
        await self.settle()
        self.say(f"           … and rated it on the message: {fit}, {timing}")

    async def crm(self) -> None:
        """The CRM reports an opportunity on the first qualified lead."""
        qualified = [lead for lead in await self._leads() if lead.stage.value == "sql"]
        if not qualified:
            return
        lead = qualified[0]
        self.clock.advance(minutes=40)
        body = {"type": "stage", "stage": "opportunity", "amount": 48000, "currency": "AUD"}
        url = f"{self.stack.base_url}/leads/{lead.external_id}/activity"
        headers = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
        async with self.stack.session.post(url, json=body, headers=headers) as response:
            status = response.status
        when = team_time(self.clock(), self.stack.services.policy.timezone)
        self.say(
            f"  {when}  the CRM: {lead.display_name} is an opportunity of AUD 48,000 → {status}"
        )

    async def _leads(self) -> list[LeadView]:
        store = self.stack.services.store
        leads = [await store.get(lead_id) for lead_id in range(1, await store.count_leads() + 1)]
        return [lead for lead in leads if lead is not None]

    async def escalate(self) -> None:
        """Leads left unclaimed, and a hot lead nobody claims: the sweep reminds, alerts the
        managers, reassigns."""
        self.say("\n3. Nobody claims a hot lead: the SLA clock polices itself")
        policy = self.stack.services.policy
        zone = ZoneInfo(policy.timezone)
        today = self.clock().astimezone(zone).date()
        # `serve` sweeps every 30 s; the demo sweeps when its story needs it. This evening's
        # sweep finds the leads of yesterday's intake that nobody has claimed (or touched).
        evening = datetime.combine(today, time(18, 0), zone).astimezone(UTC)
        self.clock.now = max(self.clock.now, evening)
        posts = await self.sweep()
        self.say(f"  {self.when()}  evening sweep, on the leads nobody has claimed yet:")
        dms: Counter[str] = Counter()
        for where, text in posts:
            if where.startswith("DM to "):
                dms[where.removeprefix("DM to ")] += 1
            else:
                self.say(f"           → {where}: {text}")
        if dms:  # each person's DMs are in step 4
            to = ", ".join(f"{who} ({n})" if n > 1 else who for who, n in sorted(dms.items()))
            self.say(f"           → {dms.total()} DMs from Handoff, to {to} (shown in 4.)")
        day = today + timedelta(days=1)
        while not policy.calendar.is_working_day(day):
            day += timedelta(days=1)
        self.clock.now = datetime.combine(day, time(10, 0), zone).astimezone(UTC)
        status, answer = await self.stack.post_lead(HOT_LEAD)
        await self.settle()
        self.say(
            f"  {self.when()}  {HOT_LEAD['external_id']} → {status} {answer}: claim within 1 hour"
        )
        for minutes, moment in (
            (31, "half the claim window"),
            (30, "claim deadline"),
            (30, "150%"),
        ):
            self.clock.advance(minutes=minutes)
            posts = await self.sweep(about=HOT_LEAD)
            self.say(f"  {self.when()}  sweep ({moment}):")
            for where, text in posts:
                self.say(f"           → {where}: {text}")

    async def sweep(self, about: dict[str, Any] | None = None) -> list[tuple[str, str]]:
        """Run the escalation sweep now: where it posted what (only `about` that lead, if
        given; else each thread reply names its lead)."""
        before = len(self.stack.sim.calls)
        await self.stack.handoff.sweeper.run(self.clock())
        await self.settle()
        posts: list[tuple[str, str]] = []
        for call in self.stack.sim.calls[before:]:
            if call.method != "chat.postMessage" or not call.ok:
                continue
            channel, thread = str(call.args.get("channel")), call.args.get("thread_ts")
            lead = self._lead_of(channel, thread, call.args.get("metadata"))
            text = str(call.args.get("text") or "")
            if about is not None:  # a DM names the lead in its text only
                if lead != about["external_id"] and str(about["name"]) not in text:
                    continue
            elif thread and lead:
                lead = (await self.lead(lead)).display_name
            where = self._where(channel, thread, lead if about is None else None)
            posts.append((where, self.plain(text)))
        return posts

    def _lead_of(self, channel: str, thread: object, metadata: Any) -> str | None:
        """The external id of the lead a post is about: its own, or its thread's."""
        if thread:
            parent = self.stack.sim.message(channel, str(thread))
            metadata = parent.metadata if parent else None
        payload = (metadata or {}).get("event_payload") or {}
        external_id = payload.get("external_id")
        return str(external_id) if external_id else None

    def _where(self, channel: str, thread: object, lead: str | None = None) -> str:
        if channel in CHANNELS:
            if thread and lead:
                return f"#{CHANNELS[channel]}, thread of {lead}"
            return f"#{CHANNELS[channel]}" + (" (thread)" if thread else "")
        return f"DM to {self.name(self.dms.get(channel, channel))}"

    def transcript(self) -> None:
        sim = self.stack.sim
        self.say(f"\n4. What Slack shows, channel by channel\n{RULE}")
        for channel, name in CHANNELS.items():
            messages = sim.messages(channel)
            if not messages:
                continue
            self.say(f"#{name} ({len(messages)} message{'s' * (len(messages) != 1)})\n{RULE}")
            for message in messages:
                self.say(self.render(message))
                self._lines(sim.thread(channel, message.ts), "  ↳ ")  # its thread
                self.say(RULE)
        # Each person's DMs with Handoff (reminders), oldest first.
        dms = {user: sim.all_messages(dm) for dm, user in self.dms.items()}
        dms = {user: messages for user, messages in dms.items() if messages}
        total = sum(len(messages) for messages in dms.values())
        self.say(f"DMs from Handoff: {total}, to {len(dms)} people\n{RULE}")
        for user, messages in dms.items():
            self.say(f"{self.name(user)} ({len(messages)}):")
            self._lines(messages, "  ")
        self.say(RULE)
        private = sim.ephemerals()
        self.say(f"Private (ephemeral) answers: {len(private)}")
        for note in private:
            self.say(f"  to {self.name(note.user)}: {self.plain(note.text)}")

    def _lines(self, messages: list[Message], prefix: str) -> None:
        """Messages one a line, each after its time on the demo's clock; a message repeating
        the one before it is counted, not shown again."""
        shown: list[list[Any]] = []  # [time, text, count]
        for message in messages:
            stamp = self.posted_at.get(message.ts)
            text = self.render(message)
            if shown and shown[-1][1] == text:
                shown[-1][2] += 1
            else:
                shown.append([self.when(stamp) + "  " if stamp else "", text, 1])
        for when, text, count in shown:
            text = text.replace("\n", "\n" + " " * (len(prefix) + len(when)))
            self.say(f"{prefix}{when}{text}" + (f" (×{count})" if count > 1 else ""))

    async def report(self, chart: Path | None) -> None:
        """A manager runs `/sla-report`: the week privately, and its charts in a DM."""
        show(f"\n6. The week's SLA report (/sla-report by @grace)\n{RULE}", self.out)
        manager = "U0MGR1"
        await self.stack.driver.command(manager, "/sla-report", "", channel_id="C0ENT")
        await self.settle()
        answers = self.stack.sim.ephemerals(user=manager)
        if answers:
            show(self.render(answers[-1]), self.out)
        files = self.stack.sim.files(self.stack.sim.dm_channel(manager))
        speed = next((f for f in files if f.content and "speed" in f.name), None)
        if chart is not None and speed is not None and speed.content is not None:
            await asyncio.to_thread(chart.write_bytes, speed.content)
            show(f"\nThe speed-to-lead chart sent to @grace's DM is in {chart}", self.out)

    async def summary(self) -> None:
        leads = await self._leads()
        show(f"\n5. Final state of every lead\n{RULE}", self.out)
        # a lead a line, inside WIDTH even with the longest reason (the MQL threshold's)
        header = f"{'lead':<9} {'name':<16} {'segment':<10} {'stage':<8} {'owner':<7} "
        show(header + f"{'tries':>5}  disposition", self.out)
        policy = self.stack.services.policy
        for lead in leads:
            # as the SLA and the channels name them: "Unable to contact", not no_response
            code = lead.disposition_code
            chosen = policy.disposition(code) if code else None
            outcome = chosen.label if chosen else code or lead.stage_reason or ""
            show(
                f"{lead.external_id:<9} {lead.display_name[:16]:<16} {readable(lead.segment):<10} "
                f"{lead.stage.value:<8} {self.name(lead.owner) if lead.owner else '—':<7} "
                f"{lead.attempts:>5}  {outcome}",
                self.out,
            )
        stages = Counter(lead.stage.value for lead in leads)
        # As the report measures time to claim: working minutes, the nearest-rank median.
        calendar = self.stack.services.policy.calendar
        claim_minutes = [
            calendar.elapsed(lead.posted_at, lead.claimed_at)
            for lead in leads
            if lead.claimed_at and lead.posted_at
        ]
        calls = len(self.stack.sim.calls)
        invalid = len(self.stack.sim.invalid_payloads)
        show(RULE, self.out)
        show(
            f"{len(leads)} leads: " + ", ".join(f"{n} {s}" for s, n in sorted(stages.items())),
            self.out,
        )
        if claim_minutes:
            claim = words(percentile(claim_minutes, 0.5) or 0)
            show(f"median time to claim {claim} of business time (simulated clock)", self.out)
            show(f"{calls} Slack API calls, {invalid} rejected as invalid Block Kit", self.out)


async def start_hubspot(leads: list[dict[str, Any]]) -> HubSpotFake:
    """A local HubSpot portal (held to HubSpot's published OpenAPI files) with a contact for
    each sample lead and an owner for each member of the sales team."""
    hub = await HubSpotFake().start()
    for user_id, (name, real_name) in PEOPLE.items():
        if user_id.startswith(("U0REP", "U0MGR")):
            first, _, last = real_name.split(" (")[0].partition(" ")
            hub.add_owner(f"{name}@example.com", first, last)
    for lead in leads:
        first, _, last = str(lead.get("name") or "").partition(" ")
        hub.add_contact(str(lead["email"]), firstname=first, lastname=last)
    return hub


def crm_story(hub: HubSpotFake, out: TextIO) -> None:
    """What HubSpot took from Handoff: owners, lead statuses, lifecycle stages and notes."""
    lines = hub.story()
    show(f"\n7. What HubSpot received ({len(lines)} writes, in order)\n{RULE}", out)
    for line in lines:  # a long note cut at a word, and marked as cut
        show(f"  {shorten(line, 150, placeholder=' …')}", out)


async def run_demo(quiet: bool = False, out: TextIO = sys.stdout, chart: Path | None = None) -> int:
    """Run the scripted demo end to end; 0 when every step behaved."""
    # The demo tells the outage story itself; the outbox's retry warnings would interleave.
    # Only while it runs: a process that goes on after it (a test run) keeps its warnings.
    outbox_log = logging.getLogger("handoff.outbox")
    level = outbox_log.level
    outbox_log.setLevel(logging.ERROR)
    try:
        return await _run_demo(quiet, out, chart)
    finally:
        outbox_log.setLevel(level)


async def _run_demo(quiet: bool, out: TextIO, chart: Path | None) -> int:
    # The sample SLA with a HubSpot `crm:`: claims, attempts and dispositions reach the CRM.
    data = yaml.safe_load((SAMPLE / "sla.yaml").read_text(encoding="utf-8"))
    data["crm"] = {"kind": "hubspot"}
    policy = parse_policy(data)
    leads = json.loads((SAMPLE / "leads.json").read_text(encoding="utf-8"))
    clock = TravelClock()
    hub = await start_hubspot([*leads, HOT_LEAD])  # the hot lead of step 3 too
    with tempfile.TemporaryDirectory(prefix="handoff-demo-") as folder:
        stack = await start_stack(
            f"sqlite+aiosqlite:///{folder}/demo.db",
            policy,
            clock=clock,
            HUBSPOT_ACCESS_TOKEN=hub.token,
            HUBSPOT_API_URL=hub.base_url,
        )
        try:
            demo = Demo(stack, clock, out, quiet)
            demo.say(
                f"Handoff demo: local Slack simulator at {stack.sim.base_url}, "
                f"Handoff at {stack.base_url}, SLA “{policy.name}”\n"
            )
            await demo.intake(leads)
            await demo.work()
            await demo.crm()
            await demo.escalate()
            demo.transcript()
            await demo.summary()
            await demo.report(chart)
            await stack.settle()
            crm_story(hub, out)
            return 1 if stack.sim.invalid_payloads or demo.duplicates() else 0
        finally:
            await stack.close()
            await hub.stop()  # raises if HubSpot's specs refused an answer of the fake
