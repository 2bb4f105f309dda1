"""Wire fixes found by holding our code against the official SDKs and real servers:
Gemini errors classified by google.rpc details, proxies' retry hints, Anthropic's context
stop reason, and the model-family table of sampling settings."""

import datetime as dt
import json
import logging
import pathlib

import pytest

from yait_aichain import Model
from yait_aichain.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    InvalidResponseError,
    RateLimitError,
)
from yait_aichain.models import RetryPolicy
from yait_aichain.models._families import FAMILIES, family_for
from yait_aichain.models._status import error_for_response, parse_duration, parse_retry_after
from yait_aichain.models.providers import ADAPTERS, TEXT, OutputSpec
from yait_aichain.models.providers._gemini import retry_delay
from yait_aichain.testing import Fault, Simulator

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "providers"
POLICY = RetryPolicy()
QUOTA = "You exceeded your current quota, please check your plan and billing details."


def gemini_error(code, status, message, *details):
    return json.dumps({"error": {"code": code, "message": message, "status": status,
                                 "details": list(details)}}).encode()


def quota_failure(quota_id, metric="generativelanguage.googleapis.com/generate_content_"
                  "free_tier_requests"):
    return {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaMetric": metric, "quotaId": quota_id, "quotaValue": "10"}]}


def retry_info(delay):
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def error_info(reason):
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
            "domain": "googleapis.com"}


def gemini(status, body):
    return error_for_response(status, {}, body, provider="gemini", model="gemini-2.5-flash",
                              error_details=ADAPTERS["gemini"].error_details)


# -- Gemini: classified by details, not prose ---------------------------------------------

def test_gemini_per_minute_quota_is_a_rate_limit_retried_after_retry_info():
    err = gemini(429, (FIXTURES / "gemini_error_429.json").read_bytes())
    assert type(err) is RateLimitError
    assert err.retry_after == pytest.approx(45.837906927)
    assert POLICY.should_retry(err)


@pytest.mark.parametrize("quota_id", [
    "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
    "GenerateContentInputTokensPerModelPerMinute-FreeTier",
    "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
])
def test_every_windowed_quota_is_a_rate_limit(quota_id):
    err = gemini(429, gemini_error(429, "RESOURCE_EXHAUSTED", QUOTA, quota_failure(quota_id),
                                   retry_info("2s")))
    assert type(err) is RateLimitError and err.retry_after == 2.0


def test_per_day_quota_without_retry_info_waits_until_it_resets_so_fails_fast():
    body = json.loads(gemini_error(429, "RESOURCE_EXHAUSTED", QUOTA,
                                   quota_failure("GenerateRequestsPerDayPerProjectPerModel")))
    noon_pacific = dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.timezone.utc)
    assert retry_delay(body, now=noon_pacific) == pytest.approx(12 * 3600, abs=3600)
    err = gemini(429, json.dumps(body).encode())
    assert type(err) is RateLimitError and err.retry_after is not None
    # Hours away: beyond the cap, so the item fails at once instead of retrying all day.
    if err.retry_after > POLICY.max_retry_after:
        assert not POLICY.should_retry(err)


@pytest.mark.parametrize("body", [
    gemini_error(429, "RESOURCE_EXHAUSTED", QUOTA, error_info("BILLING_DISABLED")),
    gemini_error(429, "RESOURCE_EXHAUSTED", "Your prepayment credits are depleted. Please "
                 "go to AI Studio to manage your project and billing."),
    gemini_error(403, "PERMISSION_DENIED", "Billing is not enabled for this project.",
                 error_info("BILLING_NOT_ENABLED")),
])
def test_only_a_billing_state_is_insufficient_credits(body):
    status = json.loads(body)["error"]["code"]
    err = gemini(status, body)
    assert type(err) is InsufficientCreditsError and not POLICY.should_retry(err)


def test_gemini_bad_key_is_an_authentication_error():
    body = gemini_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API "
                        "key.", error_info("API_KEY_INVALID"))
    err = gemini(400, body)
    assert type(err) is AuthenticationError and not POLICY.should_retry(err)


def test_openai_quota_phrase_is_still_billing():
    body = json.dumps({"error": {"message": QUOTA, "type": "insufficient_quota",
                                 "code": "insufficient_quota"}}).encode()
    err = error_for_response(429, {}, body, provider="openai", model="gpt-4o")
    assert type(err) is InsufficientCreditsError


def test_real_gemini_429_is_retried_by_model_until_done():
    body = json.loads((FIXTURES / "gemini_error_429.json").read_text())
    body["error"]["details"][2]["retryDelay"] = "0.15s"
    with Simulator() as sim:
        sim.fail_next(Fault.status(429, body=body), times=2)
        model = Model("gemini-2.5-flash", api_key="k", base_url=sim.url)
        gen = model.generate("hello")
        times = [r.time for r in sim.requests_log]
    assert gen.output.startswith("Summary:") and gen.attempts == 3
    assert all(b - a >= 0.15 for a, b in zip(times, times[1:], strict=False))


# -- retry hints from proxies -------------------------------------------------------------

NOW = 1_800_000_000.0


