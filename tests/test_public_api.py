"""The public surface: what users import, and the boundaries the design promises."""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import yait_aichain
from yait_aichain import errors

PACKAGE = Path(yait_aichain.__file__).parent
SUBPACKAGES = ["yait_aichain", "yait_aichain.models", "yait_aichain.skills", "yait_aichain.chain",
               "yait_aichain.pool", "yait_aichain.tools", "yait_aichain.errors", "yait_aichain.testing",
               "yait_aichain.report", "yait_aichain.batch"]


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_all_is_sorted_and_importable(name):
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__, key=str)
    for public in module.__all__:
        assert hasattr(module, public), f"{name}.{public} is listed but missing"


def test_the_article_imports_work():
    from yait_aichain.chain import Chain  # noqa: F401
    from yait_aichain.models import Model  # noqa: F401
    from yait_aichain.pool import DONE, FAILED, PENDING, RUNNING, Pool  # noqa: F401
    from yait_aichain.skills import Skill  # noqa: F401
    from yait_aichain.tools import convertToMD  # noqa: F401

    assert (PENDING, RUNNING, DONE, FAILED, yait_aichain.CANCELLED) == (0, 1, 2, 3, 4)


def test_every_error_derives_from_the_root_and_is_drawn_in_the_docstring():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.AichainError)
        assert re.search(rf"\b{name}\b", errors.__doc__), f"{name} missing from the tree drawing"
        assert cls.__doc__, f"{name} has no docstring"


def test_upstream_error_names_are_kept():
    for name in ["APIError", "NetworkError", "RateLimitError", "AuthenticationError",
                 "InsufficientCreditsError", "InvalidRequestError", "NotFoundError", "ServerError"]:
        assert issubclass(getattr(yait_aichain, name), errors.APIError)


def test_errors_pickle_with_their_facts():
    import pickle

    err = errors.RateLimitError("slow down", status=429, provider="openai", model="m", retry_after=2.0)
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is errors.RateLimitError and clone.retry_after == 2.0 and str(clone) == str(err)


def _sources():
    for info in pkgutil.walk_packages([str(PACKAGE)], "yait_aichain."):
        spec = importlib.util.find_spec(info.name)
        if spec and spec.origin and spec.origin.endswith(".py"):
            yield info.name, Path(spec.origin).read_text()


def test_third_party_boundaries():
    # requests is translated in one place for model calls (tools fetch pages on their own
    # guarded session); tenacity is used in exactly one module.
    for name, source in _sources():
        if re.search(r"^\s*(import|from) tenacity\b", source, re.M):
            assert name == "yait_aichain.models._retry", name
        if re.search(r"^\s*(import|from) requests\b", source, re.M):
            assert name == "yait_aichain.models._transport" or name.startswith("yait_aichain.tools."), name


def test_public_callables_have_docstrings():
    for cls in (yait_aichain.Model, yait_aichain.Skill, yait_aichain.Chain, yait_aichain.Pool):
        assert cls.__doc__
        for attr, member in inspect.getmembers(cls, inspect.isfunction):
            if not attr.startswith("_") and member.__qualname__.startswith(cls.__name__):
                assert member.__doc__, f"{cls.__name__}.{attr} has no docstring"


def test_every_error_pickles_even_with_keyword_only_arguments():
    import pickle

    samples = [
        errors.ChainStepError("step 0 'x' failed", step=0, name="x"),
        errors.ItemTimeoutError("slow", index=3, timeout=1.0),
        errors.CancelledError("stop", reason="budget"),
        errors.TemplateError("missing", missing=["a"]),
        errors.MissingAPIKeyError("no key", provider="openai", env_var="OPENAI_API_KEY"),
        errors.InvalidResponseError("empty", reason="empty", status=200),
        errors.FetchTimeoutError("slow page", url="http://x/", status=None),
        errors.RemoteError("KeyError", "'x'", "Traceback ..."),
        errors.BatchExpiredError("late", batch_id="b1", custom_id="i0", status=0),
        errors.BatchCancelledError("stopped", batch_id="b2"),
    ]
    for err in samples:
        clone = pickle.loads(pickle.dumps(err))
        assert type(clone) is type(err) and str(clone) == str(err) and vars(clone) == vars(err)
