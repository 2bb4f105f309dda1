"""Model construction and generate() over mocked HTTP (``responses``)."""

import json
import pickle

import pytest
import responses

from yait_aichain.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    InvalidResponseError,
    MissingAPIKeyError,
    NetworkError,
    ServerError,
)
from yait_aichain.models import Model, RetryPolicy, Timeout, Usage

from .conftest import CANARY

ANTHROPIC_OK = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "Hi there"}], "stop_reason": "end_turn",
    "usage": {"input_tokens": 10, "output_tokens": 5},
}
OPENAI_OK = {
    "id": "c1", "object": "chat.completion", "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
}
GEMINI_OK = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6},
}


@pytest.mark.parametrize(
    "name, kwargs, provider",
    [
        ("claude-sonnet-4-6", {}, "anthropic"),
        ("gpt-4o-mini", {}, "openai"),
        ("o3-mini", {}, "openai"),
        ("chatgpt-4o-latest", {}, "openai"),
        ("gemini-2.5-flash", {}, "gemini"),
        ("anthropic/my-finetune", {}, "anthropic"),
        ("llama3.1", {"provider": "ollama"}, "openai-compatible"),
        ("meta-llama/Llama-3-8B", {"provider": "vllm"}, "openai-compatible"),
        ("ollama/llama3.1", {}, "openai-compatible"),
    ],
)
def test_provider_inference(name, kwargs, provider):
    model = Model(name, api_key="k", **kwargs)
    assert model.provider == provider
    assert "/" not in model.name or kwargs.get("provider") == "vllm"


def test_unknown_name_says_how_to_fix():
    with pytest.raises(ConfigurationError, match="provider="):
        Model("mystery-model", api_key="k")


@pytest.mark.parametrize(
    "name, var",
    [("claude-sonnet-4-6", "ANTHROPIC_API_KEY"), ("gpt-4o", "OPENAI_API_KEY"), ("gemini-2.5-pro", "GEMINI_API_KEY")],
)
def test_missing_key_names_the_variable(name, var):
    with pytest.raises(MissingAPIKeyError, match=var) as info:
        Model(name)
    assert info.value.env_var == var


def test_keys_and_base_urls_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("GOOGLE_API_KEY", "g-key")
    model = Model("claude-sonnet-4-6", api_key=None)
    assert model.base_url == "http://127.0.0.1:9"
    assert model._key.get() == "env-key"
    assert Model("gemini-2.5-flash")._key.get() == "g-key"


