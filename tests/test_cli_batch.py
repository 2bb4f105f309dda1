"""``yait-aichain run --batch`` and ``--no-wait`` against the simulator's Batch APIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yait_aichain.cli import main

PROMPT = "Summarise: {text}"


def _items(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(n)))
    return path


def _cli(tmp_path: Path, *args: str, n: int = 30) -> tuple[int, Path]:
    items = tmp_path / "items.jsonl"
    if not items.exists():
        _items(items, n)
    out = tmp_path / "out.jsonl"
    code = main(["run", "--model", "claude-sonnet-4-6", "--prompt", PROMPT, "--input",
                 str(items), "--output", str(out), "--poll-interval", "0.01", *args])
    return code, out


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_batch_writes_every_line_at_half_the_live_cost(sim_env, tmp_path):
    code, out = _cli(tmp_path, "--batch")
    assert code == 0
    lines = _lines(out)
    assert sorted(line["id"] for line in lines) == list(range(1, 31))
    assert all(line["status"] == "DONE" for line in lines)
    assert sim_env.batches.created == 1
    assert not any(r.path == "/v1/messages" for r in sim_env.requests_log)
    batch_cost = sum(line["usage"]["cost"] for line in lines)
    live_dir = tmp_path / "live"
    live_dir.mkdir()
    code, live_out = _cli(live_dir)
    live_cost = sum(line["usage"]["cost"] for line in _lines(live_out))
    assert batch_cost == pytest.approx(live_cost / 2)


def test_no_wait_submits_and_prints_the_command_that_collects(sim_env, tmp_path, capsys,
                                                              monkeypatch):
    sim_env.batches.delay = 3600
    monkeypatch.setattr("sys.argv", ["yait-aichain", "run", "--batch", "--no-wait"])
    code, out = _cli(tmp_path, "--batch", "--no-wait")
    assert code == 0 and _lines(out) == []
    text = capsys.readouterr().out
    assert "submitted 1 batch(es), 30 requests" in text and "--resume" in text
    assert "--no-wait" not in text.splitlines()[-1]
    sim_env.batches.finish_all()
    code, out = _cli(tmp_path, "--batch", "--resume")
    assert code == 0 and len(_lines(out)) == 30
    assert sim_env.batches.created == 1  # collected, not submitted again


def test_batch_flags_that_cannot_work_are_refused_before_sending(sim_env, tmp_path):
    assert _cli(tmp_path, "--no-wait")[0] == 2
    items = _items(tmp_path / "items.jsonl", 2)
    assert main(["run", "--model", "claude-sonnet-4-6", "--prompt", PROMPT, "--input",
                 str(items), "--output", "-", "--batch"]) == 2
    assert sim_env.stats.requests == 0
