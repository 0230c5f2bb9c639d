"""Seed 000's example MQL through the real server: "downloaded our enterprise-focused ebook,
visited our pricing page in the last [7] days, more than 50 employees" arrives without a score,
is qualified by the shipped `sla.yaml`'s signals and posted with its reasons, points and dates;
a CRM-scored lead shows both scores; lead text in a reason is escaped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.cli.stack import LocalStack, TravelClock
from bot.simulator.data import Message

MID_MARKET = "C0MID"


def stamp(clock: TravelClock, days: float) -> str:
    return (clock() - timedelta(days=days)).isoformat()


def seed_lead(clock: TravelClock, **changes: Any) -> dict[str, Any]:
    """Seed 000's example, as a marketing system sends it: no score, timestamped engagement."""
    lead: dict[str, Any] = {
        "external_id": "seed-000",
        "email": "dana@acme.example",
        "name": "Dana Ortiz",
        "title": "Marketing Manager",
        "company": {"name": "Acme Freight", "employees": 240, "country": "AU"},
        "source": "content",
        "engagement": [
            {
                "type": "content_download",
                "title": "The Enterprise Guide to Lead Handoff (ebook)",
                "at": stamp(clock, 12),
            },
            {
                "type": "page_view",
                "title": "Pricing",
                "url": "https://acme.example/pricing",
                "at": stamp(clock, 2),
            },
        ],
    }
    return lead | changes


async def posted(stack: LocalStack, lead: dict[str, Any], channel: str = MID_MARKET) -> Message:
    status, body = await stack.post_lead(lead)
    assert status == 201, body
    assert body["status"] == "mql", body
    await stack.settle()
    (post,) = stack.sim.messages(channel)
    return post


async def test_the_seed_example_lead_is_posted_as_an_mql_with_its_reasons(
    stack: LocalStack, clock: TravelClock
) -> None:
    post = await posted(stack, seed_lead(clock))
    assert "60 (warm)" in post.all_text
    assert (
        "240 employees +20 · Pricing page 2 days ago +20 · Enterprise ebook 12 days ago +20"
        in post.all_text
    )
    lead = await stack.services.lead(1)
    assert (lead.score, lead.handoff_score) == (60, 60)


async def test_without_the_recent_pricing_visit_it_goes_to_nurture(
    stack: LocalStack, clock: TravelClock
) -> None:
    lead = seed_lead(clock)
    lead["engagement"][1]["at"] = stamp(clock, 8)  # a day outside the 7-day window
    status, body = await stack.post_lead(lead)
    assert (status, body["status"]) == (201, "nurture")
    await stack.settle()
    assert stack.sim.messages(MID_MARKET) == []
    stored = await stack.services.lead(body["id"])
    assert stored.score == 40
    assert "below the MQL threshold 60" in (stored.stage_reason or "")
    # Marketing hears why, and what the lead did earn.
    (notice,) = stack.sim.messages("C0MKTFEED")
    assert "score 40 is below the MQL threshold 60" in notice.all_text
    assert "*Score*: 40 (240 employees +20 · Enterprise ebook 12 days ago +20)" in notice.all_text


async def test_the_score_is_as_of_arrival(stack: LocalStack, clock: TravelClock) -> None:
    """Sent today with `received_at` a week ago: the visit nine days ago was two days before it
    arrived, and the dates on the post count from the arrival."""
    received = clock() - timedelta(days=7)
    lead = seed_lead(clock, received_at=received.isoformat())
    lead["engagement"] = [
        {**lead["engagement"][0], "at": (received - timedelta(days=12)).isoformat()},
        {**lead["engagement"][1], "at": (received - timedelta(days=2)).isoformat()},
    ]
    post = await posted(stack, lead)
    assert "Pricing page 2 days ago +20" in post.all_text


async def test_a_crm_score_is_kept_and_ours_is_shown_beside_it(
    stack: LocalStack, clock: TravelClock
) -> None:
    post = await posted(stack, seed_lead(clock, score=72))
    assert "CRM score 72 (warm) · Handoff 60" in post.all_text
    assert "score sent by the marketing system" not in post.all_text
    lead = await stack.services.lead(1)
    assert (lead.score, lead.handoff_score) == (72, 60)


async def test_a_demo_request_qualifies_alone_and_lead_text_is_escaped(
    stack: LocalStack, clock: TravelClock
) -> None:
    title = "VP <!channel> & Growth"
    lead = seed_lead(
        clock,
        title=title,
        company={"name": "Tiny Co", "employees": 12},
        engagement=[{"type": "demo", "title": "Book a demo", "at": stamp(clock, 1 / 24)}],
    )
    post = await posted(stack, lead, channel="C0SMB")
    assert "Demo request 1 hour ago +40 (qualifies)" in post.all_text
    assert "VP &lt;!channel&gt; &amp; Growth +15" in post.all_text
    assert "<!channel>" not in post.all_text
