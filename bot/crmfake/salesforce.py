"""A local Salesforce REST API: the paths, answers and error shapes `simple-salesforce` meets.

It serves, under `/services/data/vNN.N/`:

- `GET|PATCH|DELETE sobjects/{Lead|Contact|Account|User|Task}/{Id}` (PATCH and DELETE
  answer 204),
- `POST sobjects/{type}/` (201 `{"id", "success", "errors"}`),
- `GET sobjects/{type}/describe` (the fields, with `updateable`, `filterable`, picklists),
- the org's Lead Status values as the read-only `LeadStatus` object (`ApiName`,
  `MasterLabel`, `IsConverted`, `IsDefault`, `SortOrder`: Object Reference, LeadStatus), by
  query only; `lead_statuses` sets them (a fresh org's four by default, Closed - Converted the
  converted one), and they are the Lead's Status picklist too,
- `GET query/?q=` for the SOQL Handoff sends, parsed strictly: `SELECT fields FROM type`,
  then optionally `WHERE cond AND cond …` (a cond is `Field = 'text'`, `Field = true|false` or
  `Field LIKE 'pattern'`), `ORDER BY Field [ASC|DESC]` and `LIMIT n`. Anything else is a
  `MALFORMED_QUERY`; a field the type lacks is an `INVALID_FIELD`, and a long text area in a
  WHERE is refused as Salesforce refuses it ("can not be filtered").

Every error is what Salesforce sends: a JSON list of `{"message", "errorCode", "fields"}`
(`INVALID_FIELD`, `INVALID_FIELD_FOR_INSERT_UPDATE`, `ENTITY_IS_DELETED`, `NOT_FOUND`,
`CANNOT_UPDATE_CONVERTED_LEAD`, `INVALID_SESSION_ID` with 401, `REQUEST_LIMIT_EXCEEDED` with
403, …). Every request needs `Authorization: Bearer <token>`; changing `token` expires the old
one.

`simple-salesforce` always speaks https, so the fake serves TLS with a throwaway CA made at
start (`ca_file`: give it to the client as `verify`). Every applied write is recorded
(`writes`), and faults can be injected: a status with Salesforce's error body, an answer
dropped after the write was applied, an answer that trickles in after the write was applied,
a session that expires for the next N requests. The OAuth token endpoint
(`POST /services/oauth2/token`, path `oauth2/token`) takes `fail` (an OAuth error object with
that status, e.g. a 503 once), `drop` (`after=False`) and `trickle` too.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import json
import re
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.crmfake.slow import trickled

_PREFIX = {"Lead": "00Q", "User": "005", "Task": "00T", "Contact": "003", "Account": "001"}
_STATUS_PREFIX = "01J"  # LeadStatus

# name -> (type, createable, updateable, filterable, picklist values or None)
_Field = tuple[str, bool, bool, bool, tuple[str, ...] | None]


@dataclass(frozen=True)
class LeadStatus:
    """One Lead Status value of the org, as the LeadStatus object shows it: a Lead's `Status`
    holds its API name (the label unless given)."""

    label: str
    converted: bool = False  # IsConverted: the status lead conversion sets
    default: bool = False  # IsDefault: a new Lead's status
    api_name: str | None = None

    @property
    def value(self) -> str:
        return self.api_name or self.label


# A fresh org's Lead Status picklist (Setup → Object Manager → Lead → Lead Status).
LEAD_STATUSES = (
    LeadStatus("Open - Not Contacted", default=True),
    LeadStatus("Working - Contacted"),
    LeadStatus("Closed - Converted", converted=True),
    LeadStatus("Closed - Not Converted"),
)
LEAD_STATUS = tuple(status.value for status in LEAD_STATUSES)
# The LeadStatus object's fields a query may name (name -> type), all filterable.
STATUS_FIELDS = {
    "Id": "id",
    "ApiName": "string",
    "MasterLabel": "string",
    "IsConverted": "boolean",
    "IsDefault": "boolean",
    "SortOrder": "int",
}
_SYSTEM: dict[str, _Field] = {
    "Id": ("id", False, False, True, None),
    "IsDeleted": ("boolean", False, False, True, None),
    "CreatedDate": ("datetime", False, False, True, None),
    "LastModifiedDate": ("datetime", False, False, True, None),
}
_TEXT: _Field = ("string", True, True, True, None)
FIELDS: dict[str, dict[str, _Field]] = {
    "Lead": {
        **_SYSTEM,
        "FirstName": _TEXT,
        "LastName": _TEXT,
        "Name": ("string", False, False, True, None),
        "Title": _TEXT,
        "Company": _TEXT,
        "Email": ("email", True, True, True, None),
        "Phone": ("phone", True, True, True, None),
        "Website": ("url", True, True, True, None),
        "State": _TEXT,
        "PostalCode": _TEXT,
        "Country": _TEXT,
        "Industry": ("picklist", True, True, True, None),
        "NumberOfEmployees": ("int", True, True, True, None),
        "LeadSource": ("picklist", True, True, True, None),
        "Status": ("picklist", True, True, True, LEAD_STATUS),
        "OwnerId": ("reference", True, True, True, None),
        "IsConverted": ("boolean", False, False, True, None),
        # Set by conversion only (Lead object reference): where the person now lives.
        "ConvertedContactId": ("reference", False, False, True, None),
        "ConvertedAccountId": ("reference", False, False, True, None),
        "ConvertedDate": ("date", False, False, True, None),
        "Description": ("textarea", True, True, False, None),
    },
    "Contact": {
        **_SYSTEM,
        "FirstName": _TEXT,
        "LastName": _TEXT,
        "Name": ("string", False, False, True, None),
        "Title": _TEXT,
        "Email": ("email", True, True, True, None),
        "Phone": ("phone", True, True, True, None),
        "AccountId": ("reference", True, True, True, None),
        "OwnerId": ("reference", True, True, True, None),
    },
    "Account": {
        **_SYSTEM,
        "Name": _TEXT,
        "OwnerId": ("reference", True, True, True, None),
    },
    "User": {
        **_SYSTEM,
        "FirstName": _TEXT,
        "LastName": _TEXT,
        "Name": ("string", False, False, True, None),
        "Email": ("email", True, True, True, None),
        "Username": _TEXT,
        "IsActive": ("boolean", True, True, True, None),
    },
    "Task": {
        **_SYSTEM,
        "WhoId": ("reference", True, True, True, None),
        "WhatId": ("reference", True, True, True, None),
        "OwnerId": ("reference", True, True, True, None),
        "Subject": _TEXT,
        "Description": ("textarea", True, True, False, None),
        "ActivityDate": ("date", True, True, True, None),
        "Status": ("picklist", True, True, True, ("Not Started", "In Progress", "Completed")),
        "Priority": ("picklist", True, True, True, ("High", "Normal", "Low")),
        "Type": ("picklist", True, True, True, ("Call", "Email", "Meeting", "Other")),
        # Set only on create, and only to one of these (a restricted picklist).
        "TaskSubtype": (
            "picklist",
            True,
            False,
            True,
            ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"),
        ),
        "IsClosed": ("boolean", False, False, True, None),
    },
}
_RESTRICTED = {("Task", "TaskSubtype")}
# The values a date and a dateTime field take, as Salesforce documents them (Bulk API 2.0 and
# Bulk API Developer Guide, "Valid Date Format in Records", whose rules its REST API shares):
# "Use the yyyy-MM-ddTHH:mm:ss.SSS+/-HHmm or yyyy-MM-ddTHH:mm:ss.SSSZ formats to specify
# dateTime fields", and yyyy-MM-dd (optionally with a zone) for date fields. Python's
# `isoformat()` (microseconds, `+00:00`) is neither.
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{4})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(Z|[+-]\d{4})?")
_LONG_TEXT = 32000
_TEXT_LENGTH = 255


class Refusal(Exception):
    """An answer in Salesforce's error shape."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []

    def response(self) -> web.Response:
        body = [{"message": self.message, "errorCode": self.code, "fields": self.fields}]
        return web.json_response(body, status=self.status)


