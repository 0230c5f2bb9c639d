"""auth.test and users.*: who the bot is and who is in the workspace."""

from __future__ import annotations

from bot.simulator.blockkit import Json
from bot.simulator.data import ApiError, SimUser
from bot.simulator.inspection import Inspection

# "The users:read.email OAuth scope is now required to access the email field in user objects
# returned by the users.list and users.info web API methods. users:read is no longer a
# sufficient scope for this data field." and "This scope is now required to access the email
# field in user profiles retrieved with the Web API" (https://api.slack.com/scopes/users:read.email)
EMAIL_SCOPE = "users:read.email"


class UsersMethods(Inspection):
    """The Web API methods that describe the bot and the workspace's members."""

    def _auth_test(self, args: Json) -> Json:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "Handoff Simulator",
            "user": self.users[self.bot_user_id].name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _users_info(self, args: Json) -> Json:
        user = self.users.get(str(args.get("user") or ""))
        if user is None:
            raise ApiError("user_not_found")
        return {"user": self._member_json(user)}

    def _member_json(self, user: SimUser) -> Json:
        """A member as users.info and users.list show them: no email without its scope."""
        member = user.to_api(self.team_id)
        if not self.granted(EMAIL_SCOPE):
            member["profile"].pop("email", None)
        return member

    def _users_profile_get(self, args: Json) -> Json:
        """A member's profile with their custom status; without `user`, the token's own (the
        bot user's)."""
        user = self.users.get(str(args.get("user") or self.bot_user_id))
        if user is None:
            raise ApiError("user_not_found")
        profile = user.profile()
        if not self.granted(EMAIL_SCOPE):  # "the email field in user profiles" (same page)
            profile.pop("email", None)
        return {"profile": profile}

    def _users_list(self, args: Json) -> Json:
        members = [self._member_json(user) for user in self.users.values()]
        return {"members": members, "response_metadata": {"next_cursor": ""}}

    def _users_lookup_by_email(self, args: Json) -> Json:
        email = str(args.get("email") or "").lower()
        user = next((u for u in self.users.values() if (u.email or "").lower() == email), None)
        if user is None:
            raise ApiError("users_not_found")
        return {"user": user.to_api(self.team_id)}
