"""The simulator speaks what the real services speak: paths, auth headers, error bodies,
rate-limit headers, and per-key limits enforced with each provider's real 429."""

import datetime as dt
import time

import pytest
import requests

from yait_aichain import DONE, Model, Pool, Skill
from yait_aichain.errors import ConfigurationError
from yait_aichain.models._status import parse_duration
from yait_aichain.testing import Simulator

MESSAGES = {"role": "user", "content": "hello there"}


def post(sim, provider, key="k", max_tokens=None, path=None, headers=None, **extra):
    if provider == "anthropic":
        body = {"model": "claude-x", "max_tokens": max_tokens or 10, "messages": [MESSAGES]}
        hdrs = {"x-api-key": key, "anthropic-version": "2026-10-21"}
        url = sim.url + "/v1/messages"
    elif provider == "openai":
        body = {"model": "gpt-x", "messages": [MESSAGES]}
        if max_tokens:
            body["max_completion_tokens"] = max_tokens
        hdrs = {"Authorization": f"Bearer {key}"}
        url = sim.url + "/v1/chat/completions"
    else:
        body = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}
        if max_tokens:
            body["generationConfig"] = {"maxOutputTokens": max_tokens}
        hdrs = {"x-goog-api-key": key}
        url = sim.url + (path or "/v1/models/gemini-x:generateContent")
    body.update(extra)
    return requests.post(url, json=body, headers={**hdrs, **(headers or {})}, timeout=5)


# -- the Gemini Pool at 60 requests per minute --------------------------------------------

def test_gemini_pool_of_100_at_60_rpm_ends_all_done():
    # A 0.5 s "minute": the same arithmetic as a real one (60 requests, then 429s with
    # Gemini's real body and RetryInfo until the window resets), 120 times faster.
    with Simulator(rpm=60, rate_window=0.5) as sim:
        skill = Skill(model=Model("gemini-2.5-flash", api_key="k", base_url=sim.url),
                      prompt="Summarise: {text}")
        pool = Pool(skill, items=[{"text": f"doc {i}"} for i in range(100)], max_flows=20)
        started = time.monotonic()
        results = pool.run()
        elapsed = time.monotonic() - started
        log = sim.requests_log
    assert pool.status[DONE] == 100
    assert results == [f"Summary: Summarise: doc {i}" for i in range(100)]
    refused = [r for r in log if r.status == 429]
    assert refused, "the limit was never reached: the test proves nothing"
    assert sum(r.status == 200 for r in log) == 100
    # 100 requests at 60 per window need a second window: the limit held.
    assert 0.5 <= elapsed < 15


def test_gemini_429_from_the_limit_is_the_real_body():
    with Simulator(rpm=1, rate_window=30) as sim:
        assert post(sim, "gemini").status_code == 200
        r = post(sim, "gemini")
    assert r.status_code == 429 and "retry-after" not in r.headers
    err = r.json()["error"]
    assert err["status"] == "RESOURCE_EXHAUSTED" and err["code"] == 429
    assert err["message"].startswith("You exceeded your current quota, please check your plan")
    details = {d["@type"].rsplit(".", 1)[-1]: d for d in err["details"]}
    violation = details["QuotaFailure"]["violations"][0]
    assert violation["quotaId"] == "GenerateRequestsPerMinutePerProjectPerModel"
    assert violation["quotaValue"] == "1"
    assert 29 < float(details["RetryInfo"]["retryDelay"].rstrip("s")) <= 30
    assert not any(k.startswith(("x-ratelimit", "anthropic-ratelimit")) for k in r.headers)


@pytest.mark.parametrize("provider, kind", [("openai", "rate_limit_exceeded"),
                                            ("anthropic", "rate_limit_error")])
def test_openai_and_anthropic_429_from_the_limit(provider, kind):
    with Simulator(rpm=1, rate_window=5) as sim:
        assert post(sim, provider).status_code == 200
        r = post(sim, provider)
        other_key = post(sim, provider, key="other")
    assert r.status_code == 429 and r.headers["retry-after"] in ("5", "4")
    body = r.json()
    assert (body["error"]["code"] if provider == "openai" else body["error"]["type"]) == kind
    remaining = ("x-ratelimit-remaining-requests" if provider == "openai"
                 else "anthropic-ratelimit-requests-remaining")
    assert r.headers[remaining] == "0"
    assert other_key.status_code == 200  # keys are counted apart


