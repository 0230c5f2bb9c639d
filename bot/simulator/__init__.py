"""A local Slack for end-to-end tests and `handoff demo`: fake Web API, signed driver, text view."""

from bot.simulator.blockkit import InvalidPayload, validate_blocks, validate_view
from bot.simulator.data import Ephemeral, Message, OpenView, RecordedCall, SimUser
from bot.simulator.driver import DriverResponse, SlackDriver, SocketModeDriver
from bot.simulator.faults import Fault, RetryWindow
from bot.simulator.server import SlackSimulator
from bot.simulator.text import mrkdwn_to_plain, render_blocks_text

__all__ = [
    "DriverResponse",
    "Ephemeral",
    "Fault",
    "InvalidPayload",
    "Message",
    "OpenView",
    "RecordedCall",
    "RetryWindow",
    "SimUser",
    "SlackDriver",
    "SlackSimulator",
    "SocketModeDriver",
    "mrkdwn_to_plain",
    "render_blocks_text",
    "validate_blocks",
    "validate_view",
]
