"""Pool(executor=...) on a real Dask cluster of two worker processes, against the simulator.

The cluster starts once for the module (about 2 s on two cores). Workers get their own
environment (``env=``), the way remote hosts would: the key the simulator accepts exists
only there.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from yait_aichain import Chain, Model, Pool, Skill  # noqa: E402
from yait_aichain.pool import DONE, FAILED  # noqa: E402
from yait_aichain.testing import Fault, Simulator  # noqa: E402
from yait_aichain.tools import convertToMD  # noqa: E402

from .docs_examples.dask_pool import summarise  # noqa: E402
from .test_executor import Recorder, where  # noqa: E402

WORKER_KEY = "sk-worker-env"
LOOPBACK = "127.0.0.1,localhost"


@pytest.fixture(scope="module")
def sim():
    with Simulator() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(sim):
    sim.clear_faults()
    sim.require_key = None
    sim.reset()


@pytest.fixture(scope="module")
def client():
    env = {"ANTHROPIC_API_KEY": WORKER_KEY, "NO_PROXY": LOOPBACK, "no_proxy": LOOPBACK}
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=4, env=env,
        dashboard_address=":0",  # None still binds 8787 for /metrics: clashes in parallel runs
    ) as cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


def test_a_hundred_items_on_two_worker_processes(client, sim):
    sim.fail_when("Document 37", Fault.unauthorized())
    me = (os.getpid(), threading.get_ident())
    ended, stream = [], Recorder()
    executor = client.get_executor(pure=False)
    model = Model("claude-haiku-4-5", api_key="sk-dummy", base_url=sim.url)
    pool = Pool(
        Skill(model=model, prompt="Summarise: {text}"),
        [{"text": f"Document {i}"} for i in range(100)],
        max_flows=8, executor=executor, progress=stream,
        on_item_done=lambda rec: ended.append((os.getpid(), threading.get_ident())),
    )
    results = pool.run()

    expected = [f"Summary: Summarise: Document {i}" for i in range(100)]
    expected[37] = None
    assert results == expected
    failed = pool.records[37]
    assert failed.status == FAILED and failed.error_type == "AuthenticationError"
    assert failed.error.status == 401 and "Traceback" in failed.traceback
    assert pool.status[DONE] == 99 and pool.usage.total_tokens > 0
    assert len(ended) == 100 and set(ended) == {me}
    assert stream.writers == {me} and "100/100" in stream.text
    assert sim.stats.requests == 100 and sim.stats.peak_concurrency <= 8

    pids = set(Pool(where, [{}] * 20, max_flows=8, executor=executor).run())
    assert len(pids) == 2 and os.getpid() not in pids
    assert executor.submit(pow, 2, 10).result() == 1024, "the pool must not shut it down"


def test_the_readme_example_uses_each_workers_own_key(client, sim, monkeypatch):
    # The caller has a key of its own (Model needs one to be built); the simulator accepts
    # only the workers', so every success proves the key was read on the worker.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-caller")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", sim.url)
    sim.require_key = WORKER_KEY
    summaries, failed = summarise(["First text.", "Second text."], client, max_flows=4)
    assert summaries == ["Summary: Summarise in one sentence: First text.",
                         "Summary: Summarise in one sentence: Second text."]
    assert failed == 0


def test_a_chain_with_a_tool_runs_on_the_cluster(client, sim):
    sim.fail_when("Page 3", Fault.unauthorized())
    model = Model("claude-haiku-4-5", api_key="sk-dummy", base_url=sim.url)
    chain = Chain([(convertToMD(), "md", {"input": "html"}),
                   Skill(model=model, prompt="Summarise: {md}")])
    items = [{"html": f"<html><body><main><p>Page {i}</p></main></body></html>"}
             for i in range(6)]
    pool = Pool(chain, items, max_flows=4, executor=client.get_executor(pure=False))
    results = pool.run()
    assert results[:3] == [f"Summary: Summarise: Page {i}" for i in range(3)]
    err = pool.records[3].error
    # ChainStepError does not survive pickling: it comes back described, not lost.
    assert "ChainStepError" in (type(err).__name__, getattr(err, "type_name", None))
    assert "AuthenticationError" in str(err)


def test_the_readme_shows_the_tested_example():
    readme = Path(__file__).parent.parent / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    example = (Path(__file__).parent / "docs_examples" / "dask_pool.py").read_text()
    if "# summarise_on_dask.py" not in text:
        pytest.skip("README has no Dask section yet")
    assert example.strip() in text

