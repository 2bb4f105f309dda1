"""Simulator(capacity=, queue=, rate_headers=False): a local model server that saturates
(the header-less server max_flows="auto" is measured against)."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from yait_aichain.errors import ConfigurationError
from yait_aichain.testing import Simulator

BODY = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


def post(sim: Simulator, out: list, i: int) -> None:
    started = time.monotonic()
    resp = requests.post(sim.openai_base_url + "/chat/completions", json=BODY,
                         headers={"Authorization": "Bearer sk-cap"}, timeout=10)
    out.append((i, resp.status_code, time.monotonic() - started, resp))


def burst(sim: Simulator, n: int) -> list:
    out: list = []
    threads = [threading.Thread(target=post, args=(sim, out, i)) for i in range(n)]
    for t in threads:
        t.start()
        time.sleep(0.01)  # arrive in order
    for t in threads:
        t.join()
    return sorted(out)


def test_past_its_capacity_requests_wait_in_line():
    with Simulator(latency=0.3, capacity=2) as sim:
        results = burst(sim, 6)
        peak = sim.stats.peak_concurrency
    assert [status for _, status, _, _ in results] == [200] * 6
    waits = [seconds for _, _, seconds, _ in results]
    # Two at a time, first come first served: about 0.3, 0.3, 0.6, 0.6, 0.9, 0.9 s.
    for i, seconds in enumerate(waits):
        assert seconds == pytest.approx(0.3 * (i // 2 + 1), abs=0.15), waits
    assert peak == 6  # connected at once; served two at a time


def test_a_full_line_is_a_503_at_once():
    with Simulator(latency=0.4, capacity=1, queue=1) as sim:
        results = burst(sim, 3)
    statuses = [status for _, status, _, _ in results]
    assert statuses == [200, 200, 503]
    _, _, seconds, resp = results[2]
    assert seconds < 0.3
    assert "server busy" in resp.json()["error"]["message"]


def test_rate_headers_can_be_switched_off():
    with Simulator(rpm=100) as sim:
        on = burst(sim, 1)[0][3]
    with Simulator(rpm=100, rate_headers=False) as sim:
        off = burst(sim, 1)[0][3]
    assert on.headers["x-ratelimit-limit-requests"] == "100"
    assert not [name for name in off.headers if "ratelimit" in name.lower()]


@pytest.mark.parametrize("kwargs", [
    {"capacity": 0}, {"capacity": -1}, {"capacity": 2.5}, {"capacity": True},
    {"capacity": 2, "queue": -1}, {"queue": 3},
])
def test_bad_capacity_settings(kwargs):
    with pytest.raises(ConfigurationError):
        Simulator(**kwargs)
