"""Prices: the maintained genai-prices data, the price= override, cache and batch rates."""

import pickle

import pytest
import responses

from yait_aichain.errors import ConfigurationError
from yait_aichain.models import Model, Price, Usage, registry


@pytest.mark.parametrize("name, provider, rates", [
    ("claude-sonnet-4-6", "anthropic", (3.0, 15.0, 0.3, 3.75)),
    ("claude-haiku-4-5", "anthropic", (1.0, 5.0, 0.1, 1.25)),
    ("gpt-5", "openai", (1.25, 10.0, 0.125, None)),
    ("o3", "openai", (2.0, 8.0, 0.5, None)),
    ("gpt-4o-mini", "openai", (0.15, 0.6, 0.075, None)),
    ("gemini-2.5-flash", "gemini", (0.3, 2.5, 0.03, None)),
])
def test_models_the_old_table_missed_are_priced_with_cache_rates(name, provider, rates):
    price = registry.price_for(name, provider)
    assert price is not None
    assert (price.input, price.output, price.cache_read, price.cache_write) == pytest.approx(rates)


@pytest.mark.parametrize("name", ["claude-sonnet-4-6", "gpt-5", "gemini-2.5-flash"])
def test_batch_rates_are_half_the_live_ones(name):
    price = registry.price_for(name)
    batch = price.for_batch()
    assert batch.input == pytest.approx(price.input / 2)
    assert batch.output == pytest.approx(price.output / 2)


def test_tiered_prices_follow_the_prompt_size():
    price = registry.price_for("gemini-2.5-pro")
    small = price.cost(Usage(100_000, 1000, 101_000))
    large = price.cost(Usage(300_000, 1000, 301_000))
    assert small == pytest.approx((100_000 * 1.25 + 1000 * 10) / 1e6)
    assert large == pytest.approx((300_000 * 2.5 + 1000 * 15) / 1e6)


def test_unknown_and_local_models_have_no_price():
    assert registry.price_for("claude-nonexistent-zz-9") is None
    assert registry.price_for("llama3", "openai-compatible") is None
    assert Model("llama3", provider="ollama").price is None


def test_cache_reads_and_writes_each_cost_their_own_rate():
    price = Price(3.0, 15.0, cache_read=0.3, cache_write=3.75)
    usage = Usage(10_000, 100, 10_100, cache_read_tokens=6_000, cache_write_tokens=3_000)
    expected = (1_000 * 3.0 + 6_000 * 0.3 + 3_000 * 3.75 + 100 * 15.0) / 1e6
    assert price.cost(usage) == pytest.approx(expected)
    # No cache rates: cached tokens are billed as plain input.
    assert Price(3.0, 15.0).cost(usage) == pytest.approx((10_000 * 3.0 + 100 * 15.0) / 1e6)


def test_price_override_wins_and_batch_halves_it():
    model = Model("claude-sonnet-4-6", api_key="k", price=(1.0, 2.0))
    assert model.price == Price(1.0, 2.0)
    assert model.price.for_batch() == Price(0.5, 1.0)
    full = Model("m", provider="ollama", price=(1, 2, 0.1, 1.25))
    assert full.price.cache_read == 0.1 and full.price.cache_write == 1.25
    own = Model("m", provider="ollama", price={"input": 1, "output": 2, "batch": (0.8, 1.6)})
    assert own.price.for_batch() == Price(0.8, 1.6)
    assert pickle.loads(pickle.dumps(model)).price == model.price


@pytest.mark.parametrize("bad", [(1.0,), (1, 2, 3), "cheap", (-1, 2), (1, True), {"inputs": 1},
                                 {"input": 1}])
def test_bad_prices_are_configuration_errors(bad):
    with pytest.raises(ConfigurationError, match="price"):
        Model("m", provider="ollama", price=bad)


ANTHROPIC_CACHED = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
    "usage": {"input_tokens": 50, "cache_creation_input_tokens": 2000,
              "cache_read_input_tokens": 8000, "output_tokens": 10},
}
OPENAI_CACHED = {
    "id": "c1", "object": "chat.completion", "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5000, "completion_tokens": 10, "total_tokens": 5010,
              "prompt_tokens_details": {"cached_tokens": 4096}},
}
GEMINI_CACHED = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]},
                    "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 3000, "cachedContentTokenCount": 2048,
                      "candidatesTokenCount": 10, "totalTokenCount": 3010},
}


@responses.activate
def test_each_provider_reports_cache_tokens_and_they_are_priced():
    responses.post("https://api.anthropic.com/v1/messages", json=ANTHROPIC_CACHED)
    responses.post("https://api.openai.com/v1/chat/completions", json=OPENAI_CACHED)
    responses.post("https://generativelanguage.googleapis.com/v1beta/models/"
                   "gemini-2.5-flash:generateContent", json=GEMINI_CACHED)
    claude = Model("claude-sonnet-4-6", api_key="k").generate("x").usage
    assert (claude.input_tokens, claude.cache_write_tokens, claude.cache_read_tokens) == (
        10_050, 2000, 8000)
    assert claude.cost == pytest.approx((50 * 3 + 2000 * 3.75 + 8000 * 0.3 + 10 * 15) / 1e6)
    gpt = Model("gpt-4o-mini", api_key="k").generate("x").usage
    assert (gpt.input_tokens, gpt.cache_read_tokens, gpt.cache_write_tokens) == (5000, 4096, 0)
    assert gpt.cost == pytest.approx((904 * 0.15 + 4096 * 0.075 + 10 * 0.6) / 1e6)
    gem = Model("gemini-2.5-flash", api_key="k").generate("x").usage
    assert (gem.input_tokens, gem.cache_read_tokens) == (3000, 2048)
    assert gem.cost == pytest.approx((952 * 0.3 + 2048 * 0.03 + 10 * 2.5) / 1e6)


def test_usage_adds_cache_counts_and_shows_them():
    total = Usage(10, 1, 11, 0.1, cache_read_tokens=4) + Usage(5, 1, 6, None, cache_write_tokens=3)
    assert (total.cache_read_tokens, total.cache_write_tokens) == (4, 3)
    assert total.as_dict()["cache_read_tokens"] == 4 and total.as_dict()["cache_write_tokens"] == 3
