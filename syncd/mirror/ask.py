"""``syncd ask PATH QUESTION``: chat with a video by its local path.

The catalog resolves the path to the remote video id. ``--history FILE`` holds the
conversation as a JSON list of ``{"role": "user"|"assistant", "content": "..."}``
(the remote is stateless: prior turns are resent each call); after an answer, the
question and the answer are appended to FILE (created if missing), so the next
``syncd ask ... --history FILE`` continues the conversation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from syncd.store.catalog import Catalog
from syncd.errors import SyncdError
from syncd.mirror.atomic import write_atomic
from syncd.remote.base import ChatMessage, Remote, need


class AskError(SyncdError):
    """The path is not a synced video, or the history file is unusable."""


def video_for_path(catalog: Catalog, path: Path) -> str:
    """The remote video id of a tracked local file (lexical path first, then symlinks resolved)."""
    candidates = [Path(os.path.normpath(os.path.abspath(path)))]
    resolved = Path(os.path.realpath(path))
    if resolved != candidates[0]:
        candidates.append(resolved)
    for candidate in candidates:
        record = catalog.find_file(candidate)
        if record is None or record.sha256 is None:
            continue
        content = catalog.content(record.sha256)
        if content is None or content.state != "uploaded" or not content.video_id:
            state = content.state if content else "new"
            raise AskError(f"{candidate}: not on the remote yet (state {state}); run `syncd sync --wait` first")
        return content.video_id
    raise AskError(f"{path}: not a tracked video (is it in a watched folder, and synced?)")


def load_history(path: Path | None) -> list[ChatMessage]:
    if path is None or not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AskError(f"{path}: cannot read history: {exc}") from exc
    if not isinstance(data, list):
        raise AskError(f"{path}: history must be a JSON list of {{role, content}} messages")
    messages = []
    for i, item in enumerate(data):
        if (not isinstance(item, dict) or item.get("role") not in ("user", "assistant")
                or not isinstance(item.get("content"), str)):
            raise AskError(f"{path}: message {i} must be {{\"role\": \"user\"|\"assistant\", \"content\": \"...\"}}")
        messages.append(ChatMessage(item["role"], item["content"]))
    return messages


def save_history(path: Path, messages: Sequence[ChatMessage]) -> None:
    body = json.dumps([{"role": m.role, "content": m.content} for m in messages], indent=2, ensure_ascii=False)
    write_atomic(path, (body + "\n").encode())


def ask(remote: Remote, video_id: str, question: str, history: Sequence[ChatMessage], *,
        stream: bool, write: Callable[[str], None]) -> str:
    """Ask; with ``stream`` each token goes to ``write`` as it arrives. Returns the answer."""
    chat = need(remote, remote.features().chat, "answer questions about a video")
    if not stream:
        answer = chat.ask(video_id, question, history)
        write(answer)
        return answer
    parts = []
    for token in chat.ask_stream(video_id, question, history):
        write(token)
        parts.append(token)
    return "".join(parts)
