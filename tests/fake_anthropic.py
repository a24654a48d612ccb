"""A loopback server speaking the Anthropic Messages API shapes, scripted per request."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

GOOD = {"invoice_number": "INV-1", "issue_date": "2026-01-02", "due_date": None,
        "seller": {"name": "ACME", "vat_id": None, "address": None},
        "buyer": {"name": "Buyer", "vat_id": None, "address": None}, "currency": "EUR",
        "allowance_total": None, "charge_total": None, "net_amount": 10.0, "tax_amount": 1.9, "total_amount": 11.9,
        "line_items": []}


class Script:
    """What the fake server answers, in order: a status, a tool input, a delay, or raw bytes."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.batches: dict[str, dict[str, Any]] = {}  # Message Batches: id -> requests, polls
        self.polls_until_ended = 2


def _message(tool_input: Any) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-opus-4-7",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "record", "input": tool_input}],
            "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": 2000, "output_tokens": 300}}


@contextlib.contextmanager
def serve() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _json(self, payload: Any, content_type: str = "application/json") -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _batch(self, batch_id: str) -> dict[str, Any]:
            batch = script.batches[batch_id]
            ended = batch["polls"] >= script.polls_until_ended
            host = f"http://127.0.0.1:{self.server.server_address[1]}"
            return {"id": batch_id, "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
                    "created_at": "2026-11-25T02:00:00Z", "expires_at": "2026-11-26T02:00:00Z",
                    "ended_at": "2026-11-25T02:10:00Z" if ended else None, "archived_at": None,
                    "cancel_initiated_at": None,
                    "request_counts": {"processing": 0 if ended else len(batch["requests"]), "succeeded": 0,
                                       "errored": 0, "canceled": 0, "expired": 0},
                    "results_url": f"{host}/v1/messages/batches/{batch_id}/results" if ended else None}

        def do_GET(self) -> None:  # noqa: N802
            parts = self.path.split("?")[0].strip("/").split("/")  # v1 messages batches ID [results]
            batch_id = parts[3]
            if parts[-1] == "results":
                lines = []
                for request in script.batches[batch_id]["requests"]:
                    kind, value = script.steps.pop(0) if script.steps else ("tool", GOOD)
                    result = ({"type": "errored", "error": {"type": "error", "error": {
                        "type": "api_error", "message": "boom"}}} if kind == "errored"
                        else {"type": "succeeded", "message": _message(value)})
                    lines.append(json.dumps({"custom_id": request["custom_id"], "result": result}))
                self._json(("\n".join(lines) + "\n").encode(), "application/binary")
                return
            script.batches[batch_id]["polls"] += 1
            self._json(self._batch(batch_id))

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script.requests.append({"path": self.path, "body": body, "key": self.headers.get("x-api-key")
                                    or (self.headers.get("authorization") or "").removeprefix("Bearer ")})
            if self.path.split("?")[0].rstrip("/").endswith("/messages/batches"):
                if script.steps and script.steps[0][0] == "batch_status":  # refuse to create the batch
                    self.send_response(script.steps.pop(0)[1])
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}')
                    return
                batch_id = f"msgbatch_{len(script.batches) + 1:04d}"
                script.batches[batch_id] = {"requests": body["requests"], "polls": 0}
                self._json(self._batch(batch_id))
                return
            kind, value = script.steps.pop(0) if script.steps else ("tool", GOOD)
            if kind == "sleep":
                time.sleep(value)
                kind, value = "tool", GOOD
            if kind == "status":
                payload = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
                self.send_response(value)
                self.send_header("Content-Type", "application/json")
                self.send_header("retry-after-ms", "10")
                self.end_headers()
                self.wfile.write(payload.encode())
                return
            data = value if kind == "raw" else json.dumps(_message(value)).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out first: that is the point of the test

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()




@pytest.fixture()
def anthropic_server() -> Iterator[tuple[str, Script]]:
    with serve() as served:
        yield served
