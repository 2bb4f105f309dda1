"""The benchmark scripts still run (their numbers are read from benchmarks/README.md,
never asserted here: timings in unit tests would only measure the machine's load)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "benchmarks"


@pytest.mark.parametrize(
    "script, args, expect",
    [
        ("bench_model.py", ["--quick"], "| Model.generate |"),
        ("bench_convert.py", ["--pages", "10", "--flows", "4"], "fetch + convert, threaded"),
        ("bench_hostile.py", ["--size", "20000", "--repeats", "1"], "worst ratio"),
        ("bench_auto.py", ["--only", "local", "--contenders", "auto,40", "--local-items", "80"],
         "vs the best fixed"),
        ("bench_documents.py", ["--docs", "1", "--pages", "2", "--rounds", "1"],
         "| pptx | "),
        ("bench_batch.py", ["--items", "20", "--rounds", "1", "--latency", "0.01",
                            "--batch-delay", "0.1"], "| batch + cache |"),
    ],
)
def test_benchmark_script_runs(script, args, expect):
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert expect in done.stdout