def test_tokens_per_minute_counts_input_and_requested_output_then_settles():
    with Simulator(tpm=1000, rate_window=30) as sim:
        assert post(sim, "openai", max_tokens=900).status_code == 200
        # 900 asked for, 2 or so used: the window is charged what was used.
        r = post(sim, "openai", max_tokens=900)
        assert r.status_code == 200
        assert int(r.headers["x-ratelimit-remaining-tokens"]) > 900
        # Now 900 + 900 asked together exceed 1000 only if the first was not settled.
        assert post(sim, "openai", max_tokens=990).status_code == 429
        r = post(sim, "gemini", max_tokens=2000)  # another provider, its own budget
    assert r.status_code == 200  # alone in an empty window, even a big one is served


# -- headers on every response ------------------------------------------------------------

def test_openai_headers_on_every_response_use_the_duration_format():
    with Simulator() as sim:
        r = post(sim, "openai")
    assert r.headers["x-ratelimit-limit-requests"] == "10000"
    assert int(r.headers["x-ratelimit-remaining-requests"]) == 9999
    assert int(r.headers["x-ratelimit-limit-tokens"]) >= int(
        r.headers["x-ratelimit-remaining-tokens"])
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        assert 59 < parse_duration(r.headers[name]) <= 60


def test_anthropic_headers_use_rfc3339_resets():
    with Simulator(rpm=50, tpm=40_000) as sim:
        r = post(sim, "anthropic")
    now = dt.datetime.now(dt.timezone.utc)
    for family in ("requests", "tokens", "input-tokens", "output-tokens"):
        assert int(r.headers[f"anthropic-ratelimit-{family}-limit"]) in (50, 40_000)
        assert int(r.headers[f"anthropic-ratelimit-{family}-remaining"]) >= 0
        reset = dt.datetime.strptime(r.headers[f"anthropic-ratelimit-{family}-reset"],
                                     "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        assert 58 <= (reset - now).total_seconds() <= 62
    assert r.headers["anthropic-ratelimit-requests-remaining"] == "49"


def test_gemini_sends_no_rate_limit_headers():
    with Simulator(rpm=10) as sim:
        r = post(sim, "gemini")
    assert r.status_code == 200
    assert not [k for k in r.headers if "ratelimit" in k.lower()]


def test_limits_can_change_while_running_and_bad_values_are_refused():
    with Simulator() as sim:
        sim.set_limits(rpm=1, rate_window=10)
        assert sim.limits.rpm == 1 and sim.limits.window == 10
        assert [post(sim, "openai").status_code for _ in range(2)] == [200, 429]
        sim.set_limits()
        assert post(sim, "openai").status_code == 200
    for bad in ({"rpm": 0}, {"tpm": -1}, {"rpm": 1.5}, {"rate_window": 0},
                {"rate_window": float("inf")}):
        with pytest.raises(ConfigurationError):
            Simulator(**bad)


# -- paths and auth the official SDKs use -------------------------------------------------

def test_gemini_v1_and_v1beta_paths():
    with Simulator() as sim:
        for path in ("/v1/models/gemini-x:generateContent",
                     "/v1beta/models/gemini-x:generateContent"):
            r = post(sim, "gemini", path=path)
            assert r.status_code == 200 and r.json()["modelVersion"] == "gemini-x"
        assert post(sim, "gemini", path="/v2/models/g:generateContent").status_code == 404


def test_anthropic_key_in_bearer_or_x_api_key():
    with Simulator(require_key="right") as sim:
        bearer = requests.post(sim.url + "/v1/messages", timeout=5, json={
            "model": "c", "max_tokens": 5, "messages": [MESSAGES]}, headers={
            "Authorization": "Bearer right", "anthropic-version": "2026-10-21"})
        assert bearer.status_code == 200
        # Both sent: the real API uses x-api-key.
        both = post(sim, "anthropic", key="wrong", headers={"Authorization": "Bearer right"})
        assert both.status_code == 401


def test_strict_anthropic_version_rules():
    with Simulator(strict=True) as sim:
        r = post(sim, "anthropic", temperature=0.5)
        assert r.status_code == 400 and "temperature" in r.json()["error"]["message"]
        r = post(sim, "anthropic", top_k=5)
        assert r.status_code == 400 and "top_k" in r.json()["error"]["message"]
        old = post(sim, "anthropic", temperature=0.5, headers={"anthropic-version":
                                                                "2023-06-01"})
        assert old.status_code == 200
        bad = post(sim, "anthropic", headers={"anthropic-version": "2024-01-01"})
        assert bad.status_code == 400
