"""Report charts uploaded through the outbox: Slack's external upload flow, exactly once.

The real Handoff server delivers `upload` rows to the Slack simulator: to a user's DM
(conversations.open), through 5xx answers, a lost answer after Slack shared the file, and a
channel Slack refuses for good.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.cli.stack import LocalStack
from bot.slack.charts import daily_compliance_png, speed_to_lead_png
from storage.outbox import Kind, OutboxStore, enqueue_upload
from tests.conftest import local_server

NOW = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
CHART = speed_to_lead_png([5, 20, 45, 70, 95, 130, 200], 120, "Speed to lead: hot, week 47")


async def upload(stack: LocalStack, channel: str, content: bytes = CHART, **options: Any) -> None:
    options.setdefault("filename", "speed-to-lead-w47.png")
    options.setdefault("title", "Speed to lead, week 47")
    await stack.handoff.database.run(
        lambda db: enqueue_upload(db, channel, NOW, content=content, **options)
    )
    stack.handoff.outbox.deliver_soon()


async def upload_rows(stack: LocalStack) -> list[dict[str, Any]]:
    rows = await OutboxStore(stack.handoff.database).rows()
    return [row for row in rows if row["kind"] == Kind.UPLOAD]


@pytest.fixture(autouse=True)
def quick_settle(stack: LocalStack) -> None:
    # The simulator shows a shared file at once; real Slack takes a moment (default 5 s).
    stack.handoff.outbox.upload_settle = timedelta(seconds=0.3)


async def test_a_chart_reaches_a_users_dm_once_with_its_bytes(stack: LocalStack) -> None:
    comment = "Your speed to lead last week: 84% within the SLA."
    await upload(stack, "U0REP1", initial_comment=comment, alt_text="A histogram", key="w47:rep1")
    await upload(stack, "U0REP1", initial_comment=comment, key="w47:rep1")  # same key: ignored
    await stack.settle()

    sim = stack.sim
    files = sim.files("U0REP1")
    assert len(files) == 1
    chart = files[0]
    assert chart.content == CHART and chart.length == len(CHART)
    assert (chart.name, chart.title, chart.mimetype) == (
        "speed-to-lead-w47.png",
        "Speed to lead, week 47",
        "image/png",
    )
    assert chart.alt_txt == "A histogram"
    [message] = sim.messages(sim.dm_channel("U0REP1"))
    assert message.text == comment
    assert message.files == [chart.to_api()]
    assert [c.args.get("users") for c in sim.calls_to("conversations.open")] == ["U0REP1"]
    assert len(sim.calls_to("files.completeUploadExternal")) == 1
    assert [c.args["size"] for c in sim.calls_to("upload_url")] == [len(CHART)]
    [row] = await upload_rows(stack)
    assert (row["state"], row["result_ts"]) == ("done", chart.id)


async def test_uploads_to_a_channel_and_to_a_dm_by_its_id(stack: LocalStack) -> None:
    compliance = daily_compliance_png(
        [(NOW.date() + timedelta(days=n), 0.5 + n / 20) for n in range(7)], 0.9, "First touch"
    )
    await upload(stack, "C0REVOPS", compliance, filename="compliance.png", title="First touch")
    await upload(stack, "D0REP2", initial_comment="For you")
    await stack.settle()

    [shared] = stack.sim.files("C0REVOPS")
    assert shared.content == compliance and shared.title == "First touch"
    assert stack.sim.messages("C0REVOPS")[0].text == ""  # no comment: the file alone
    assert [f.content for f in stack.sim.files("D0REP2")] == [CHART]
    assert stack.sim.calls_to("conversations.open") == []
    assert {row["state"] for row in await upload_rows(stack)} == {"done"}


async def test_completion_failing_with_500_twice_still_shares_once(stack: LocalStack) -> None:
    sim = stack.sim
    sim.inject("files.completeUploadExternal", status=500, times=2)
    await upload(stack, "U0REP1")
    await stack.settle()

    assert [f.content for f in sim.files("U0REP1")] == [CHART]
    completions = sim.calls_to("files.completeUploadExternal")
    assert [c.status for c in completions] == [500, 500, 200]
    assert len(sim.calls_to("files.getUploadURLExternal")) == 3  # each attempt starts afresh
    assert len([f for f in sim.files() if f.completed]) == 1
    # Before each retry the DM's history was read, once Slack had time to show the file.
    history = sim.calls_to("conversations.history")
    assert len(history) == 2
    for failed, looked in zip(completions[:2], history, strict=True):
        assert looked.at - failed.at >= 0.3
    [row] = await upload_rows(stack)
    assert row["state"] == "done" and row["attempts"] == 3
    assert stack.handoff.metrics.counts["slack_retries_total"] == 2


async def test_a_lost_answer_after_sharing_is_found_not_uploaded_again(stack: LocalStack) -> None:
    sim = stack.sim
    sim.inject_connection_drop("files.completeUploadExternal", times=1, after=True)
    await upload(stack, "U0REP1", initial_comment="Week 47")
    await stack.settle()

    [chart] = sim.files("U0REP1")
    assert chart.content == CHART
    assert len(sim.calls_to("files.completeUploadExternal")) == 1
    assert len(sim.messages(sim.dm_channel("U0REP1"))) == 1
    [row] = await upload_rows(stack)
    assert (row["state"], row["result_ts"]) == ("done", chart.id)
    assert stack.handoff.metrics.counts["slack_adopted_total"] == 1


async def test_a_failing_upload_url_is_retried(stack: LocalStack) -> None:
    stack.sim.inject("upload_url", status=503, times=1)
    await upload(stack, "C0REVOPS")
    await stack.settle()

    assert [f.content for f in stack.sim.files("C0REVOPS")] == [CHART]
    assert [c.status for c in stack.sim.calls_to("upload_url")] == [503, 200]
    [row] = await upload_rows(stack)
    assert row["state"] == "done"


async def test_a_channel_slack_refuses_ends_failed_with_an_alert(stack: LocalStack) -> None:
    stack.sim.missing_channels.add("C0GONE")
    await upload(stack, "C0GONE")
    await stack.settle()

    assert stack.sim.files("C0GONE") == []
    [row] = await upload_rows(stack)
    assert (row["state"], row["last_error"]) == ("failed", "channel_not_found")
    [alert] = stack.sim.messages("C0ESCALATE")
    assert "C0GONE" in alert.text and "channel_not_found" in alert.text
    assert len(stack.sim.calls_to("files.completeUploadExternal")) == 1  # not retried
    assert stack.handoff.metrics.counts["slack_errors_total"] == 1


@pytest.mark.parametrize(
    ("user", "error", "advice"),
    [
        ("U0NOBODY", "user_not_found", "No such person in this workspace"),
        ("U0REP1", "user_disabled", "Slack account is deactivated"),  # deactivated below
    ],
)
async def test_an_unknown_or_deactivated_user_ends_failed_with_an_alert(
    stack: LocalStack, user: str, error: str, advice: str
) -> None:
    # conversations.open refuses both (Slack's reference: user_not_found, user_disabled).
    if error == "user_disabled":
        stack.sim.deactivate_user(user)
    await upload(stack, user)
    await stack.settle()

    [row] = await upload_rows(stack)
    assert (row["state"], row["last_error"]) == ("failed", error)
    [alert] = stack.sim.messages("C0ESCALATE")
    assert error in alert.all_text and advice in alert.all_text
    assert stack.sim.calls_to("files.getUploadURLExternal") == []


async def test_empty_or_oversized_files_are_refused_at_enqueue(stack: LocalStack) -> None:
    for content in (b"", b"x" * (5 * 1024 * 1024 + 1)):
        with pytest.raises(ValueError):
            await upload(stack, "C0REVOPS", content)
    assert await upload_rows(stack) == []


@pytest.mark.parametrize(
    ("method", "status", "content_type", "text"),
    [
        ("files.getUploadURLExternal", 503, "text/plain", "upstream connect error"),
        ("files.completeUploadExternal", 503, "text/plain", "upstream connect error"),
        ("files.completeUploadExternal", 200, "text/html", "<html>Sign in to the network</html>"),
    ],
)
async def test_an_upload_answered_by_a_proxy_not_slack_still_shares_once(
    stack: LocalStack,
    caplog: pytest.LogCaptureFixture,
    method: str,
    status: int,
    content_type: str,
    text: str,
) -> None:
    """A step of the upload answered by a proxy's page, not Slack's JSON, twice: retried as a
    5xx is (its outcome unknown: the DM's history is read first), the file shared once, no
    traceback (before: AttributeError on the text's `.get`; an HTML 200 was given up)."""
    sim = stack.sim
    sim.inject(method, status=status, text=text, content_type=content_type, times=2)
    await upload(stack, "U0REP1")
    await stack.settle()
    assert await stack.handoff.outbox.drain(30)

    assert [f.content for f in sim.files("U0REP1")] == [CHART]
    assert len([f for f in sim.files() if f.completed]) == 1
    [row] = await upload_rows(stack)
    assert row["state"] == "done" and row["attempts"] == 3
    assert "failed unexpectedly" not in caplog.text and "Traceback" not in caplog.text
    assert not any(record.exc_info for record in caplog.records)


async def test_a_chart_goes_through_the_proxy_slacks_calls_go_through(stack: LocalStack) -> None:
    """Behind a proxy (HTTPS_PROXY, which slack_sdk's client follows), the chart's bytes take
    it too, as slack_sdk's own files_upload_v2 sends them (`proxy=self.proxy`): before, the
    upload URL was POSTed straight, which a network that lets out only its proxy refuses, and
    every chart waited for ever."""
    seen: list[tuple[str, str]] = []

    async def forward(request: web.Request) -> web.Response:
        seen.append((request.method, str(request.url)))
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, request.url, data=await request.read(), headers=request.headers
            ) as answer,
        ):
            body = await answer.read()
            return web.Response(status=answer.status, body=body, content_type=answer.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    async with local_server(app) as proxy:
        stack.handoff.outbox.client.proxy = proxy
        await upload(stack, "C0REVOPS")
        await stack.settle()

    [shared] = stack.sim.files("C0REVOPS")
    assert shared.content == CHART
    methods = [url.split("?")[0].rsplit("/", 1)[-1] for _, url in seen if "/api/" in url]
    assert "files.getUploadURLExternal" in methods and "files.completeUploadExternal" in methods
    assert any("/upload/" in url for method, url in seen if method == "POST"), seen