@pytest.mark.parametrize("headers, expected", [
    ({"llm_provider-retry-after": "7"}, 7.0),  # LiteLLM proxy: provider header, prefixed
    ({"llm_provider-retry-after-ms": "2500"}, 2.5),
    ({"x-ms-retry-after-ms": "1200"}, 1.2),  # Azure
    ({"X-Ms-Retry-After-Ms": "1200"}, 1.2),
    ({"retry-after-ms": "300", "llm_provider-retry-after": "9"}, 0.3),
    ({"retry-after": "4", "llm_provider-retry-after": "9"}, 4.0),
    ({"llm_provider-retry-after": "junk"}, None),
    ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1.5s"}, 1.5),
    ({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"}, 360.0),
    ({"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "9s"}, None),
    ({"llm_provider-x-ratelimit-remaining-requests": "0",
      "llm_provider-x-ratelimit-reset-requests": "20ms"}, 0.02),
    ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int((NOW + 3) * 1000))}, 3.0),
    ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int((NOW - 3) * 1000))}, None),
])
def test_proxy_hint_headers(headers, expected):
    got = parse_retry_after(headers, now=NOW)
    assert got == (None if expected is None else pytest.approx(expected, abs=0.01))


@pytest.mark.parametrize("text, seconds", [
    ("1s", 1.0), ("6m0s", 360.0), ("1h2m3.5s", 3723.5), ("20ms", 0.02), ("0.5s", 0.5),
    ("", None), ("soon", None), ("5", None), ("1s junk", None), ("1" + "0" * 400 + "s", None),
])
def test_openai_duration_format(text, seconds):
    assert parse_duration(text) == seconds


def test_proxy_hint_over_the_cap_fails_fast():
    err = error_for_response(429, {"llm_provider-retry-after": "3600"}, b"{}",
                             provider="openai", model="m")
    assert err.retry_after == 3600 and not POLICY.should_retry(err)


def test_litellm_429_is_retried_after_its_hint():
    with Simulator() as sim:
        sim.fail_next(Fault.status(429, headers={"llm_provider-retry-after": "0.2"}, body={
            "error": {"message": "litellm.RateLimitError: rate limited", "type": "None",
                      "param": None, "code": "429"}}), times=3)
        # Without the hint the first backoff steps are 0.25-0.5 s, 0.5-1 s: no ordering
        # would hold. With it, each retry comes 0.2 s (plus a little jitter) later.
        model = Model("gpt-4o-mini", api_key="k", base_url=sim.openai_base_url,
                      retry=RetryPolicy(backoff_initial=0.01))
        gen = model.generate("hi")
        times = [r.time for r in sim.requests_log]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert gen.attempts == 4 and len(gaps) == 3
    assert all(0.2 <= g < 0.4 for g in gaps), gaps


# -- Anthropic: the context window cut the answer off ------------------------------------

def anthropic_reply(text, stop):
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": text}], "stop_reason": stop,
            "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 5}}


def test_context_window_exceeded_with_cut_json_is_truncated():
    with pytest.raises(InvalidResponseError) as info:
        ADAPTERS["anthropic"].parse_response(
            anthropic_reply('{"a": [1, 2', "model_context_window_exceeded"),
            OutputSpec(type="json"))
    assert info.value.reason == "truncated"


def test_context_window_exceeded_text_is_returned_with_its_reason():
    parsed = ADAPTERS["anthropic"].parse_response(
        anthropic_reply("partial answer", "model_context_window_exceeded"), TEXT)
    assert parsed.output == "partial answer"
    assert parsed.finish_reason == "model_context_window_exceeded"


# -- the model-family table ---------------------------------------------------------------

ALL = {"temperature": 0.2, "top_p": 0.9, "top_k": 40, "max_tokens": 100}
SAMPLING = {"temperature", "top_p", "top_k"}


@pytest.mark.parametrize("provider, model, sent", [
    ("openai", "gpt-5", set()),
    ("openai", "gpt-5-mini", set()),
    ("openai", "gpt-5.1-2025-11-13", set()),
    ("openai", "gpt-6-luna", set()),
    ("openai", "o3", set()),
    ("openai", "o4-mini", set()),
    ("openai", "gpt-5-chat-latest", {"temperature", "top_p"}),
    ("openai", "gpt-4.1", {"temperature", "top_p"}),
    ("openai", "gpt-4o-mini", {"temperature", "top_p"}),
    ("anthropic", "claude-sonnet-4-6", set()),
    ("anthropic", "claude-haiku-5-5", set()),
    ("gemini", "gemini-2.5-flash", {"temperature", "topP", "topK"}),
    ("openai-compatible", "o3-local", {"temperature", "top_p", "top_k"}),
])
def test_sampling_settings_follow_the_family_table(provider, model, sent):
    body = ADAPTERS[provider].build_request(model, [{"role": "user", "parts": ["hi"]}], TEXT,
                                            ALL).body
    flat = {**body, **body.get("generationConfig", {})}
    assert {k for k in flat if k in SAMPLING | {"topP", "topK"}} == sent


def test_a_dropped_setting_is_logged_once(caplog):
    caplog.set_level(logging.INFO, logger="yait_aichain.models")
    for _ in range(3):
        ADAPTERS["openai"].build_request("gpt-5-nano-logtest", [{"role": "user", "parts": ["x"]}],
                                         TEXT, {"temperature": 0.3})
    notes = [r.getMessage() for r in caplog.records if "gpt-5-nano-logtest" in r.getMessage()]
    assert len(notes) == 1 and "temperature" in notes[0]


def test_every_provider_has_a_catch_all_family_row():
    for provider in ADAPTERS:
        assert family_for(provider, "any-new-model-name") is not None
    assert all(f.why for f in FAMILIES)


# -- google-genai's base URL variable -----------------------------------------------------

def test_model_honours_google_gemini_base_url(monkeypatch):
    monkeypatch.delenv("GEMINI_BASE_URL", raising=False)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9/")
    assert Model("gemini-2.5-flash", api_key="k").base_url == "http://127.0.0.1:9"
    monkeypatch.setenv("GEMINI_BASE_URL", "http://127.0.0.1:8")
    assert Model("gemini-2.5-flash", api_key="k").base_url == "http://127.0.0.1:8"
