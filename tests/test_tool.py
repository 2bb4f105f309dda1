"""The Tool base class: argument checks, naming, schema checks, thread sharing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from yait_aichain._runner import call_runner, is_tool, runner_name, tool_arguments
from yait_aichain.errors import ConfigurationError, ToolInputError
from yait_aichain.tools import Tool


class Add(Tool):
    name = "add"
    description = "Add two integers."
    parameters = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"},
                       "label": {"type": ["string", "null"]}},
        "required": ["a", "b"],
    }

    def __init__(self) -> None:
        self.calls = 0

    def run(self, a, b, label=None):
        self.calls += 1
        total = a + b
        return f"{label}={total}" if label else total


def test_valid_calls_keyword_and_positional():
    tool = Add()
    assert tool.run(a=1, b=2) == 3
    assert tool.run(1, 2) == 3
    assert tool.run(1, b=2, label="sum") == "sum=3"
    assert tool.run(a=1, b=2, label=None) == 3


def test_missing_parameter_is_named_before_the_work_starts():
    tool = Add()
    with pytest.raises(ToolInputError) as info:
        tool.run(a=1)
    assert str(info.value) == ("add: missing required parameter(s) 'b'; "
                               "it takes: a (required), b (required), label")
    assert tool.calls == 0


def test_unknown_parameter_is_named():
    tool = Add()
    expected = r"unknown parameter\(s\) 'c'.*it takes: a \(required\)"
    with pytest.raises(ToolInputError, match=expected):
        tool.run(a=1, b=2, c=3)
    assert tool.calls == 0


@pytest.mark.parametrize("kwargs, bad", [
    ({"a": "1", "b": 2}, "'a'"),
    ({"a": True, "b": 2}, "'a'"),  # a bool is not a JSON integer
    ({"a": 1, "b": 2, "label": 5}, "'label'"),
])
def test_wrong_json_type_is_refused(kwargs, bad):
    with pytest.raises(ToolInputError, match=bad):
        Add().run(**kwargs)


def test_positional_misuse():
    with pytest.raises(ToolInputError, match="too many positional"):
        Add().run(1, 2, "x", 4)
    with pytest.raises(ToolInputError, match="given twice"):
        Add().run(1, a=1, b=2)


def test_error_is_a_value_error_too():
    with pytest.raises(ValueError):
        Add().run()


def test_repr_and_default_name():
    class Echo(Tool):
        parameters = {"type": "object", "properties": {"text": {"type": "string"}}}

        def run(self, text="-"):
            return text

    assert repr(Add()) == "<Add tool 'add'>"
    assert Echo.name == "Echo" and repr(Echo()) == "<Echo tool 'Echo'>"
    assert Echo().run() == "-"


def test_subclass_of_a_tool_is_checked_once_per_level():
    class Add3(Add):
        name = "add3"

        def run(self, a, b, label=None):
            return super().run(a, b, label) * 3

    assert Add3().run(a=1, b=1) == 6
    with pytest.raises(ToolInputError, match="add3: missing"):
        Add3().run(a=1)


def test_kwargs_style_tool_gets_declared_names_only():
    class Greet(Tool):
        parameters = {"type": "object", "properties": {"who": {"type": "string"}},
                      "required": ["who"]}

        def run(self, **kwargs):
            return f"hi {kwargs['who']}"

    assert Greet().run(who="ada") == "hi ada"
    with pytest.raises(ToolInputError, match="'whom'"):
        Greet().run(whom="ada")


@pytest.mark.parametrize("parameters", [
    None,
    {"type": "object"},
    {"type": "object", "properties": {"a": {}}, "required": ["b"]},
    {"type": "object", "properties": {"a": {}}, "required": "a"},
])
def test_bad_schema_fails_when_the_class_is_defined(parameters):
    with pytest.raises(ConfigurationError):
        type("Bad", (Tool,), {"parameters": parameters, "run": lambda self, **kw: None})


def test_base_run_must_be_implemented():
    with pytest.raises(NotImplementedError):
        Tool().run()


def test_runner_contract():
    tool = Add()
    assert is_tool(tool) and runner_name(tool) == "add"
    variables = {"a": 2, "b": 3, "unrelated": "x"}
    assert tool_arguments(tool, variables) == {"a": 2, "b": 3}
    assert call_runner(tool, variables) == 5
    assert tool_arguments(tool, {"x": 1, "b": 2}) == {"b": 2}  # input_map: see test_chain


def test_one_tool_shared_by_many_threads():
    class Square(Tool):
        parameters = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}

        def run(self, n):
            return n * n

    tool = Square()
    with ThreadPoolExecutor(max_workers=50) as pool:
        assert list(pool.map(lambda n: tool.run(n=n), range(2000))) == [n * n for n in range(2000)]
