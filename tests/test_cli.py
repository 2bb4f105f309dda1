"""The yait-aichain command line: demo, run, resume after Ctrl-C, exit codes."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from yait_aichain.cli import main
from yait_aichain.testing import Fault

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "Summarise: {text}"


def _write_jsonl(path: Path, n: int, **extra) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"text": f"doc {i}", **extra}) + "\n")
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _run(tmp_path: Path, *args: str, n: int = 5, output: str = "out.jsonl") -> tuple[int, Path]:
    items = tmp_path / "items.jsonl"
    if not items.exists():
        _write_jsonl(items, n)
    out = tmp_path / output
    code = main(["run", "--model", "gpt-4o-mini", "--prompt", PROMPT, "--input", str(items),
                 "--output", str(out), *args])
    return code, out


def _child_env(sim) -> dict[str, str]:
    env = dict(os.environ, **sim.env(api_key="sk-test"))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# -- demo -------------------------------------------------------------------------------


def test_demo_runs_offline_and_compares_with_the_loop(tmp_path, capsys):
    report = tmp_path / "demo.html"
    started = time.monotonic()
    code = main(["demo", "--latency", "0.05", "--items", "20", "--max-flows", "5",
                 "--loop", "2", "--report", str(report)])
    out = capsys.readouterr().out
    assert code == 0
    assert time.monotonic() - started < 5
    assert "local LLM simulator" in out and "Pool(max_flows=5)" in out
    assert "status:  done=20 failed=0 cancelled=0" in out
    assert "for-loop would take:" in out and "speed-up:" in out
    assert "for-loop: 2 documents in" in out
    assert report.read_text(encoding="utf-8").count('class="bar"') == 20


def test_demo_with_model_goes_to_the_provider(sim_env, capsys):
    code = main(["demo", "--model", "gpt-4o-mini", "--items", "6", "--max-flows", "3"])
    assert code == 0
    assert sim_env.stats.requests == 6  # OPENAI_BASE_URL points at the test's simulator
    assert "calls go to openai at" in capsys.readouterr().out


def test_demo_with_model_and_no_key_says_which_variable(capsys):
    assert main(["demo", "--model", "claude-sonnet-4-6"]) == 2
    err = capsys.readouterr().err
    assert "ANTHROPIC_API_KEY" in err and "Traceback" not in err
    # demo has no --dry-run: its offline way is the demo without --model
    assert "the demo without --model" in err and "--dry-run" not in err


# -- run --------------------------------------------------------------------------------


def test_run_500_items_writes_500_lines_with_their_ids(sim_env, tmp_path, capsys):
    code, out = _run(tmp_path, "--max-flows", "20", n=500)
    assert code == 0
    lines = _lines(out)
    assert sorted(line["id"] for line in lines) == list(range(1, 501))
    first = min(lines, key=lambda line: line["id"])
    assert first["status"] == "DONE" and first["output"] == "Summary: Summarise: doc 0"
    assert first["error"] is None and first["attempts"] == 1
    assert set(first["usage"]) == {"input_tokens", "output_tokens", "total_tokens", "cost",
                                   "cache_read_tokens", "cache_write_tokens"}
    assert isinstance(first["duration"], float)
    assert sim_env.stats.requests == 500
    assert "done 500, failed 0" in capsys.readouterr().out


def test_run_with_max_flows_auto_adapts_and_writes_its_report(sim_env, tmp_path, capsys):
    report = tmp_path / "run.html"
    code, out = _run(tmp_path, "--max-flows", "auto", "--report", str(report), n=40)
    assert code == 0 and len(_lines(out)) == 40 and sim_env.stats.requests == 40
    assert "(max_flows auto)" in capsys.readouterr().out
    assert "max_flows = " in report.read_text(encoding="utf-8")


def test_failures_exit_1_and_resume_reruns_only_them(sim_env, tmp_path, capsys):
    sim_env.fail_when("doc 3", Fault.unauthorized())
    code, out = _run(tmp_path, n=6)
    assert code == 1
    failed = [line for line in _lines(out) if line["status"] == "FAILED"]
    assert [line["id"] for line in failed] == [4]
    assert failed[0]["error"]["type"] == "AuthenticationError" and failed[0]["output"] is None
    sim_env.clear_faults()
    sim_env.reset()
    code, out = _run(tmp_path, "--resume", "--json")
    assert code == 0 and sim_env.stats.requests == 1
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["skipped"] == 5 and summary["done"] == 1 and summary["exit_code"] == 0
    lines = _lines(out)
    assert len(lines) == 7 and lines[-1]["id"] == 4 and lines[-1]["status"] == "DONE"


def test_existing_output_needs_resume_or_overwrite(sim_env, tmp_path, capsys):
    assert _run(tmp_path)[0] == 0
    assert _run(tmp_path)[0] == 2
    assert "--resume" in capsys.readouterr().err
    code, out = _run(tmp_path, "--overwrite")
    assert code == 0 and len(_lines(out)) == 5


def test_resume_cuts_a_torn_last_line(sim_env, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"id": 1, "status": "DONE"}) + '\n{"id": 2, "sta', encoding="utf-8")
    code, out = _run(tmp_path, "--resume", n=3)
    assert code == 0 and sim_env.stats.requests == 2
    assert sorted(line["id"] for line in _lines(out)) == [1, 2, 3]


def test_limit_and_a_prompt_from_a_file(sim_env, tmp_path):
    template = tmp_path / "prompt.txt"
    template.write_text("From a file: {text}", encoding="utf-8")
    code, out = _run(tmp_path, "--limit", "3", "--prompt", f"@{template}", n=10)
    assert code == 0 and sim_env.stats.requests == 3
    assert sorted(line["output"] for line in _lines(out)) == [
        f"Summary: From a file: doc {i}" for i in range(3)]


def test_csv_input_with_an_id_column(sim_env, tmp_path):
    items = tmp_path / "items.csv"
    with items.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "text"])
        writer.writerows([["a-1", "plain"], ["b-2", 'with "quotes", a comma\nand a newline']])
    out = tmp_path / "out.jsonl"
    code = main(["run", "-m", "gpt-4o-mini", "-p", PROMPT, "-i", str(items), "-o", str(out),
                 "--id", "key"])
    assert code == 0
    by_id = {line["id"]: line["output"] for line in _lines(out)}
    assert by_id == {"a-1": "Summary: Summarise: plain",
                     "b-2": 'Summary: Summarise: with "quotes", a comma and a newline'}


def test_ids_must_exist_and_be_unique(sim_env, tmp_path, capsys):
    items = tmp_path / "items.jsonl"
    items.write_text('{"k": 1, "text": "a"}\n{"k": 1, "text": "b"}\n', encoding="utf-8")
    assert _run(tmp_path, "--id", "k")[0] == 2
    assert "share the id 1" in capsys.readouterr().err
    assert _run(tmp_path, "--id", "nope")[0] == 2
    assert "has no column 'nope'" in capsys.readouterr().err
    assert sim_env.stats.requests == 0


def test_dry_run_sends_nothing_and_needs_no_key(sim, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", sim.openai_base_url)  # but no OPENAI_API_KEY
    code, out = _run(tmp_path, "--dry-run", "--system", "Be brief.", n=10)
    text = capsys.readouterr().out
    assert code == 0 and sim.stats.requests == 0 and not out.exists()
    assert "[system] Be brief." in text and "[user] Summarise: doc 0" in text
    assert "(3 of 10 prompts shown)" in text and "OPENAI_API_KEY" in text
    code, _ = _run(tmp_path, n=10)  # the same run for real, without a key
    err = capsys.readouterr().err
    assert code == 2 and "OPENAI_API_KEY" in err and "try --dry-run" in err


def test_a_missing_column_is_exit_2_naming_it(sim_env, tmp_path, capsys):
    items = tmp_path / "items.jsonl"
    items.write_text('{"text": "a"}\n{"body": "b"}\n', encoding="utf-8")
    code, _ = _run(tmp_path, "--dry-run")
    err = capsys.readouterr().err
    assert code == 2 and "{text}" in err and "line 2" in err and "'body'" in err
    assert "Traceback" not in err
    assert _run(tmp_path)[0] == 2 and sim_env.stats.requests == 0


def test_bad_input_lines_are_named(sim_env, tmp_path, capsys):
    (tmp_path / "items.jsonl").write_text('{"text": "a"}\n[1, 2]\n', encoding="utf-8")
    assert _run(tmp_path)[0] == 2
    assert "line 2: expected a JSON object" in capsys.readouterr().err


def test_output_to_stdout_and_a_report_with_ids(sim_env, tmp_path, capsys):
    items = _write_jsonl(tmp_path / "items.jsonl", 4)
    report = tmp_path / "run.html"
    code = main(["run", "-m", "gpt-4o-mini", "-p", PROMPT, "-i", str(items), "-o", "-",
                 "--report", str(report)])
    captured = capsys.readouterr()
    assert code == 0
    assert sorted(json.loads(line)["id"] for line in captured.out.splitlines()) == [1, 2, 3, 4]
    assert "done 4" in captured.err  # the summary stays off the data stream
    assert "#0 (id 1) DONE" in report.read_text(encoding="utf-8")


def test_timeout_fails_a_hung_item(sim_env, tmp_path):
    sim_env.fail_when("doc 1", Fault.hang())
    code, out = _run(tmp_path, "--timeout", "0.5", n=3)
    assert code == 1
    by_id = {line["id"]: line for line in _lines(out)}
    assert by_id[2]["status"] == "FAILED"
    assert by_id[2]["error"]["type"] in ("APITimeoutError", "ItemTimeoutError")
    assert by_id[2]["duration"] < 2


def test_rpm_and_tpm_reach_the_pool(sim_env, tmp_path):
    code, out = _run(tmp_path, "--rpm", "6000", "--tpm", "1000000")
    assert code == 0 and len(_lines(out)) == 5


@pytest.mark.parametrize("argv, needle", [
    ([], "usage:"),
    (["run", "-m", "gpt-4o-mini"], "required"),
    (["run", "-m", "x", "-p", "{t}", "-i", "a", "-o", "b", "--max-flows", "0"], "1 or more"),
    (["run", "-m", "x", "-p", "{t}", "-i", "a", "-o", "b", "--max-flows", "lots"], "whole number"),
    (["run", "-m", "mystery-model", "-p", "{t}", "-i", "a", "-o", "b"], "provider"),
    (["demo", "--latency", "-1"], "positive"),
])
def test_usage_errors_are_exit_2_without_traceback(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_ctrl_c_then_resume_finishes_without_redoing_work(sim, tmp_path):
    """SIGINT halfway: a valid file of whole lines and exit 130; --resume finishes it."""
    sim.latency = 0.1
    items = _write_jsonl(tmp_path / "items.jsonl", 500)
    out = tmp_path / "out.jsonl"
    argv = ["run", "-m", "claude-sonnet-4-6", "-p", PROMPT, "-i", str(items), "-o", str(out),
            "--max-flows", "10"]
    # The child restores the default Ctrl-C handler: a test runner started in the
    # background may have SIGINT ignored, which Python would inherit.
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from yait_aichain.cli import main; sys.exit(main(sys.argv[1:]))")
    child = subprocess.Popen([sys.executable, "-c", code, *argv], env=_child_env(sim),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and child.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 250:
                break
            time.sleep(0.02)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=15)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    data = out.read_bytes()
    assert data.endswith(b"\n")
    first = _lines(out)  # every line whole
    assert 250 <= len(first) < 500
    sim.latency = 0.0
    proc = subprocess.run([sys.executable, "-m", "yait_aichain", *argv, "--resume"],
                          env=_child_env(sim), check=False, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = _lines(out)
    assert sorted(line["id"] for line in lines) == list(range(1, 501))  # 500 unique ids
    assert all(line["status"] == "DONE" for line in lines)
    assert sim.stats.requests <= 500 + 10  # at most the interrupted in-flight ones twice


def test_the_console_script_and_module_entry_points(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "yait_aichain", "--version"], env=env,
                          check=False, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and proc.stdout.startswith("yait-aichain ")
    script = shutil.which("yait-aichain")
    if script is None:
        pytest.skip("the yait-aichain script is not installed (pip install -e . puts it on PATH)")
    proc = subprocess.run([script, "run", "--help"], check=False, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0 and "--resume" in proc.stdout


# -- typed answers: --schema and CSV output ----------------------------------------------

INVOICE_SCHEMA = {
    "type": "object",
    "properties": {
        "number": {"type": "string"},
        "status": {"type": "string", "enum": ["paid", "open"]},
        "customer": {"type": "object", "properties": {"name": {"type": "string"}},
                     "required": ["name"]},
        "lines": {"type": "array", "items": {"type": "object", "properties": {
            "item": {"type": "string"}, "quantity": {"type": "integer"}},
            "required": ["item", "quantity"]}},
    },
    "required": ["number", "status", "customer", "lines"],
}


def _schema_file(tmp_path: Path, schema=INVOICE_SCHEMA) -> str:
    path = tmp_path / "invoice.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    return str(path)


def test_schema_writes_the_parsed_object_per_line(sim_env, tmp_path):
    code, out = _run(tmp_path, "--schema", _schema_file(tmp_path), n=4)
    assert code == 0
    lines = sorted(_lines(out), key=lambda line: line["id"])
    assert [line["status"] for line in lines] == ["DONE"] * 4
    first = lines[0]["output"]
    assert first["number"] == "Summary: Summarise: doc 0" and first["status"] == "paid"
    assert first["customer"] == {"name": "Summary: Summarise: doc 0"}
    assert lines[0]["reasks"] == 0
    body = sim_env.requests_log[0].body["response_format"]["json_schema"]
    assert body["name"] == "invoice" and body["schema"]["additionalProperties"] is False


def test_schema_answers_are_re_asked_and_failures_keep_their_errors(sim_env, tmp_path):
    sim_env.invalid_answers(first=1)
    code, out = _run(tmp_path, "--schema", _schema_file(tmp_path), n=3)
    assert code == 0 and [line["reasks"] for line in _lines(out)] == [1, 1, 1]
    sim_env.invalid_answers(first=None)
    code, out = _run(tmp_path, "--schema", _schema_file(tmp_path), "--max-reasks", "0",
                     "--overwrite", n=3)
    assert code == 1
    lines = _lines(out)
    assert {line["status"] for line in lines} == {"FAILED"}
    assert lines[0]["error"]["type"] == "OutputValidationError"
    assert "'number' is a required property" in lines[0]["error"]["message"]


def test_csv_output_has_one_column_per_field_in_input_order(sim_env, tmp_path):
    sim_env.fail_when("doc 2", Fault.unauthorized())
    code, out = _run(tmp_path, "--schema", _schema_file(tmp_path), n=4, output="out.csv")
    assert code == 1
    with out.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["id"] for row in rows] == ["1", "2", "3", "4"]
    assert rows[0]["number"] == "Summary: Summarise: doc 0"
    assert rows[0]["output.status"] == "paid" and rows[0]["status"] == "DONE"
    assert rows[0]["customer.name"] == "Summary: Summarise: doc 0"
    assert json.loads(rows[0]["lines"]) == [{"item": "Summary: Summarise: doc 0",
                                             "quantity": 0}]
    assert rows[2]["status"] == "FAILED" and rows[2]["error_type"] == "AuthenticationError"
    assert rows[2]["number"] == ""
    assert int(rows[0]["input_tokens"]) > 0 and rows[0]["reasks"] == "0"


def test_csv_output_of_text_answers_is_one_output_column(sim_env, tmp_path):
    code, out = _run(tmp_path, n=2, output="out.csv")
    assert code == 0
    with out.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["output"] for row in rows] == ["Summary: Summarise: doc 0",
                                               "Summary: Summarise: doc 1"]


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "is not JSON"),
    ("[1, 2]", "must hold a JSON Schema object"),
    (json.dumps({"type": "object", "properties": {"a": {"type": "strnig"}}}),
     "not a valid JSON Schema"),
    (json.dumps({"type": "object", "properties": {
        "m": {"type": "object", "additionalProperties": {"type": "integer"}}}}),
     "free-form keys"),
])
def test_a_bad_schema_file_is_a_usage_error_before_any_request(sim_env, tmp_path, capsys,
                                                               content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    code, _ = _run(tmp_path, "--schema", str(path))
    assert code == 2 and sim_env.stats.requests == 0
    err = capsys.readouterr().err
    assert "--schema" in err and message in err


def test_missing_schema_file_and_csv_resume_are_usage_errors(sim_env, tmp_path, capsys):
    code, _ = _run(tmp_path, "--schema", str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read --schema" in capsys.readouterr().err
    code, _ = _run(tmp_path, "--resume", output="out.csv")
    assert code == 2 and "--resume" in capsys.readouterr().err
    assert sim_env.stats.requests == 0
