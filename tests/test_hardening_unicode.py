"""Any str Python can hold (lone surrogates included) survives checkpoints, the report,
the CLI's output and messages, and logs; --resume works after it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from yait_aichain import DONE, Model, Pool
from yait_aichain.cli import main
from yait_aichain.errors import APIError

HALF = "half an emoji \ud83d and a \udfff tail"  # lone surrogates


class Echo:
    """Answers with the item's text, and with a lone surrogate for item 2."""

    def __init__(self):
        self.calls = 0

    def run(self, variables):
        self.calls += 1
        if variables["n"] == 2:
            return "answer " + HALF
        return f"answer {variables['text']}"


def _items():
    return [{"n": i, "text": HALF if i == 3 else f"doc {i}"} for i in range(6)]


def test_a_checkpointed_pool_keeps_every_item_and_resumes_exactly(tmp_path):
    path = tmp_path / "run.ckpt"
    runner = Echo()
    pool = Pool(runner, _items(), max_flows=2, checkpoint=path, checkpoint_key="v1")
    results = pool.run()
    assert [r.status for r in pool.records] == [DONE] * 6
    assert results[2] == "answer " + HALF and results[3] == "answer " + HALF
    raw = path.read_bytes()
    raw.decode("utf-8")  # valid UTF-8 throughout
    for line in raw.splitlines():
        json.loads(line)
    again = Echo()
    resumed = Pool(again, _items(), max_flows=2, checkpoint=path, checkpoint_key="v1")
    assert resumed.run() == results and again.calls == 0  # restored, exact
    report = pool.report(tmp_path / "run.html")
    Path(report).read_text(encoding="utf-8")


@pytest.mark.parametrize("model_name", ["gpt-4o-mini", "claude-sonnet-4-6", "gemini-2.5-flash"])
def test_a_lone_surrogate_reaches_the_model_as_u_fffd(sim, model_name):
    # The real APIs answer its JSON escape with a 400 ("no low surrogate in string"), and
    # so does the simulator: the request carries U+FFFD instead, and the call succeeds.
    url = sim.openai_base_url if model_name.startswith("gpt") else sim.anthropic_base_url
    model = Model(model_name, api_key="sk-test", base_url=url)
    try:
        gen = model.generate("Echo: " + HALF)
    except APIError as exc:  # a bare UnicodeEncodeError would fail the test too
        pytest.fail(f"unexpected {exc!r}")
    assert isinstance(gen.output, str)
    assert "\ufffd" in sim.requests_log[-1].last_user_text


def test_logs_survive_lone_surrogates(tmp_path, caplog):
    log = tmp_path / "log.txt"
    handler = logging.FileHandler(log, encoding="utf-8")
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.DEBUG)
    try:
        from yait_aichain.models._status import error_for_response
        from yait_aichain.models.providers import ADAPTERS

        err = error_for_response(503, {}, json.dumps({"error": {"message": HALF}}).encode(),
                                 provider="openai", model="m",
                                 error_details=ADAPTERS["openai"].error_details)
        logging.getLogger("yait_aichain.retry").info("retrying after %s", err)
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(old)
    text = log.read_text(encoding="utf-8")
    assert "half an emoji \ufffd and a \ufffd tail" in text


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_the_cli_writes_and_resumes_after_a_lone_surrogate(sim_env, tmp_path, capsys):
    items = _jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "fine"},
                                           {"id": "b\ud83d", "text": HALF},
                                           {"id": "c", "text": "also fine"}])
    out = tmp_path / "out.jsonl"
    argv = ["run", "--model", "gpt-4o-mini", "--prompt", "Echo: {text}", "--input",
            str(items), "--output", str(out), "--id", "id", "--report",
            str(tmp_path / "r.html")]
    assert main(argv) == 0
    capsys.readouterr()
    lines = [json.loads(line) for line in out.read_bytes().decode("utf-8").splitlines()]
    assert sorted(line["id"] for line in lines) == ["a", "b\ud83d", "c"]
    assert all(line["status"] == "DONE" for line in lines)
    (tmp_path / "r.html").read_text(encoding="utf-8")
    before = sim_env.stats.requests
    assert main(argv[:-2] + ["--resume"]) == 0  # nothing left to do, and no crash
    assert sim_env.stats.requests == before
    printed = capsys.readouterr()
    printed.out.encode("utf-8")
    printed.err.encode("utf-8")
