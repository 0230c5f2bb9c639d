"""views.*: modals and App Home, trigger ids, the view stack, answers to a view_submission."""

from __future__ import annotations

import copy
import json
import secrets
import time
from typing import Any

from bot.simulator.blockkit import InvalidPayload, Json, validate_view, with_generated_ids
from bot.simulator.data import ApiError, OpenView, Trigger
from bot.simulator.inspection import Inspection

VIEW_STACK_LIMIT = 3
# views.open, views.publish: `view_too_large` "if the provided view is greater than 250kb"
VIEW_BYTES_LIMIT = 250 * 1024
# views.open, views.push: the view is a modal; a Home tab is published (views.publish)
MODAL_ONLY = ("views.open", "views.push")


# A view_submission's answer: an empty 200 closes the view; else `response_action` is one of
# these (docs.slack.dev/surfaces/modals, "Responding to view submissions"; Bolt's
# ViewResponseAction: errors, update, push, clear). `errors` maps a block_id to its message
# ("[blockId: string]: string", ViewErrorsResponseAction); `update` and `push` carry a modal.
RESPONSE_ACTIONS = ("errors", "update", "push", "clear")


def _response_problems(response: Json | None) -> list[str]:
    """What Slack would refuse in a view_submission's answer (the modal then stays open)."""
    if not response or "response_action" not in response:
        return []
    action = response.get("response_action")
    if action not in RESPONSE_ACTIONS:
        return [f"response_action: must be one of {', '.join(RESPONSE_ACTIONS)}"]
    if action == "errors":
        errors = response.get("errors")
        if not isinstance(errors, dict) or not errors:
            return ["errors: must be an object of block_id: message"]
        return [
            f"errors.{key}: must be a non-empty message"
            for key, message in errors.items()
            if not isinstance(message, str) or not message
        ]
    view = response.get("view")
    if action in ("update", "push") and (not isinstance(view, dict) or view.get("type") != "modal"):
        return ["view.type: must be modal (a Home tab is published with views.publish)"]
    return []


