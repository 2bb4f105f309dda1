"""The CLI refuses, before any request, an --input, --output and --report that are one
file, however it is spelled (same path, relative, symlink, hard link)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from yait_aichain.cli import main

PROMPT = "Summarise: {text}"


def _items(tmp_path: Path) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(3)))
    return path


def _spellings(tmp_path: Path, target: Path) -> dict[str, str]:
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    hard = tmp_path / "hard.jsonl"
    if target.exists():
        os.link(target, hard)
    dangling = tmp_path / "later.html"
    dangling.symlink_to(tmp_path / "not-yet.html")
    out = {"same": str(target), "relative": os.path.relpath(target), "symlink": str(link),
           "dotted": str(target.parent / "." / target.name)}
    if target.exists():
        out["hardlink"] = str(hard)
    return out


@pytest.mark.parametrize("how", ["same", "relative", "symlink", "hardlink", "dotted"])
@pytest.mark.parametrize("flag", ["--output", "--report"])
def test_a_result_file_that_is_the_input_is_refused(sim_env, tmp_path, capsys, monkeypatch,
                                                   how, flag):
    monkeypatch.chdir(tmp_path)
    items = _items(tmp_path)
    before = items.read_bytes()
    path = _spellings(tmp_path, items)[how]
    args = {"--output": str(tmp_path / "out.jsonl"), "--report": None, flag: path}
    argv = ["run", "--model", "gpt-4o-mini", "--prompt", PROMPT, "--input", str(items),
            "--output", args["--output"]]
    if args["--report"]:
        argv += ["--report", args["--report"]]
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert "--input" in err and flag in err and path in err and str(items) in err
    assert items.read_bytes() == before
    assert sim_env.stats.requests == 0


@pytest.mark.parametrize("how", ["same", "relative", "symlink-not-yet-written"])
def test_report_and_output_that_are_one_file_are_refused(sim_env, tmp_path, capsys,
                                                          monkeypatch, how):
    monkeypatch.chdir(tmp_path)
    items = _items(tmp_path)
    out = tmp_path / "out.jsonl"
    report = {"same": str(out), "relative": "out.jsonl"}.get(how)
    if report is None:
        (tmp_path / "r.html").symlink_to(out)  # out does not exist yet
        report = str(tmp_path / "r.html")
    code = main(["run", "--model", "gpt-4o-mini", "--prompt", PROMPT, "--input", str(items),
                 "--output", str(out), "--report", report])
    err = capsys.readouterr().err
    assert code != 0 and "--output" in err and "--report" in err and report in err
    assert not out.exists() and sim_env.stats.requests == 0


def test_distinct_files_still_run(sim_env, tmp_path, capsys):
    items = _items(tmp_path)
    code = main(["run", "--model", "gpt-4o-mini", "--prompt", PROMPT, "--input", str(items),
                 "--output", str(tmp_path / "out.jsonl"), "--report",
                 str(tmp_path / "r.html")])
    assert code == 0 and (tmp_path / "r.html").exists()
    assert sim_env.stats.requests == 3
