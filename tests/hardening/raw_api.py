"""A visitor's raw HTTP client for a served studio: log in, upload a file, and call any event
handler through Gradio's queue by `fn_index` — including handlers the UI marks private, which
gradio_client will not list. This is how a hostile visitor reaches the engines, so the hosting
tests use it alongside gradio_client."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

API = "gradio_api"


@dataclass
class Outcome:
    """What the last queue message said: the outputs, or the error shown to the visitor."""

    success: bool
    data: list[Any]
    error: str

    @property
    def text(self) -> str:
        """Everything a visitor can read from the reply, as one string."""
        return self.error + " " + json.dumps(self.data, default=str)


class RawVisitor:
    def __init__(self, url: str, auth: tuple[str, str] | None = None) -> None:
        self.url = url.rstrip("/") + "/"
        self.http = httpx.Client(timeout=120)
        if auth is not None:
            reply = self.http.post(
                self.url + "login", data={"username": auth[0], "password": auth[1]}
            )
            reply.raise_for_status()
        self.config = self.http.get(self.url + "config").json()

    def close(self) -> None:
        self.http.close()

    def fn_index(self, api_name: str) -> int:
        """The index of the first handler with this api_name (private handlers have one too)."""
        for index, dependency in enumerate(self.config["dependencies"]):
            if dependency.get("api_name") == api_name:
                return index
        raise KeyError(f"no handler named {api_name!r}")

    def upload(self, path: Path) -> dict[str, Any]:
        """Upload a file as the browser does; returns the FileData a handler receives."""
        with path.open("rb") as handle:
            reply = self.http.post(f"{self.url}{API}/upload", files={"files": (path.name, handle)})
        reply.raise_for_status()
        [server_path] = reply.json()
        return {"path": server_path, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def call(self, fn_index: int, data: list[Any]) -> Outcome:
        """Join the queue for handler `fn_index` with `data`; read the stream to its end."""
        session = uuid.uuid4().hex[:11]
        body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None}
        joined = self.http.post(f"{self.url}{API}/queue/join", json=body)
        joined.raise_for_status()
        last: dict[str, Any] = {}
        with self.http.stream(
            "GET", f"{self.url}{API}/queue/data", params={"session_hash": session}
        ) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") in ("process_generating", "process_completed"):
                    last = message
                if message.get("msg") in ("process_completed", "close_stream"):
                    break
        output = last.get("output") or {}
        error = output.get("error") or ""
        return Outcome(bool(last.get("success")), list(output.get("data") or []), str(error))

    def call_named(self, api_name: str, data: list[Any]) -> Outcome:
        return self.call(self.fn_index(api_name), data)
