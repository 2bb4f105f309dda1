"""Prompt caching: Skill marks the static prefix, the simulator caches it, usage prices it."""

import pytest

from yait_aichain import Model, Skill
from yait_aichain.errors import ConfigurationError

LONG = " ".join(f"rule{i}" for i in range(5000))  # 5,000 simulator tokens


def test_anthropic_system_prefix_is_marked_written_then_read(sim_env):
    skill = Skill(Model("claude-sonnet-4-6"), system=LONG, prompt="{text}")
    assert skill.caches_prefix
    skill.run({"text": "a"})
    body = sim_env.requests_log[-1].body
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    first = skill.last_usage
    assert (first.cache_write_tokens, first.cache_read_tokens) == (5000, 0)
    skill.run({"text": "b"})
    second = skill.last_usage
    assert (second.cache_write_tokens, second.cache_read_tokens) == (0, 5000)
    assert second.input_tokens == first.input_tokens
    # Reads cost a tenth of input, writes a quarter more (claude-sonnet-4-6: 3.00/3.75/0.30).
    assert second.cost < first.cost / 5
    assert sim_env.prompt_cache.writes == 1 and sim_env.prompt_cache.reads == 1


def test_the_user_template_prefix_before_the_first_variable_is_the_breakpoint(sim_env):
    skill = Skill(Model("claude-sonnet-4-6"), prompt=LONG + "\nDocument: {text}\nThanks.")
    skill.run({"text": "xyz"})
    content = sim_env.requests_log[-1].body["messages"][0]["content"]
    assert content[0]["text"] == LONG + "\nDocument: "
    assert content[0]["cache_control"] == {"type": "ephemeral"}
    assert content[1] == {"type": "text", "text": "xyz\nThanks."}
    assert "".join(c["text"] for c in content) == LONG + "\nDocument: xyz\nThanks."


def test_short_prefixes_and_cache_false_send_no_marker(sim_env):
    short = Skill(Model("claude-sonnet-4-6"), system="Be brief.", prompt="{text}")
    off = Skill(Model("claude-sonnet-4-6"), system=LONG, prompt="{text}", cache=False)
    assert not short.caches_prefix and not off.caches_prefix
    short.run({"text": "a"})
    off.run({"text": "a"})
    assert all(isinstance(r.body["system"], str) for r in sim_env.requests_log)
    assert off.last_usage.cache_write_tokens == 0
    with pytest.raises(ConfigurationError, match="cache"):
        Skill(Model("claude-sonnet-4-6"), prompt="x", cache="always")


def test_haiku_4_5_needs_a_longer_prefix_than_sonnet_4_5(sim_env):
    mid = " ".join(["word"] * 700)  # ~3,500 characters: about 875 estimated tokens x4
    text = mid * 2  # ~7,000 characters ~ 1,750 estimated tokens
    assert Skill(Model("claude-sonnet-4-5"), system=text, prompt="{t}").caches_prefix
    assert not Skill(Model("claude-haiku-4-5"), system=text, prompt="{t}").caches_prefix


def test_openai_gets_a_stable_prompt_cache_key_and_reports_cached_tokens(sim_env):
    skill = Skill(Model("gpt-4o-mini"), system=LONG, prompt="{text}")
    skill.run({"text": "one"})
    skill.run({"text": "two"})
    keys = {r.body.get("prompt_cache_key") for r in sim_env.requests_log}
    assert len(keys) == 1 and next(iter(keys)).startswith("yait-")
    assert skill.last_usage.cache_read_tokens == 5000
    live = Model("gpt-4o-mini").price
    expected = ((skill.last_usage.input_tokens - 5000) * live.input + 5000 * live.cache_read
                + skill.last_usage.output_tokens * live.output) / 1e6
    assert skill.last_usage.cost == pytest.approx(expected)


def test_gemini_implicit_cache_is_counted(sim_env):
    skill = Skill(Model("gemini-2.5-flash"), system=LONG, prompt="{text}")
    assert not skill.caches_prefix  # nothing to mark: Gemini caches by itself
    skill.run({"text": "one"})
    skill.run({"text": "two"})
    assert skill.last_usage.cache_read_tokens == 5000


def test_local_servers_get_no_cache_key(sim_env):
    local = Model("llama3", provider="ollama", base_url=sim_env.openai_base_url)
    skill = Skill(local, system=LONG, prompt="{text}")
    skill.run({"text": "x"})
    assert "prompt_cache_key" not in sim_env.requests_log[-1].body


def test_the_simulated_cache_forgets_a_prefix_after_its_ttl(sim_env):
    import time

    sim_env.prompt_cache.ttl = 0.2
    skill = Skill(Model("claude-sonnet-4-6"), system=LONG, prompt="{text}")
    skill.run({"text": "a"})
    skill.run({"text": "b"})
    assert skill.last_usage.cache_read_tokens == 5000
    time.sleep(0.4)
    skill.run({"text": "c"})
    assert skill.last_usage.cache_write_tokens == 5000 and sim_env.prompt_cache.writes == 2
