"""BatchJob against the simulator's three Batch APIs: rendering, limits, polling, results."""

import time

import pytest

from yait_aichain.batch import BatchJob, BatchRequest, Journal
from yait_aichain.batch._providers import BACKENDS
from yait_aichain.errors import (
    BatchCancelledError,
    BatchExpiredError,
    ConfigurationError,
    InvalidRequestError,
    RequestTooLargeError,
)
from yait_aichain.models import Model

MODELS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4o-mini", "gemini": "gemini-2.5-flash"}
LIVE_PATHS = ("/v1/messages", "/v1/chat/completions")


def _requests(model, n, text="doc"):
    return [BatchRequest(f"i{i}", model, [{"role": "user", "parts": [
        {"type": "text", "text": f"{text} {i}"}]}]) for i in range(n)]


class Ticks:
    """A sleep that never waits: it records the wait and lets the batches finish."""

    def __init__(self, sim, after=1):
        self.sim, self.after, self.calls = sim, after, []

    def __call__(self, seconds):
        self.calls.append(seconds)
        if len(self.calls) >= self.after:
            self.sim.batches.finish_all()


@pytest.mark.parametrize("provider", sorted(MODELS))
def test_each_provider_returns_every_result_by_key_at_batch_prices(sim_env, provider):
    sim_env.batches.delay = 3600
    model = Model(MODELS[provider])
    ticks = Ticks(sim_env, after=2)
    seen = []
    job = BatchJob(_requests(model, 12), poll_interval=30, sleep=ticks, on_progress=seen.append)
    assert len(job.submit()) == 1
    results = job.wait()
    assert list(results) == [f"i{i}" for i in range(12)]
    assert results["i7"].output == "Summary: doc 7" and results["i7"].error is None
    assert ticks.calls == [30.0, 30.0]  # polled every poll_interval, never really slept
    assert provider in seen[0] and len(seen) == 3
    live = model.generate([{"role": "user", "parts": ["doc 7"]}]).usage
    assert results["i7"].usage.input_tokens == live.input_tokens
    assert results["i7"].usage.cost == pytest.approx(live.cost / 2)
    paths = [r.path for r in sim_env.requests_log]
    assert sum(p in LIVE_PATHS or p.endswith(":generateContent") for p in paths) == 1


@pytest.mark.parametrize("provider", sorted(MODELS))
def test_the_batch_holds_exactly_the_live_request_body(sim_env, provider):
    model = Model(MODELS[provider], temperature=0.3, max_tokens=77)
    request = _requests(model, 1)[0]
    BatchJob([request], poll_interval=1, sleep=lambda s: None).submit()
    model.generate(request.messages)
    sim_batch = sim_env.batches.list()[0]
    live_body = sim_env.requests_log[-1].body
    assert sim_batch.requests[0][1] == live_body


def test_requests_are_split_by_the_providers_count_and_size_limits(sim_env, monkeypatch):
    backend = BACKENDS["anthropic"]
    monkeypatch.setattr(backend, "max_requests", 4)
    model = Model("claude-sonnet-4-6")
    job = BatchJob(_requests(model, 10), poll_interval=1, sleep=lambda s: None)
    assert [len(s.keys) for s in job.submit()] == [4, 4, 2]
    assert len(job.wait()) == 10
    monkeypatch.setattr(backend, "max_requests", 100)
    monkeypatch.setattr(backend, "max_bytes", 600)
    big = _requests(model, 3, text="x " * 200)
    job = BatchJob(big + [BatchRequest("huge", model, [{"role": "user", "parts": [
        {"type": "text", "text": "y" * 5000}]}])], poll_interval=1, sleep=lambda s: None)
    assert [len(s.keys) for s in job.submit()] == [1, 1, 1]
    results = job.wait()
    assert isinstance(results["huge"].error, RequestTooLargeError)
    assert all(results[f"i{i}"].error is None for i in range(3))


