"""Measuring one client run in a fresh process: wall, CPU and peak RSS.

Each measured run happens in its own subprocess so that peak memory, threads and
connections left over by one contender never count against the next.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

_MB = 1024 * 1024


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_mb() -> float:
    kb = _status_kb("VmRSS")
    return kb / 1024 if kb is not None else float("nan")


def peak_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is None:  # not Linux: the lifetime peak (may include imports)
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024


def timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run ``fn`` once; return its result and wall s, CPU s, RSS before and peak (MB)."""
    gc.collect()
    exact = reset_peak()
    before = rss_mb()
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    c1, t1 = time.process_time(), time.perf_counter()
    return result, {
        "wall": t1 - t0, "cpu": c1 - c0, "rss_before": before, "peak": peak_mb(),
        "peak_exact": exact,
    }


def run_worker(script: str, spec: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    """Run ``script --worker SPEC`` in a new interpreter; return the JSON it prints last."""
    proc = subprocess.run(
        [sys.executable, script, "--worker", json.dumps(spec)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker {spec} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])