def test_local_servers_need_no_key_and_default_their_url():
    assert Model("llama3.1", provider="ollama").base_url == "http://localhost:11434/v1"
    assert Model("x", provider="lmstudio").base_url == "http://localhost:1234/v1"
    with pytest.raises(ConfigurationError, match="base_url"):
        Model("x", provider="local")
    assert Model("x", provider="local", base_url="http://127.0.0.1:8080/v1/").base_url == "http://127.0.0.1:8080/v1"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temprature": 0.5}, "temprature"),
        ({"options": {"max_tokens": "many"}}, "max_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"client_options": {"proxy": {}}}, "proxy"),
        ({"max_retries": -1}, "max_retries"),
        ({"base_url": "ftp://x"}, "http"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        Model("gpt-4o", api_key="k", **kwargs)


def test_options_as_dict_or_keywords():
    model = Model("gpt-4o", {"temperature": 0.2}, api_key="k", max_tokens=50)
    assert model.temperature == 0.2 and model.max_tokens == 50


def test_repr_and_pickle_never_expose_the_key():
    model = Model("gpt-4o", api_key=CANARY)
    assert CANARY not in repr(model) and CANARY not in repr(vars(model))
    clone = pickle.loads(pickle.dumps(model))
    assert clone._key.get() == CANARY and clone.name == "gpt-4o"


@responses.activate
def test_anthropic_call_sends_key_in_header_and_prices_usage():
    responses.post("https://api.anthropic.com/v1/messages", json=ANTHROPIC_OK)
    model = Model("claude-sonnet-4-6", api_key=CANARY)
    gen = model.generate("Hello")
    assert gen.output == "Hi there" and gen.attempts == 1
    assert gen.usage == Usage(10, 5, 15, pytest.approx(10 / 1e6 * 3 + 5 / 1e6 * 15))
    sent = responses.calls[0].request
    assert sent.headers["x-api-key"] == CANARY and CANARY not in sent.url
    assert json.loads(sent.body)["messages"][0]["content"][0]["text"] == "Hello"


@responses.activate
def test_openai_and_gemini_calls():
    responses.post("https://api.openai.com/v1/chat/completions", json=OPENAI_OK)
    responses.post("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent", json=GEMINI_OK)
    assert Model("gpt-4o-mini", api_key="o").generate("x").output == "Hi"
    gen = Model("gemini-2.5-flash", api_key=CANARY).generate("x")
    assert gen.output == "Hi" and gen.usage.total_tokens == 6
    gem = responses.calls[1].request
    assert gem.headers["x-goog-api-key"] == CANARY and "key=" not in gem.url


@responses.activate
def test_unauthorized_is_one_request_and_keyless():
    responses.post("https://api.openai.com/v1/chat/completions", status=401,
                   json={"error": {"message": "Incorrect API key provided"}})
    with pytest.raises(AuthenticationError) as info:
        Model("gpt-4o", api_key=CANARY).generate("x")
    assert len(responses.calls) == 1
    assert CANARY not in str(info.value) and CANARY not in repr(info.value.args)
    assert info.value.provider == "openai" and info.value.model == "gpt-4o"


@responses.activate
def test_server_errors_are_retried_then_succeed(no_wait, sleeps):
    url = "https://api.openai.com/v1/chat/completions"
    responses.post(url, status=503, json={"error": {"message": "busy"}})
    responses.post(url, status=500, body="<html>boom</html>")
    responses.post(url, json=OPENAI_OK)
    gen = Model("gpt-4o", api_key="k", retry=no_wait).generate("x")
    assert gen.output == "Hi" and gen.attempts == 3 and len(sleeps) == 2


@responses.activate
def test_retries_run_out_with_the_last_error(sleeps):
    url = "https://api.openai.com/v1/chat/completions"
    responses.post(url, status=503, json={"error": {"message": "busy"}})
    with pytest.raises(ServerError) as info:
        Model("gpt-4o", api_key="k", retry=RetryPolicy(max_retries=2, sleep=sleeps)).generate("x")
    assert info.value.attempts == 3 and len(responses.calls) == 3


@responses.activate
def test_redirects_are_not_followed():
    responses.post("https://api.openai.com/v1/chat/completions", status=302,
                   headers={"Location": "https://evil.example/steal"})
    with pytest.raises(APIError, match="unexpected redirect") as info:
        Model("gpt-4o", api_key=CANARY).generate("x")
    assert info.value.status == 302 and len(responses.calls) == 1


@responses.activate
def test_non_json_2xx_is_an_invalid_response_not_a_network_error(no_wait):
    url = "https://api.openai.com/v1/chat/completions"
    responses.post(url, body='{"choices": [')
    with pytest.raises(InvalidResponseError) as info:
        Model("gpt-4o", api_key="k", retry=RetryPolicy(max_retries=1, sleep=lambda s: None)).generate("x")
    assert info.value.reason == "malformed" and not isinstance(info.value, NetworkError)


@responses.activate
def test_empty_choices_never_become_an_empty_string():
    responses.post("https://api.openai.com/v1/chat/completions", json={**OPENAI_OK, "choices": []})
    with pytest.raises(InvalidResponseError):
        Model("gpt-4o", api_key="k").generate("x")


@responses.activate
def test_connection_errors_are_translated(no_wait):
    import requests

    responses.post("https://api.openai.com/v1/chat/completions", body=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(NetworkError) as info:
        Model("gpt-4o", api_key="k", retry=RetryPolicy(max_retries=1, sleep=lambda s: None)).generate("x")
    assert info.value.attempts == 2 and info.value.__cause__ is None or not isinstance(info.value.__cause__, requests.RequestException)


@responses.activate
def test_json_output_and_per_call_options():
    body = {**OPENAI_OK, "choices": [{"index": 0, "message": {"role": "assistant", "content": '{"a": 1}'}, "finish_reason": "stop"}]}
    responses.post("https://api.openai.com/v1/chat/completions", json=body)
    gen = Model("gpt-4o", api_key="k").generate("x", output="json", temperature=0)
    assert gen.output == {"a": 1}
    sent = json.loads(responses.calls[0].request.body)
    assert sent["response_format"] == {"type": "json_object"} and sent["temperature"] == 0


def test_timeout_coercion():
    assert Model("gpt-4o", api_key="k", timeout=2).timeout == Timeout(total=2.0, connect=2.0)
    assert Model("gpt-4o", api_key="k", timeout=Timeout(30, connect=1)).timeout.connect == 1
    assert Model("gpt-4o", api_key="k", timeout=None).timeout.total is None


@responses.activate
def test_build_request_renders_what_generate_would_send_without_sending():
    model = Model("gpt-4o", api_key=CANARY, temperature=1)
    wire = model.build_request("Hello", output="json", temperature=0)
    assert wire.path == "/chat/completions" and not responses.calls
    assert wire.body["response_format"] == {"type": "json_object"} and wire.body["temperature"] == 0
    assert wire.body["messages"][-1]["content"] == "Hello" and CANARY not in json.dumps(wire.headers)
    with pytest.raises(ConfigurationError, match="unknown generation option"):
        model.build_request("Hello", temprature=0)
    with pytest.raises(ConfigurationError, match="max_tokens"):
        model.build_request("Hello", max_tokens=-1)


def test_parse_response_reads_and_prices_a_body_as_generate_does():
    model = Model("claude-sonnet-4-6", api_key="k", price=(2, 10))
    gen = model.parse_response(ANTHROPIC_OK)
    assert gen.output == "Hi there" and gen.attempts == 1 and gen.finish_reason == "end_turn"
    assert gen.usage.cost == pytest.approx((10 * 2 + 5 * 10) / 1e6)
    batch = model.parse_response(json.dumps(ANTHROPIC_OK).encode(), batch=True)
    assert batch.usage.cost == pytest.approx(gen.usage.cost / 2)
    with pytest.raises(InvalidResponseError) as info:
        model.parse_response(b"<html>")
    assert info.value.reason == "malformed" and info.value.provider == "anthropic"
    with pytest.raises(InvalidResponseError):
        model.parse_response([ANTHROPIC_OK])


@responses.activate
def test_send_is_one_authenticated_call_retried_and_scrubbed(no_wait, sleeps):
    url = "https://api.anthropic.com/v1/messages/batches"
    responses.post(url, status=503, json={"error": {"message": "busy"}})
    responses.post(url, json={"id": "b1", "echo": CANARY})
    model = Model("claude-sonnet-4-6", api_key=CANARY, retry=no_wait)
    body = model.send("POST", "/v1/messages/batches", b"{}",
                      headers={"Content-Type": "application/x-ndjson"})
    assert json.loads(body) == {"id": "b1", "echo": "***"} and len(sleeps) == 1
    sent = responses.calls[-1].request
    assert sent.headers["x-api-key"] == CANARY and sent.headers["Content-Type"] == "application/x-ndjson"
    responses.get(url + "/gone", status=404, json={"error": {"message": f"no {CANARY}"}})
    with pytest.raises(APIError) as info:
        model.send("GET", "/v1/messages/batches/gone")
    assert info.value.status == 404 and info.value.attempts == 1 and CANARY not in str(info.value)
    responses.get(url + "/moved", status=302, headers={"Location": "https://evil.example/"})
    with pytest.raises(InvalidResponseError, match="unexpected redirect") as info:
        model.send("GET", "/v1/messages/batches/moved")
    assert info.value.reason == "redirect"
