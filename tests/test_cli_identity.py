"""The CLI's output file records the settings behind each answer; --resume never reuses
answers made under other settings without being told to (--force)."""

from __future__ import annotations

import json
from pathlib import Path

from yait_aichain.cli import main


def _items(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(n)),
                    encoding="utf-8")
    return path


def _run(tmp_path: Path, *args: str, prompt: str = "Summarise: {text}") -> int:
    return main(["run", "-m", "gpt-4o-mini", "-p", prompt, "-i", str(tmp_path / "items.jsonl"),
                 "-o", str(tmp_path / "out.jsonl"), "--max-flows", "20", *args])


def _lines(tmp_path: Path) -> list[dict]:
    text = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_resume_with_another_prompt_refuses_and_force_reruns_all(sim_env, tmp_path, capsys):
    _items(tmp_path, 300)
    assert _run(tmp_path) == 0
    assert sim_env.stats.requests == 300
    sim_env.reset()
    capsys.readouterr()
    assert _run(tmp_path, "--resume", prompt="Translate: {text}") == 2
    err = capsys.readouterr().err
    assert sim_env.stats.requests == 0
    assert "300 items" in err and "DONE under other settings" in err
    assert "prompt 'Summarise: {text}' -> 'Translate: {text}'" in err and "--force" in err
    assert _run(tmp_path, "--resume", "--force", prompt="Translate: {text}") == 0
    assert sim_env.stats.requests == 300
    latest = {line["id"]: line for line in _lines(tmp_path)}
    assert all(line["output"].startswith("Summary: Translate:") for line in latest.values())
    sim_env.reset()
    assert _run(tmp_path, "--resume", prompt="Translate: {text}") == 0  # now all its own
    assert sim_env.stats.requests == 0


def test_same_settings_resume_reuses_and_every_line_names_its_run(sim_env, tmp_path):
    _items(tmp_path, 5)
    assert _run(tmp_path) == 0
    lines = _lines(tmp_path)
    assert len(lines) == 5 and len({line["run"] for line in lines}) == 1
    identity = lines[0]["run_identity"]
    assert identity["model"] == "gpt-4o-mini" and identity["prompt"] == "Summarise: {text}"
    assert all("run_identity" not in line for line in lines[1:])
    assert "sk-" not in json.dumps(lines)
    sim_env.reset()
    assert _run(tmp_path, "--resume") == 0 and sim_env.stats.requests == 0


def test_model_system_options_and_format_are_part_of_the_identity(sim_env, tmp_path, capsys):
    _items(tmp_path, 3)
    assert _run(tmp_path) == 0
    for extra, needle in [
        (["-m", "gpt-4o"], "model 'gpt-4o-mini' -> 'gpt-4o'"),
        (["--system", "Be brief."], "system"),
        (["--temperature", "0.5"], "options"),
        (["--max-tokens", "50"], "options"),
    ]:
        capsys.readouterr()
        assert _run(tmp_path, "--resume", *extra) == 2, extra
        assert needle in capsys.readouterr().err
    assert sim_env.stats.requests == 3


def test_lines_without_a_recorded_run_are_still_resumed(sim_env, tmp_path):
    _items(tmp_path, 3)
    (tmp_path / "out.jsonl").write_text(json.dumps({"id": 1, "status": "DONE"}) + "\n",
                                        encoding="utf-8")
    assert _run(tmp_path, "--resume") == 0 and sim_env.stats.requests == 2


def test_force_needs_resume(sim_env, tmp_path, capsys):
    _items(tmp_path, 1)
    assert _run(tmp_path, "--force") == 2
    assert "--force only applies with --resume" in capsys.readouterr().err


def test_prompt_and_system_read_backslash_n_as_a_newline(sim_env, tmp_path, capsys):
    _items(tmp_path, 1)
    code = _run(tmp_path, "--dry-run", "--system", "Line one\\nLine two",
                prompt="A\\tB: {text}\\\\n")
    out = capsys.readouterr().out
    assert code == 0
    assert "[system] Line one\nLine two" in out and "[user] A\tB: doc 0\\n" in out


def test_system_file_temperature_max_tokens_reach_the_request(sim_env, tmp_path):
    _items(tmp_path, 2)
    system = tmp_path / "system.txt"
    system.write_text("Be\\nbrief.", encoding="utf-8")
    assert _run(tmp_path, "--system-file", str(system), "--temperature", "0.2",
                "--max-tokens", "64") == 0
    identity = _lines(tmp_path)[0]["run_identity"]
    assert identity["system"] == "Be\\nbrief."  # a file is read exactly as written
    assert identity["options"] == {"temperature": 0.2, "max_tokens": 64}


def test_on_error_stop_starts_nothing_after_the_first_failure(sim_env, tmp_path):
    from yait_aichain.testing import Fault

    _items(tmp_path, 50)
    sim_env.fail_when("doc 0", Fault.status(400))
    code = _run(tmp_path, "--on-error", "stop", "--max-flows", "1")
    statuses = [line["status"] for line in _lines(tmp_path)]
    assert code == 1 and statuses.count("DONE") == 0 and sim_env.stats.requests == 1
    assert statuses.count("CANCELLED") == 49


def test_a_long_change_shows_where_the_values_differ(sim_env, tmp_path, capsys):
    _items(tmp_path, 2)
    common = "You are a careful assistant who writes short summaries. " * 3
    assert _run(tmp_path, "--system", common + "Use English.") == 0
    capsys.readouterr()
    assert _run(tmp_path, "--resume", "--system", common + "Use French.") == 2
    err = capsys.readouterr().err
    assert "Use English." in err and "Use French." in err
    capsys.readouterr()
    assert _run(tmp_path, "--resume") == 2
    dropped = capsys.readouterr().err
    assert "system '" in dropped and "-> none" in dropped
