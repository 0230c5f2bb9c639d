"""files.*: Slack's external upload flow (get an upload URL, post the bytes, complete)."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from bot.simulator.blockkit import Json
from bot.simulator.data import ApiError, Channel, SimFile, int_arg
from bot.simulator.inspection import Inspection

_SHAREABLE_ID = re.compile(r"^[CGDZ][A-Z0-9]+$")  # completeUploadExternal's channel_id
ALT_TEXT_LIMIT = 1000


class FilesMethods(Inspection):
    """The Web API methods of the external upload flow; the bytes arrive at the upload URL."""

    def _files_get_upload_url_external(self, args: Json) -> Json:
        """files.getUploadURLExternal: `length` has "minimum": 1 (`missing_argument`: "Typically
        only occurs when the `length` provided is 0"); `alt_txt` at most 1000 characters
        (`alt_txt_too_large`)."""
        filename = args.get("filename")
        length = int_arg(args.get("length"), 0)
        if not isinstance(filename, str) or not filename.strip() or length < 1:
            raise ApiError("missing_argument")
        alt_txt = args.get("alt_txt") if isinstance(args.get("alt_txt"), str) else None
        if alt_txt is not None and len(alt_txt) > ALT_TEXT_LIMIT:
            raise ApiError("alt_txt_too_large")
        self._file_seq += 1
        file_id = f"F0SIM{self._file_seq:06d}"
        self._files[file_id] = SimFile(file_id, filename, length, alt_txt)
        token = secrets.token_hex(12)
        self._upload_urls[token] = file_id
        return {"upload_url": f"{self.base_url}/upload/{token}", "file_id": file_id}

    def _files_complete_upload_external(self, args: Json) -> Json:
        entries = args.get("files")
        if isinstance(entries, str):
            try:
                entries = json.loads(entries)
            except json.JSONDecodeError as exc:
                raise ApiError("invalid_arguments") from exc
        if not isinstance(entries, list) or not entries:
            raise ApiError("invalid_arguments")
        uploads: list[tuple[SimFile, Any]] = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise ApiError("invalid_arguments")
            upload = self._files.get(entry["id"])
            # Unknown, its bytes never posted, or completed already (an upload completes once).
            if upload is None or upload.content is None or upload.completed:
                raise ApiError("file_not_found")
            uploads.append((upload, entry.get("title")))
        targets = self._upload_targets(args)
        thread_ts = args.get("thread_ts")  # an unknown parent is accepted, as for a post
        for upload, title in uploads:
            upload.completed = True
            upload.title = str(title) if title else upload.name
        comment = str(args.get("initial_comment") or "")
        for state in targets:
            message = self._store_message(state, comment, [], None, thread_ts, bot_id=self.bot_id)
            message.files = [upload.to_api() for upload, _ in uploads]
            for upload, _ in uploads:
                upload.shares.append((state.id, message.ts))
        return {"files": [{"id": u.id, "title": u.title} for u, _ in uploads]}

    def _upload_targets(self, args: Json) -> list[Channel]:
        """Where completeUploadExternal shares: `channel_id` (a C/G/D/Z id, never a user id),
        or `channels` (ids, user ids too); neither keeps the file private."""
        channel_id, channels = args.get("channel_id"), args.get("channels")
        if channel_id:
            if not isinstance(channel_id, str) or not _SHAREABLE_ID.match(channel_id):
                raise ApiError(
                    "invalid_arguments",
                    response_metadata={
                        "messages": [
                            "[ERROR] input must match regex pattern: ^[CGDZ][A-Z0-9]{8,}$ "
                            "[json-pointer:/channel_id]"
                        ]
                    },
                )
            return [self._resolve_channel(channel_id, sharing=True)]
        if isinstance(channels, str) and channels.strip():
            return [self._resolve_channel(c, sharing=True) for c in channels.split(",") if c]
        return []
