"""Shared fixtures: a clean environment for every test, and the local LLM simulator."""

from __future__ import annotations

import pytest

from yait_aichain.models import RetryPolicy

# Variables that would change what a test sees if the developer's shell has them set.
_ENV_VARS = (
    "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
    "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
    "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AICHAIN_ALLOW_PRIVATE_URLS",
)

CANARY = "sk-CANARY-0123456789abcdefghijklmnop"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)


class Sleeps(list):
    """Records the sleeps a retry policy asked for, instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def no_wait(sleeps):
    """A retry policy that never really sleeps; what it would have slept is in ``sleeps``."""
    return RetryPolicy(sleep=sleeps)


@pytest.fixture
def sim():
    """A fresh local LLM simulator on 127.0.0.1 (no latency, no faults)."""
    from yait_aichain.testing import Simulator

    with Simulator() as server:
        yield server


@pytest.fixture
def sim_env(sim, monkeypatch):
    """Point every provider's base URL at the simulator and set dummy keys."""
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("GEMINI_API_KEY", "gm-test")
    return sim