@dataclass
class Fault:
    """An injected failure for requests matching `method` and `path` (globs, path without
    the `/services/data/vNN.N/` prefix), for the next `times` of them."""

    method: str
    path: str
    status: int = 0
    code: str = ""
    message: str = ""
    drop: bool = False  # close the connection instead of answering
    trickle: float = 0.0  # answer, a few bytes at a time over this many seconds
    after: bool = False  # drop only after the write was applied
    times: int = 1
    hits: int = 0

    def matches(self, method: str, path: str, after: bool) -> bool:
        return (
            self.hits < self.times
            and self.after == after
            and fnmatchcase(method, self.method)
            and fnmatchcase(path, self.path)
        )


@dataclass
class Call:
    """One request as the fake saw it, and what it answered (0: dropped)."""

    method: str
    path: str
    query: str | None
    body: Any
    status: int = 0


@dataclass
class Write:
    """A write the fake applied (whether or not its answer reached the client)."""

    method: str
    sobject: str
    id: str
    body: dict[str, Any]


@dataclass
class SalesforceFake:
    """Salesforce's REST API on a real TLS port (`instance_url`), for one org."""

    token: str = "sf-session-1"
    version: str = "59.0"
    # Custom Lead fields the org has (name -> type: string, textarea, date, datetime, int …;
    # a text field's length after a colon, `string:80`: by default a Text field holds 255
    # characters, the most its type allows, and a long text area 32,000).
    lead_fields: dict[str, str] = field(default_factory=dict)
    # The Lead Status picklist, in its order (LeadStatus.SortOrder).
    lead_statuses: list[LeadStatus] = field(default_factory=lambda: list(LEAD_STATUSES))
    records: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {name: {} for name in FIELDS}
    )
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)  # the recycle bin
    calls: list[Call] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    expired_for: int = 0  # the next N requests answer INVALID_SESSION_ID, whatever the token
    # The connected app's OAuth refresh-token flow (`POST /services/oauth2/token`): a request
    # with these three gets a new access token, which becomes `token`.
    client_id: str = "handoff-app"
    client_secret: str = "handoff-secret"
    refresh_token: str = "sf-refresh-1"
    _sessions: Iterator[int] = field(default_factory=lambda: itertools.count(2))
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _dir: tempfile.TemporaryDirectory[str] | None = None
    instance_url: str = ""
    ca_file: str = ""

    # -- the org's data --------------------------------------------------------------------

    def add_user(self, email: str, name: str = "Rep", active: bool = True) -> str:
        """A User (an owner a Lead or a Task can be assigned to); returns its Id."""
        first, _, last = name.partition(" ")
        return self._insert(
            "User",
            {
                "Email": email,
                "FirstName": first,
                "LastName": last or first,
                "Username": email,
                "IsActive": active,
            },
        )

    def add_lead(self, email: str, **fields: Any) -> str:
        """A Lead (LastName and Company default to placeholders); returns its Id."""
        start = next((s for s in self.lead_statuses if s.default), self.lead_statuses[0])
        values = {"LastName": "Lead", "Company": "Unknown", "Status": start.value, **fields}
        values["Email"] = email
        return self._insert("Lead", values)

    def delete(self, record_id: str) -> None:
        """Move a record to the recycle bin: it answers ENTITY_IS_DELETED from now on."""
        sobject = self._type_of(record_id)
        self.deleted[record_id] = self.records[sobject].pop(record_id)

    def convert(self, lead_id: str, contact_id: str | None = None) -> str:
        """Convert the Lead as convertLead() does: a new Account and Contact from it (or into
        the Contact `contact_id`); returns the Contact's Id. The Lead keeps `IsConverted`,
        `ConvertedContactId`, `ConvertedAccountId`, `ConvertedDate`; from now on it cannot be
        updated or referenced (CANNOT_UPDATE_CONVERTED_LEAD), and its activities are the
        Contact's (Salesforce Help, "Guidelines for Converting Leads": open and closed
        activities are attached to the new records)."""
        lead = self.lead(lead_id)
        if contact_id is None:
            account = self._insert("Account", {"Name": lead.get("Company")})
            person = {k: lead.get(k) for k in ("FirstName", "LastName", "Title", "Email", "Phone")}
            contact_id = self._insert(
                "Contact", {**person, "AccountId": account, "OwnerId": lead.get("OwnerId")}
            )
        converted = next(s for s in self.lead_statuses if s.converted)
        lead.update(
            IsConverted=True,
            Status=converted.value,
            ConvertedContactId=contact_id,
            ConvertedAccountId=self.records["Contact"][contact_id].get("AccountId"),
            ConvertedDate=dt.date.today().isoformat(),
        )
        for task in self.tasks(lead_id):
            task["WhoId"] = contact_id
        return contact_id

    def add_task(self, who_id: str, subject: str, **fields: Any) -> str:
        """A Task someone made in Salesforce; returns its Id."""
        return self._insert("Task", {"WhoId": who_id, "Subject": subject, **fields})

    def lead(self, record_id: str) -> dict[str, Any]:
        return self.records["Lead"][record_id]

    def tasks(self, who_id: str | None = None) -> list[dict[str, Any]]:
        """The Tasks (of one Lead, when given), oldest first."""
        return [t for t in self.records["Task"].values() if who_id in (None, t.get("WhoId"))]

    # -- faults ----------------------------------------------------------------------------

    def fail(
        self,
        status: int,
        code: str | None = None,
        *,
        method: str = "*",
        path: str = "*",
        times: int = 1,
        message: str | None = None,
    ) -> Fault:
        """Answer the next `times` matching requests with `status` and Salesforce's body
        (`code` defaults to what Salesforce sends for that status)."""
        default = {
            403: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
            500: ("UNKNOWN_EXCEPTION", "An unexpected error occurred."),
            503: ("SERVER_UNAVAILABLE", "Server is temporarily unavailable."),
        }.get(status, ("UNKNOWN_EXCEPTION", "An unexpected error occurred."))
        fault = Fault(
            method,
            path,
            status,
            code or default[0],
            message or default[1],
            times=times,
        )
        self.faults.append(fault)
        return fault

    def drop(
        self, *, method: str = "*", path: str = "*", after: bool = True, times: int = 1
    ) -> Fault:
        """Close the connection without an answer, after applying the write (`after`) or
        before reading the request."""
        fault = Fault(method, path, drop=True, after=after, times=times)
        self.faults.append(fault)
        return fault

    def trickle(
        self, seconds: float, *, method: str = "*", path: str = "*", times: int = 1
    ) -> Fault:
        """Apply the write, then send the answer a few bytes at a time over `seconds`: no read
        of the socket waits long."""
        fault = Fault(method, path, after=True, trickle=seconds, times=times)
        self.faults.append(fault)
        return fault

    def expire_session(self, times: int = 1) -> None:
        """The next `times` requests answer 401 INVALID_SESSION_ID whatever their token."""
        self.expired_for = times

    # -- serving ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> SalesforceFake:
        """Serve TLS on host:port (0: any free port); `instance_url` and `ca_file` are set."""
        self._dir = tempfile.TemporaryDirectory(prefix="sf-fake-")
        context = _tls(Path(self._dir.name), host)
        self.ca_file = str(Path(self._dir.name) / "ca.pem")
        app = web.Application()
        app.router.add_route("*", "/services/data/{version}/{rest:.*}", self._handle)
        app.router.add_post("/services/oauth2/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=context)
        await site.start()
        self.instance_url = f"https://{host}:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        rest = request.match_info["rest"]
        raw = await request.read()
        call = Call(request.method, rest, request.query.get("q"), _json_or_text(raw))
        self.calls.append(call)
        try:
            if request.match_info["version"] != f"v{self.version}":
                raise Refusal(404, "NOT_FOUND", "The requested resource does not exist")
            self._authorize(request)
            early = self._fault(call, request, after=False)
            if early is not None:
                return early
            answer = self._route(request.method, rest, request.query, call.body, raw)
        except Refusal as refusal:
            call.status = refusal.status
            return refusal.response()
        late = self._fault(call, request, after=True)
        if late is not None:
            return late
        call.status = answer.status
        slow = self._slow(call)
        return await trickled(request, answer, slow) if slow else answer

    async def _token(self, request: web.Request) -> web.StreamResponse:
        """The refresh-token grant, as Salesforce answers it (errors: OAuth's JSON object)."""
        form = await request.post()
        self.calls.append(Call("POST", "oauth2/token", None, dict(form)))
        early = self._fault(self.calls[-1], request, after=False)  # `fail` or `drop` on it
        if early is not None:
            return early
        if form.get("grant_type") != "refresh_token":
            error = {
                "error": "unsupported_grant_type",
                "error_description": "grant type not supported",
            }
            return web.json_response(error, status=400)
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            error = {"error": "invalid_client_id", "error_description": "client identifier invalid"}
            return web.json_response(error, status=400)
        if form.get("refresh_token") != self.refresh_token:
            error = {"error": "invalid_grant", "error_description": "expired access/refresh token"}
            return web.json_response(error, status=400)
        self.token = f"sf-session-{next(self._sessions)}"
        self.calls[-1].status = 200
        answer = web.json_response(
            {
                "access_token": self.token,
                "instance_url": self.instance_url,
                "id": f"{self.instance_url}/id/00D000000000001AAA/005000000000001AAA",
                "token_type": "Bearer",
                "issued_at": str(int(dt.datetime.now(dt.UTC).timestamp() * 1000)),
                "scope": "api refresh_token",
            }
        )
        slow = self._slow(self.calls[-1])  # a trickle fault on POST oauth2/token
        return await trickled(request, answer, slow) if slow else answer

    def _authorize(self, request: web.Request) -> None:
        if self.expired_for > 0:
            self.expired_for -= 1
            raise _expired()
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            raise _expired()

    def _slow(self, call: Call) -> float:
        """The seconds a trickle fault spreads the answer over (0: it goes at once)."""
        for fault in self.faults:
            if fault.trickle and fault.matches(call.method, call.path, after=True):
                fault.hits += 1
                return fault.trickle
        return 0.0

    def _fault(self, call: Call, request: web.Request, after: bool) -> web.Response | None:
        for fault in self.faults:
            if fault.trickle or not fault.matches(call.method, call.path, after):
                continue
            fault.hits += 1
            if fault.drop:
                call.status = 0
                request.protocol.force_close()
                if request.transport is not None:
                    request.transport.close()
                return web.Response()
            call.status = fault.status
            if call.path == "oauth2/token":
                # The token endpoint speaks OAuth (RFC 6749 5.2): one JSON object.
                error = {"error": fault.code.lower(), "error_description": fault.message}
                return web.json_response(error, status=fault.status)
            return Refusal(fault.status, fault.code, fault.message).response()
        return None

    def _route(self, method: str, rest: str, query: Any, body: Any, raw: bytes) -> web.Response:
        parts = [p for p in rest.split("/") if p]
        if parts[:1] == ["query"] and len(parts) == 1 and method == "GET":
            return web.json_response(self._query(query.get("q", "")))
        if parts[:1] != ["sobjects"] or len(parts) < 2 or parts[1] not in FIELDS:
            raise Refusal(404, "NOT_FOUND", "The requested resource does not exist")
        sobject = parts[1]
        if len(parts) == 2 and method == "POST":
            record = _body(body, raw)
            new_id = self._create(sobject, record)
            return web.json_response({"id": new_id, "success": True, "errors": []}, status=201)
        if len(parts) == 3 and parts[2] == "describe" and method == "GET":
            return web.json_response(self._describe(sobject))
        if len(parts) == 3:
            record_id = parts[2]
            if method == "GET":
                return web.json_response(self._view(sobject, self._find(sobject, record_id)))
            if method == "PATCH":
                self._update(sobject, record_id, _body(body, raw))
                return web.Response(status=204)
            if method == "DELETE":
                self._find(sobject, record_id)
                self.delete(record_id)
                self.writes.append(Write("DELETE", sobject, record_id, {}))
                return web.Response(status=204)
        raise Refusal(
            405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are GET"
        )

    # -- records ---------------------------------------------------------------------------

    def _fields(self, sobject: str) -> dict[str, _Field]:
        if sobject == "LeadStatus":
            return {n: (kind, False, False, True, None) for n, kind in STATUS_FIELDS.items()}
        fields = dict(FIELDS[sobject])
        if sobject == "Lead":
            values = tuple(status.value for status in self.lead_statuses)
            fields["Status"] = ("picklist", True, True, True, values)
            for name, spec in self.lead_fields.items():
                kind = spec.partition(":")[0]
                fields[name] = (kind, True, True, kind != "textarea", None)
        return fields

    def _length(self, sobject: str, name: str, kind: str) -> int:
        """A text field's length in characters (describe's `length`): a custom Lead field's
        own (`string:80`), else its type's."""
        spec = self.lead_fields.get(name, "") if sobject == "Lead" else ""
        if spec.partition(":")[2]:
            return int(spec.partition(":")[2])
        return _LONG_TEXT if kind == "textarea" else _TEXT_LENGTH

    def _status_rows(self) -> dict[str, dict[str, Any]]:
        """The LeadStatus records, by Id, from `lead_statuses`."""
        rows = {}
        for order, status in enumerate(self.lead_statuses, start=1):
            row_id = f"{_STATUS_PREFIX}{order:012d}AAA"
            rows[row_id] = {
                "Id": row_id,
                "ApiName": status.value,
                "MasterLabel": status.label,
                "IsConverted": status.converted,
                "IsDefault": status.default,
                "SortOrder": order,
            }
        return rows

    def _field(self, sobject: str, name: str) -> tuple[str, _Field] | None:
        """The field named `name` (Salesforce's names are case-insensitive)."""
        for real, spec in self._fields(sobject).items():
            if real.lower() == name.lower():
                return real, spec
        return None

    def _insert(self, sobject: str, values: dict[str, Any]) -> str:
        new_id = f"{_PREFIX[sobject]}{next(self._ids):012d}AAA"
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        record: dict[str, Any] = {"Id": new_id, "IsDeleted": False, "CreatedDate": now}
        record["LastModifiedDate"] = now
        record.update(values)
        if sobject == "Lead":
            record.setdefault("IsConverted", False)
            record["Name"] = " ".join(filter(None, [record.get("FirstName"), record["LastName"]]))
        if sobject in ("User", "Contact"):
            record["Name"] = " ".join(filter(None, [record.get("FirstName"), record["LastName"]]))
        if sobject == "Task":
            record.setdefault("Status", "Not Started")
            record.setdefault("Priority", "Normal")
            record.setdefault("TaskSubtype", "Task")
            record["IsClosed"] = record["Status"] == "Completed"
        self.records[sobject][new_id] = record
        return new_id

    def _type_of(self, record_id: str) -> str:
        for sobject, prefix in _PREFIX.items():
            if record_id.startswith(prefix):
                return sobject
        raise Refusal(404, "NOT_FOUND", "The requested resource does not exist")

    def _find(self, sobject: str, record_id: str) -> dict[str, Any]:
        if len(record_id) not in (15, 18) or not record_id.isalnum():
            raise Refusal(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {record_id}",
            )
        found = self.records[sobject].get(_long(record_id, self.records[sobject]))
        if found is not None:
            return found
        if _long(record_id, self.deleted) in self.deleted:
            raise Refusal(404, "ENTITY_IS_DELETED", "entity is deleted")
        raise Refusal(404, "NOT_FOUND", "The requested resource does not exist")

    def _view(self, sobject: str, record: dict[str, Any]) -> dict[str, Any]:
        view: dict[str, Any] = {
            "attributes": {"type": sobject, "url": self._url(sobject, record["Id"])}
        }
        for name in self._fields(sobject):
            view[name] = record.get(name)
        return view

    def _url(self, sobject: str, record_id: str) -> str:
        return f"/services/data/v{self.version}/sobjects/{sobject}/{record_id}"

    def _checked(self, sobject: str, body: dict[str, Any], creating: bool) -> dict[str, Any]:
        """The body with Salesforce's field names, or the refusal Salesforce would send."""
        values: dict[str, Any] = {}
        for name, value in body.items():
            found = self._field(sobject, name)
            if found is None:
                raise Refusal(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}"
                )
            real, (kind, createable, updateable, _, picklist) = found
            if not (createable if creating else updateable):
                raise Refusal(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {real}. Please check the security settings "
                    "of this field and verify that it is read/write for your profile or "
                    "permission set.",
                    [real],
                )
            values[real] = self._value(sobject, real, kind, picklist, value)
        return values

    def _value(
        self, sobject: str, name: str, kind: str, picklist: tuple[str, ...] | None, value: Any
    ) -> Any:
        if value is None:
            return None
        bad = Refusal(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {kind} from {type(value).__name__} value {value!r} "
            f"for field {name}",
        )
        if kind in ("string", "textarea", "email", "phone", "url", "picklist", "reference"):
            if not isinstance(value, str):
                raise bad
            limit = self._length(sobject, name, kind)
            # Counted in UTF-16 units: an emoji counts two (Salesforce Help 005166849).
            if len(value.encode("utf-16-le")) // 2 > limit:
                raise Refusal(
                    400,
                    "STRING_TOO_LONG",
                    f"{name}: data value too large: {value[:40]}... (max length={limit})",
                    [name],
                )
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise bad
        if kind == "boolean" and not isinstance(value, bool):
            raise bad
        if kind in ("date", "datetime"):
            shape = _DATE if kind == "date" else _DATETIME
            try:
                if not shape.fullmatch(value):
                    raise ValueError(value)
                dt.date.fromisoformat(value[:10])
            except (TypeError, ValueError):
                raise bad from None
        if picklist and (sobject, name) in _RESTRICTED and value not in picklist:
            raise Refusal(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{name}: bad value for restricted picklist field: {value}",
                [name],
            )
        if kind == "reference":
            self._reference(name, value)
        return value

    def _reference(self, name: str, value: str) -> None:
        """An OwnerId must be an active User; a WhoId a Lead that still exists and is not
        converted, or a Contact (Task object reference: WhoId is a Lead or a Contact)."""
        if name not in ("OwnerId", "WhoId"):
            return
        want = "User" if name == "OwnerId" else "Lead"
        if name == "WhoId" and value.startswith(_PREFIX["Contact"]):
            want = "Contact"
        if value in self.deleted:
            raise Refusal(400, "ENTITY_IS_DELETED", "entity is deleted", [name])
        record = self.records[want].get(value)
        if record is None:
            raise Refusal(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                f"{name}: id value of incorrect type: {value}"
                if not value.startswith(_PREFIX[want])
                else "invalid cross reference id",
                [name],
            )
        if want == "Lead" and record.get("IsConverted"):
            raise _converted([name])
        if want == "User" and not record.get("IsActive"):
            raise Refusal(400, "INACTIVE_OWNER_OR_USER", "owner or user is inactive.", [name])

    def _create(self, sobject: str, body: dict[str, Any]) -> str:
        values = self._checked(sobject, body, creating=True)
        new_id = self._insert(sobject, values)
        self.writes.append(Write("POST", sobject, new_id, values))
        return new_id

    def _update(self, sobject: str, record_id: str, body: dict[str, Any]) -> None:
        record = self._find(sobject, record_id)
        if record.get("IsConverted"):
            raise _converted([])
        values = self._checked(sobject, body, creating=False)
        record.update(values)
        if sobject == "Task":
            record["IsClosed"] = record.get("Status") == "Completed"
        self.writes.append(Write("PATCH", sobject, record["Id"], values))

    def _describe(self, sobject: str) -> dict[str, Any]:
        fields = []
        for name, (kind, createable, updateable, filterable, picklist) in self._fields(
            sobject
        ).items():
            fields.append(
                {
                    "name": name,
                    "type": kind,
                    "createable": createable,
                    "updateable": updateable,
                    "filterable": filterable,
                    "custom": name.endswith("__c"),
                    "length": self._length(sobject, name, kind),
                    "restrictedPicklist": (sobject, name) in _RESTRICTED,
                    "picklistValues": [
                        {"value": v, "label": v, "active": True, "defaultValue": False}
                        for v in picklist or ()
                    ],
                }
            )
        return {"name": sobject, "label": sobject, "updateable": True, "fields": fields}

    # -- SOQL ------------------------------------------------------------------------------

    def _query(self, soql: str) -> dict[str, Any]:
        parsed = _parse_soql(soql)
        sobject = parsed.sobject
        if sobject not in FIELDS and sobject != "LeadStatus":
            raise Refusal(
                400,
                "INVALID_TYPE",
                f"sObject type '{sobject}' is not supported. If you are attempting to use a "
                "custom object, be sure to append the '__c' after the entity name.",
            )
        selected = [self._query_field(sobject, name, where=False) for name in parsed.fields]
        conditions = [
            (self._query_field(sobject, name, where=True), op, value)
            for name, op, value in parsed.where
        ]
        table = self._status_rows() if sobject == "LeadStatus" else self.records[sobject]
        rows = [r for r in table.values() if _matches(r, conditions)]
        if parsed.order:
            name = self._query_field(sobject, parsed.order, where=False)
            rows.sort(key=lambda r: _sort_key(r.get(name)), reverse=parsed.descending)
        if parsed.limit is not None:
            rows = rows[: parsed.limit]
        records = [
            {
                "attributes": {"type": sobject, "url": self._url(sobject, r["Id"])},
                **{name: r.get(name) for name in selected},
            }
            for r in rows
        ]
        return {"totalSize": len(records), "done": True, "records": records}

    def _query_field(self, sobject: str, name: str, where: bool) -> str:
        found = self._field(sobject, name)
        if found is None:
            raise Refusal(
                400,
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{sobject}'. If you are attempting to use "
                "a custom field, be sure to append the '__c' after the custom field name.",
            )
        real, (_, _, _, filterable, _) = found
        if where and not filterable:
            raise Refusal(
                400,
                "INVALID_FIELD",
                f"field '{real}' can not be filtered in a query call",
            )
        return real


