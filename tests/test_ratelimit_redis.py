"""RateLimit(redis_url=...): one budget for many processes, against a real redis-server
started on a free loopback port for this session (skipped only when the binary is absent;
CI installs it)."""

from __future__ import annotations

import itertools
import os
import pickle
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from yait_aichain.errors import APITimeoutError, ConfigurationError, NetworkError
from yait_aichain.ratelimit import RateLimit
from yait_aichain.testing import Simulator

from .test_ratelimit import assert_request_rate, max_in_window

REDIS_SERVER = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url():
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    import redis

    port = _free_port()
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


def shared(url: str, key: str, **kwargs) -> RateLimit:
    return RateLimit(redis_url=url, key=key, **kwargs)


def test_two_objects_with_one_key_share_the_budget(redis_url):
    key = uuid.uuid4().hex
    a, b = shared(redis_url, key, requests_per_minute=60), shared(redis_url, key, requests_per_minute=60)
    assert a.acquire() == 0.0
    with pytest.raises(APITimeoutError) as info:
        b.acquire(timeout=0.2)  # a took the slot: b would have to wait a second
    assert info.value.retry_after == pytest.approx(1.0, abs=0.05)
    # Another key is another budget.
    assert shared(redis_url, uuid.uuid4().hex, requests_per_minute=60).acquire() == 0.0


def test_requests_queue_up_evenly_spaced(redis_url):
    limit = shared(redis_url, uuid.uuid4().hex, requests_per_minute=600)
    backend = limit.backend
    waits = [backend.reserve(1, 0, None)[0] for _ in range(4)]
    assert waits[0] == 0.0
    for before, after in itertools.pairwise(waits):
        assert after - before == pytest.approx(0.1, abs=0.01)


def test_tokens_pause_and_cancel_are_shared(redis_url):
    key = uuid.uuid4().hex
    a = shared(redis_url, key, tokens_per_minute=6000)  # 100/s, 100 tokens of credit
    b = shared(redis_url, key, tokens_per_minute=6000)
    assert a.backend.reserve(1, 100, None)[0] == 0.0
    a.adjust(200)  # it used 300 in the end
    assert b.backend.reserve(1, 100, None)[0] == pytest.approx(3.0, abs=0.05)
    wait, handle = b.backend.reserve(1, 100, None)
    b.backend.cancel(handle)  # the last in the queue: given back
    assert a.backend.reserve(1, 100, None)[0] == pytest.approx(wait, abs=0.05)
    pausing = shared(redis_url, uuid.uuid4().hex, requests_per_minute=6000)
    pausing.pause(2)
    assert shared(redis_url, pausing.key, requests_per_minute=6000).backend.reserve(1, 0, None)[0] \
        == pytest.approx(2.0, abs=0.05)


def test_keys_expire_when_idle(redis_url):
    import redis

    limit = shared(redis_url, uuid.uuid4().hex, requests_per_minute=60, tokens_per_minute=600)
    limit.acquire(tokens=5)
    client = redis.Redis.from_url(redis_url)
    keys = client.keys(f"yait:ratelimit:{{{limit.key}}}:*")
    assert len(keys) == 2
    assert all(0 < client.pttl(k) <= 2000 for k in keys)
    client.close()


def test_pickles_without_a_client_and_reconnects(redis_url):
    limit = shared(redis_url, uuid.uuid4().hex, requests_per_minute=60)
    limit.acquire()
    blob = pickle.dumps(limit)
    assert b"Redis" not in blob.replace(b"RedisBackend", b"") and b"_thread" not in blob
    with pytest.raises(APITimeoutError):
        pickle.loads(blob).acquire(timeout=0.1)


def test_missing_redis_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)
    limit = RateLimit(60, redis_url="redis://127.0.0.1:6379/0", key="k")
    # The extra of this project, installed from its checkout: a distribution named
    # yait-aichain on the public index is another project.
    with pytest.raises(ConfigurationError, match=r'pip install redis .*pip install -e "\.\[redis\]"'):
        limit.acquire()


def test_an_unreachable_server_is_a_network_error_without_the_password():
    limit = RateLimit(60, redis_url=f"redis://:hunter2@127.0.0.1:{_free_port()}/0", key="k")
    assert "hunter2" not in repr(limit)
    with pytest.raises(NetworkError) as info:
        limit.acquire()
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


_CHILD = textwrap.dedent("""
    import os
    from yait_aichain.models import Model
    from yait_aichain.pool import Pool, DONE
    from yait_aichain.ratelimit import RateLimit
    from yait_aichain.skills import Skill

    limit = RateLimit(requests_per_minute=600, redis_url=os.environ["TEST_REDIS_URL"],
                      key=os.environ["TEST_KEY"])
    model = Model("gpt-4o-mini", api_key="sk-test", base_url=os.environ["TEST_SIM_URL"])
    name = os.environ["TEST_NAME"]
    pool = Pool(Skill(model=model, prompt="{text}"),
                [{"text": f"{name} {i}"} for i in range(15)], max_flows=5, rate_limit=limit)
    results = pool.run()
    assert pool.status[DONE] == 15, pool.status
    assert results == [f"Summary: {name} {i}" for i in range(15)]
""")


def test_three_processes_hold_600_rpm_together(redis_url, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    key = uuid.uuid4().hex
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with Simulator(latency=0.02) as sim:
        env = {**os.environ, "TEST_REDIS_URL": redis_url, "TEST_KEY": key,
               "TEST_SIM_URL": sim.openai_base_url,
               "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        children = [
            subprocess.Popen([sys.executable, str(script)], env={**env, "TEST_NAME": f"proc{n}"})
            for n in range(3)
        ]
        codes = [child.wait(60) for child in children]
        times = [r.time for r in sim.requests_log]
    assert codes == [0, 0, 0]
    assert len(times) == 45
    # 45 requests at 10/s take 4.4 s whichever process sends them; without the shared
    # limit each process would go at 10/s on its own, 30/s together.
    assert_request_rate(times, 10, windows=(2.0, 3.0))
    assert max_in_window(times, 5.0) <= 55
    assert max(times) - min(times) >= 4.3
