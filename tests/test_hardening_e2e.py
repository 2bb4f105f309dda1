"""End to end: a key read with its CRLF meets a 401, a timeout and a server that echoes
it, with every logger at DEBUG and tracebacks captured with their locals; the key shows
nowhere: records, checkpoint, report, CLI output, logs, tracebacks."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import traceback
from pathlib import Path

import pytest

from yait_aichain import Model, Pool, Skill
from yait_aichain.cli import main

from ._rawserver import RawServer, response

KEY = "zz9-e2e-Key-Canary-0123456789"  # no sk- shape for a pattern to catch
OK = {"usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def _answer(text: str) -> bytes:
    return json.dumps({**OK, "choices": [{"message": {"content": text},
                                          "finish_reason": "stop"}]}).encode()


class Hostile:
    """What the server does depends on the item's text."""

    def __init__(self):
        self.flaky = 0
        self.lock = threading.Lock()

    def __call__(self, sock, req):
        key = (req.header("authorization") or "").removeprefix("Bearer ")
        text = json.loads(req.body)["messages"][-1]["content"]
        text = text if isinstance(text, str) else json.dumps(text)
        if "deny" in text:
            body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}",
                                         "type": "invalid_request_error"}})
            sock.sendall(response(401, body.encode(), {"Content-Type": "application/json"}))
        elif "hang" in text:
            time.sleep(4)
        elif "echo" in text:
            sock.sendall(response(200, _answer(f"you sent {key} twice: {key}")))
        elif "flaky" in text:
            with self.lock:
                self.flaky += 1
                first = self.flaky == 1
            if first:
                body = json.dumps({"error": {"message": f"boom for {key}"}}).encode()
                sock.sendall(response(500, body, {"Retry-After": "0"}))
            else:
                sock.sendall(response(200, _answer("recovered")))
        else:
            sock.sendall(response(200, _answer("fine")))


ROWS = [{"id": n, "text": f"please {n}"} for n in ("deny", "hang", "echo", "flaky", "plain")]


@pytest.fixture
def everything_logged():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    names = ["", "urllib3", "urllib3.connectionpool", "requests", "yait_aichain",
             *logging.root.manager.loggerDict]
    old = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.addHandler(handler)
    import http.client

    http.client.HTTPConnection.debuglevel = 0  # prints to stdout, not logs; kept off
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for name, level in old.items():
            logging.getLogger(name).setLevel(level)


def _with_locals(exc: BaseException) -> str:
    tbe = traceback.TracebackException.from_exception(exc, capture_locals=True)
    return "".join(tbe.format())


def test_a_crlf_key_shows_nowhere(monkeypatch, tmp_path, capsys, everything_logged):
    monkeypatch.setenv("OPENAI_API_KEY", KEY + "\r\n")
    with RawServer(Hostile()) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url + "/v1")
        # The library: a checkpointed Pool and its report.
        skill = Skill(model=Model("gpt-4o-mini", timeout=2), prompt="{text}")
        pool = Pool(skill, [{"text": r["text"]} for r in ROWS], max_flows=5,
                    checkpoint=tmp_path / "run.ckpt")
        pool.run()
        pool.report(tmp_path / "pool.html")
        # The CLI: output lines, report, what it prints.
        items = tmp_path / "in.jsonl"
        items.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
        code = main(["run", "--model", "gpt-4o-mini", "--prompt", "{text}", "--input",
                     str(items), "--output", str(tmp_path / "out.jsonl"), "--id", "id",
                     "--timeout", "2", "--report", str(tmp_path / "cli.html")])
    printed = capsys.readouterr()
    assert code != 0  # some items failed, as they should

    statuses = {r.variables["text"]: r.status_name for r in pool.records}
    assert statuses["please deny"] == "FAILED" and statuses["please hang"] == "FAILED"
    assert statuses["please echo"] == "DONE" and statuses["please plain"] == "DONE"
    assert srv.requests and all(KEY in r.head.decode() for r in srv.requests)  # sent, stripped

    seen = [printed.out, printed.err, everything_logged.getvalue()]
    for rec in pool.records:
        seen += [repr(rec), json.dumps(rec.as_dict(), default=str), str(rec.output)]
        if rec.error is not None:
            seen += [str(rec.error), repr(rec.error), repr(vars(rec.error)),
                     _with_locals(rec.error), rec.traceback or ""]
    seen += [p.read_bytes().decode("utf-8", "replace") for p in Path(tmp_path).iterdir()
             if p.is_file() and p.name != "in.jsonl"]
    assert len(seen) > 10
    for text in seen:
        assert KEY not in text
    assert "***" in (tmp_path / "out.jsonl").read_text()  # the echo was cut, not dropped