class ViewsMethods(Inspection):
    """The Web API methods that open, push, update and publish views."""

    def issue_trigger(self, user_id: str) -> str:
        """A trigger_id as Slack puts in an interaction; views.open accepts it once, briefly."""
        self._trigger_seq += 1
        trigger_id = f"{self._trigger_seq}.{int(time.time())}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = Trigger(trigger_id, user_id, self.interaction_clock())
        return trigger_id

    def apply_view_response(self, view_id: str, response: Json | None) -> None:
        """Do what Slack does with the bot's answer to a view_submission."""
        current = self._views_by_id.get(view_id)
        if current is None:
            return
        action = (response or {}).get("response_action")
        problems = _response_problems(response)
        if problems:
            self.invalid_payloads.append(
                InvalidPayload(f"response_action:{action}", copy.deepcopy(response), problems)
            )
            return
        if action == "errors":
            fields = dict((response or {}).get("errors") or {})
            # "errors" is keyed by the block_id of an input block in the view ("[blockId:
            # string]: string", docs.slack.dev/tools/bolt-js/reference/interfaces/
            # ViewErrorsResponseAction): Slack cannot show an error anywhere else.
            inputs = {b.get("block_id") for b in current.blocks if b.get("type") == "input"}
            unknown = sorted(str(key) for key in fields if key not in inputs)
            if unknown:
                problems = [f"errors.{key}: not the block_id of an input block" for key in unknown]
                self.invalid_payloads.append(
                    InvalidPayload("response_action:errors", copy.deepcopy(fields), problems)
                )
                return
            current.errors = fields
            return
        if action in ("update", "push"):
            new_view = (response or {}).get("view")
            errors = validate_view(new_view)
            if errors:
                self.invalid_payloads.append(
                    InvalidPayload(f"response_action:{action}", new_view, errors)
                )
                return
            assert isinstance(new_view, dict)
            if action == "update":
                current.view = self._stored_view(new_view, current.id, current.view)
                current.errors = None
            else:
                self._open_view(current.user, new_view, None, previous=current)
            return
        if action == "clear":
            for view in self.open_views(current.user):
                view.closed = True
            return
        current.closed = True

    def _views_open(self, args: Json) -> Json:
        view = self._checked_view("views.open", args.get("view"))
        trigger = self._use_trigger(args.get("trigger_id"))
        return {"view": copy.deepcopy(self._open_view(trigger.user, view, trigger.id).view)}

    def _views_push(self, args: Json) -> Json:
        view = self._checked_view("views.push", args.get("view"))
        trigger = self._use_trigger(args.get("trigger_id"))
        top = self.latest_view(trigger.user)
        if top is None:
            raise ApiError("not_found")
        return {"view": copy.deepcopy(self._open_view(trigger.user, view, trigger.id, top).view)}

    def _views_update(self, args: Json) -> Json:
        view = self._checked_view("views.update", args.get("view"))
        target: OpenView | None = None
        if args.get("view_id"):
            target = self._views_by_id.get(str(args["view_id"]))
        elif args.get("external_id"):
            external = str(args["external_id"])
            target = next(
                (v for v in reversed(self.views) if v.view.get("external_id") == external), None
            )
        else:
            raise ApiError("invalid_arguments")
        if target is None:
            raise ApiError("not_found")
        if args.get("hash") and args["hash"] != target.view.get("hash"):
            raise ApiError("hash_conflict")
        target.view = self._stored_view(view, target.id, target.view)
        return {"view": copy.deepcopy(target.view)}

    def _views_publish(self, args: Json) -> Json:
        view = self._checked_view("views.publish", args.get("view"))
        user = args.get("user_id")
        if not isinstance(user, str) or not user:
            raise ApiError("invalid_arguments")
        if view.get("type") != "home":
            raise ApiError(
                "invalid_arguments", response_metadata={"messages": ["type must be home"]}
            )
        home = self._homes.get(user)
        # "hash_conflict": "the provided `hash` doesn't match the current stored value."
        if args.get("hash") and args["hash"] != (home.view.get("hash") if home else None):
            raise ApiError("hash_conflict")
        if home is None:
            self._view_seq += 1
            home = OpenView(f"V0SIM{self._view_seq:06d}", user, {}, None)
            self._homes[user] = home
            self._views_by_id[home.id] = home
        home.view = self._stored_view(view, home.id)
        return {"view": copy.deepcopy(home.view)}

    def _checked_view(self, method: str, view: Any) -> Json:
        if len(json.dumps(view, separators=(",", ":")).encode()) > VIEW_BYTES_LIMIT:
            raise ApiError("view_too_large")
        errors = validate_view(view)
        if not errors and method in MODAL_ONLY and view.get("type") == "home":
            errors = ["view.type: a home view is published with views.publish, not opened"]
        if errors:
            self.invalid_payloads.append(InvalidPayload(method, copy.deepcopy(view), errors))
            raise ApiError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
        assert isinstance(view, dict)
        return view

    def _use_trigger(self, trigger_id: Any) -> Trigger:
        trigger = self._triggers.get(str(trigger_id or ""))
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if self.interaction_clock() - trigger.issued_at > self.trigger_ttl:
            raise ApiError("expired_trigger_id")
        trigger.used = True
        return trigger

    def _stored_view(self, view: Json, view_id: str, previous: Json | None = None) -> Json:
        stored: Json = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type", "modal"),
            "blocks": with_generated_ids(view.get("blocks") or []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": (previous or {}).get("previous_view_id"),
            "root_view_id": (previous or {}).get("root_view_id", view_id),
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        if "title" in view:
            stored["title"] = view["title"]
        return stored

    def _open_view(
        self, user: str, view: Json, trigger_id: str | None, previous: OpenView | None = None
    ) -> OpenView:
        if previous is not None and len(self.open_views(user)) >= VIEW_STACK_LIMIT:
            raise ApiError("push_limit_reached")
        self._view_seq += 1
        view_id = f"V0SIM{self._view_seq:06d}"
        stored = self._stored_view(view, view_id)
        if previous is not None:
            stored["previous_view_id"] = previous.id
            stored["root_view_id"] = previous.view.get("root_view_id", previous.id)
        opened = OpenView(view_id, user, stored, trigger_id)
        self.views.append(opened)
        self._views_by_id[view_id] = opened
        return opened