def test_per_request_errors_expiry_and_cancellation_are_typed(sim_env):
    model = Model("gpt-4o-mini")
    sim_env.batches.fail_when("doc 2", status=400, message="bad request")
    job = BatchJob(_requests(model, 4), poll_interval=1, sleep=lambda s: None)
    job.submit()
    results = job.wait()
    assert isinstance(results["i2"].error, InvalidRequestError)
    assert results["i1"].error is None
    sim_env.batches.expire = True
    job = BatchJob(_requests(model, 2, "other"), poll_interval=1, sleep=lambda s: None)
    job.submit()
    assert all(isinstance(r.error, BatchExpiredError) for r in job.wait().values())
    sim_env.batches.expire, sim_env.batches.delay = False, 3600
    job = BatchJob(_requests(Model("claude-sonnet-4-6"), 2, "third"), poll_interval=1,
                   sleep=lambda s: None)
    job.submit()
    job.cancel()
    results = job.wait()
    assert all(isinstance(r.error, BatchCancelledError) for r in results.values())
    assert results["i0"].error.batch_id == job.batch_ids[0]


def test_a_journal_re_attaches_instead_of_submitting_again(sim_env, tmp_path):
    sim_env.batches.delay = 3600
    model = Model("claude-sonnet-4-6")
    path = tmp_path / "job.batches"
    first = BatchJob(_requests(model, 5), poll_interval=1, journal=Journal(path))
    first.submit()
    assert sim_env.batches.created == 1
    again = BatchJob(_requests(model, 5), poll_interval=1, journal=Journal(path),
                     sleep=Ticks(sim_env))
    again.submit()
    assert sim_env.batches.created == 1 and again.batch_ids == first.batch_ids
    assert again.wait()["i4"].output == "Summary: doc 4"
    changed = BatchJob(_requests(model, 5, "new"), poll_interval=1, journal=Journal(path))
    changed.submit()
    assert sim_env.batches.created == 2  # other requests: a batch of their own
    assert "sk-" not in path.read_text() and "doc" not in path.read_text()
    journal = Journal(path)
    assert sorted(e.batch_id for e in journal.entries()) == sorted(
        first.batch_ids + changed.batch_ids)
    journal.clear()
    assert journal.entries() == [] and not path.exists() and Journal(path).entries() == []
    resubmitted = BatchJob(_requests(model, 5), poll_interval=1, journal=Journal(path))
    resubmitted.submit()
    assert sim_env.batches.created == 3  # a cleared journal forgets: submitted afresh


def test_identical_requests_are_sent_once_and_share_the_answer(sim_env):
    model = Model("claude-sonnet-4-6")
    same = [{"role": "user", "parts": [{"type": "text", "text": "same"}]}]
    job = BatchJob([BatchRequest(k, model, same) for k in ("a", "b", "c")], poll_interval=1,
                   sleep=lambda s: None)
    job.submit()
    results = job.wait()
    assert len(sim_env.batches.list()[0].requests) == 1
    assert [r.output for r in results.values()] == ["Summary: same"] * 3
    assert [r.shared for r in results.values()] == [False, True, True]
    assert results["b"].usage.cost is None or results["b"].usage.cost == 0


def test_providers_without_a_batch_api_and_bad_settings_are_refused(sim_env):
    local = Model("llama3", provider="ollama", base_url=sim_env.openai_base_url)
    with pytest.raises(ConfigurationError, match="no Batch API"):
        BatchJob(_requests(local, 1))
    with pytest.raises(ConfigurationError, match="poll_interval"):
        BatchJob([], poll_interval=0)
    model = Model("gpt-4o-mini")
    with pytest.raises(ConfigurationError, match="unique"):
        BatchJob(_requests(model, 1) * 2)


def test_a_batch_that_failed_as_a_whole_ends_its_requests_instead_of_polling_on(
        sim_env, monkeypatch):
    # A whole-batch BatchError (OpenAI validation, Gemini BATCH_STATE_FAILED) has status 0:
    # it is final, not a transient poll error to wait out until the deadline.
    backend = BACKENDS["openai"]

    def failed(http, batch_id, poll):
        raise backend._failed(batch_id, "failed validation: bad file")

    monkeypatch.setattr(backend, "results", failed)
    polls = []
    job = BatchJob(_requests(Model(MODELS["openai"]), 3), poll_interval=1,
                   sleep=lambda s: (polls.append(s), sim_env.batches.finish_all()))
    job.submit()
    results = job.wait(deadline=time.monotonic() + 5)
    assert sorted(results) == ["i0", "i1", "i2"]
    assert all("failed validation: bad file" in str(r.error) for r in results.values())
    assert len(polls) < 5  # not polled again and again