# -- SOQL parsing ----------------------------------------------------------------------------


@dataclass
class _Soql:
    fields: list[str]
    sobject: str
    where: list[tuple[str, str, Any]]  # field, "=" | "LIKE", value (a regex for LIKE)
    order: str | None
    descending: bool
    limit: int | None


_HEAD = re.compile(r"\s*SELECT\s+(\w+(?:\s*,\s*\w+)*)\s+FROM\s+(\w+)", re.I)
_WHERE = re.compile(r"\s+WHERE\s+", re.I)
_COND = re.compile(r"(\w+)\s*(=|\bLIKE\b)\s*('(?:[^'\\]|\\.)*'|true\b|false\b|null\b)", re.I | re.S)
_AND = re.compile(r"\s+AND\s+", re.I)
_TAIL = re.compile(r"(?:\s+ORDER\s+BY\s+(\w+)(?:\s+(ASC|DESC))?)?(?:\s+LIMIT\s+(\d+))?\s*", re.I)
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def _malformed(soql: str, at: int) -> Refusal:
    near = soql[at : at + 30] or "<end>"
    return Refusal(400, "MALFORMED_QUERY", f"unexpected token: '{near}'")


def _parse_soql(soql: str) -> _Soql:
    head = _HEAD.match(soql)
    if head is None:
        raise _malformed(soql, 0)
    fields = [f.strip() for f in head.group(1).split(",")]
    position, where = head.end(), []
    keyword = _WHERE.match(soql, position)
    if keyword is not None:
        position = keyword.end()
        while True:
            cond = _COND.match(soql, position)
            if cond is None:
                raise _malformed(soql, position)
            name, op, literal = cond.group(1), cond.group(2).upper(), cond.group(3)
            where.append((name, op, _literal(literal, like=op == "LIKE", soql=soql, at=position)))
            position = cond.end()
            more = _AND.match(soql, position)
            if more is None:
                break
            position = more.end()
    tail = _TAIL.fullmatch(soql, position)
    if tail is None:
        raise _malformed(soql, position)
    order, direction, limit = tail.groups()
    return _Soql(
        fields,
        head.group(2),
        where,
        order,
        (direction or "").upper() == "DESC",
        int(limit) if limit else None,
    )


