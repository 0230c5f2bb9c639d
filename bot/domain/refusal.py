"""The one way Handoff says no: a `Refusal` with a stable code and a message for a person.

Rules and use cases raise it; each adapter maps it in one place (Slack: a private message, or
the modal's field errors; HTTP: a status code with a JSON error, see `Reason.status`).
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a request changed nothing; stable, so adapters and tests can rely on it."""

    INVALID = "invalid"  # the request itself is malformed or names nothing Handoff knows
    NOT_FOUND = "not_found"  # the lead it names does not exist
    NOT_ALLOWED = "not_allowed"  # the access table says no (bot/domain/access.py)
    TAKEN = "taken"  # someone else has the lead
    CLOSED = "closed"  # the lead is closed already
    NOT_READY = "not_ready"  # a step must come first (claim it; log the minimum attempts)
    CHANGED = "changed"  # the lead changed while this was decided: try again
    CONFLICT = "conflict"  # it contradicts what is recorded (a won deal reported lost)
    BUSY = "busy"  # Handoff is behind (its outbox or database): send it again later

    @property
    def status(self) -> int:
        """The HTTP status of a refusal for this reason."""
        statuses = {
            Reason.INVALID: 400,
            Reason.NOT_FOUND: 404,
            Reason.NOT_ALLOWED: 403,
            Reason.BUSY: 503,
        }
        return statuses.get(self, 409)


class Refusal(Exception):
    """A request Handoff turns down, changing nothing; `message` is shown to the person as is.

    `fields` carries input errors by field (a modal's blocks) when the input was at fault;
    `retry_after`, the seconds after which the same request may succeed (Reason.BUSY).
    """

    def __init__(
        self,
        message: str,
        reason: Reason = Reason.INVALID,
        *,
        fields: dict[str, str] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.fields = dict(fields or {})
        self.retry_after = retry_after
