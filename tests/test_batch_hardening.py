"""The Batch API calls keep the live path's guarantees: a server that echoes the key
cannot put it into an error or a result, and any str Python holds can be sent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from yait_aichain import Model
from yait_aichain.batch._providers import Http
from yait_aichain.errors import APIError
from yait_aichain.models import RetryPolicy

KEY = "not-shaped-like-any-vendor-key-0123456789"


class _Echo(BaseHTTPRequestHandler):
    """Answers with the key it was sent (as a careless proxy would) and the body it got."""

    status = 200
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        got = self.rfile.read(length)
        _Echo.bodies.append(got)
        key = self.headers.get("x-api-key") or self.headers.get("authorization", "")
        reply = json.dumps({"error": {"type": "invalid_request_error",
                                      "message": f"bad key {key}"}, "echo": key}).encode()
        self.send_response(_Echo.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Echo.bodies = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _http(base_url: str) -> Http:
    model = Model("claude-sonnet-4-6", api_key=KEY, base_url=base_url,
                  retry=RetryPolicy(max_retries=0))
    return Http(model)


def test_an_error_body_echoing_the_key_is_scrubbed(echo_server, monkeypatch):
    monkeypatch.setattr(_Echo, "status", 400)
    with pytest.raises(APIError) as info:
        _http(echo_server).json("POST", "/messages/batches", {"requests": []})
    exc = info.value
    seen = " ".join([str(exc), repr(exc.args), str(getattr(exc, "body", ""))])
    assert "bad key" in seen and KEY not in seen


def test_a_success_body_echoing_the_key_is_scrubbed(echo_server):
    data = _http(echo_server).json("POST", "/messages/batches", {"requests": []})
    assert data["echo"] and KEY not in json.dumps(data)


def test_a_lone_surrogate_in_a_batch_body_is_sent_as_u_fffd(echo_server):
    # The providers refuse its escape with a 400 ("no low surrogate in string").
    _http(echo_server).json("POST", "/messages/batches", {"text": "half an emoji \ud83d"})
    assert _Echo.bodies[-1].decode("utf-8") == '{"text":"half an emoji \ufffd"}'