def _literal(token: str, like: bool, soql: str, at: int) -> Any:
    """A SOQL literal's value: a bool, None, a string, or for LIKE a compiled regex."""
    lowered = token.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if like and not token.startswith("'"):
        raise _malformed(soql, at)
    text, pattern, chars = token[1:-1], "", iter(token[1:-1])
    plain = ""
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            if like and escaped in "%_":
                pattern += re.escape(escaped)
                continue
            if escaped not in _ESCAPES:
                raise Refusal(400, "MALFORMED_QUERY", f"Invalid string literal '{text}'")
            plain += _ESCAPES[escaped]
            pattern += re.escape(_ESCAPES[escaped])
        elif like and char == "%":
            pattern += ".*"
        elif like and char == "_":
            pattern += "."
        else:
            plain += char
            pattern += re.escape(char)
    return re.compile(pattern, re.I | re.S) if like else plain


def _matches(record: dict[str, Any], conditions: list[tuple[str, str, Any]]) -> bool:
    for name, op, value in conditions:
        actual = record.get(name)
        if op == "LIKE":
            if not isinstance(actual, str) or not value.fullmatch(actual):
                return False
        elif isinstance(value, str):
            # Text comparisons in SOQL ignore case.
            if not isinstance(actual, str) or actual.lower() != value.lower():
                return False
        elif actual != value:
            return False
    return True


# -- helpers ---------------------------------------------------------------------------------


def _sort_key(value: Any) -> tuple[int, Any]:
    """ORDER BY's key: numbers as numbers (SortOrder), anything else as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value or ""))


def _expired() -> Refusal:
    return Refusal(401, "INVALID_SESSION_ID", "Session expired or invalid")


def _converted(fields: list[str]) -> Refusal:
    return Refusal(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", fields)


def _long(record_id: str, records: dict[str, Any]) -> str:
    """The 18-character Id a 15-character one stands for (Salesforce accepts both)."""
    if len(record_id) == 15:
        for known in records:
            if known[:15] == record_id:
                return known
    return record_id


def _json_or_text(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _body(body: Any, raw: bytes) -> dict[str, Any]:
    if not isinstance(body, dict):
        text = raw.decode(errors="replace")[:40]
        raise Refusal(
            400, "JSON_PARSER_ERROR", f"Unexpected token in the request body at: '{text}'"
        )
    return body


def _tls(directory: Path, host: str) -> ssl.SSLContext:
    """A throwaway CA (written to `ca.pem`) and a certificate it signs for `host` and
    localhost: what the fake serves, and what the client trusts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Salesforce fake CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "cert.pem").write_bytes(cert.public_bytes(pem))
    (directory / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context
