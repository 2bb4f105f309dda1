"""Checkpoint/resume: finished items are never paid for twice, stale ones never reused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from yait_aichain.chain import Chain
from yait_aichain.models import Model
from yait_aichain.pool import DONE, FAILED, Pool
from yait_aichain.pool._checkpoint import Checkpoint, Journal
from yait_aichain.pool._checkpoint import canonical_json, runner_identity
from yait_aichain.skills import Skill
from yait_aichain.testing import Simulator
from yait_aichain.testing._fake import FakeModel

from .conftest import CANARY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Counting:
    """A runner that counts its calls and fails the items listed in ``fail``."""

    def __init__(self, fail=()):
        self.calls: list[int] = []
        self.fail = set(fail)

    def identity(self):  # the contract: what its answers depend on (not who fails)
        return "counting-v1"

    def run(self, variables):
        self.calls.append(variables["i"])
        if variables["i"] in self.fail:
            raise ValueError(f"item {variables['i']} failed")
        return {"double": variables["i"] * 2}


def items(n):
    return [{"i": i} for i in range(n)]


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- resume ----------------------------------------------------------------------------

def test_a_second_run_takes_done_items_from_the_file_and_reruns_failures(tmp_path):
    path = tmp_path / "run.jsonl"
    first = Counting(fail={3, 7})
    pool = Pool(first, items(10), max_flows=4, checkpoint=path)
    assert pool.run()[:3] == [{"double": 0}, {"double": 2}, {"double": 4}]
    assert sorted(first.calls) == list(range(10))
    stored = lines(path)
    assert sorted(e["index"] for e in stored) == list(range(10))
    assert {e["status"] for e in stored if e["index"] in (3, 7)} == {"FAILED"}

    again = Counting()
    seen = []
    pool = Pool(again, items(10), max_flows=4, checkpoint=str(path), on_item_done=seen.append)
    results = pool.run()
    assert sorted(again.calls) == [3, 7]  # only the failures ran again
    assert results == [{"double": i * 2} for i in range(10)]
    records = pool.records
    assert all(rec.status == DONE for rec in records)
    assert [rec.from_checkpoint for rec in records] == [i not in (3, 7) for i in range(10)]
    assert records[0].attempts == 0 and records[0].as_dict()["from_checkpoint"] is True
    assert len(seen) == 10  # restored items are reported like any other

    third = Counting()
    assert Pool(third, items(10), checkpoint=path).run() == results
    assert third.calls == []


def test_items_are_matched_by_content_not_position(tmp_path):
    path = tmp_path / "run.jsonl"
    Pool(Counting(), items(5), checkpoint=path).run()
    runner = Counting()
    shuffled = [{"i": 4}, {"i": 9}, {"i": 0}, {"i": 2}]
    assert Pool(runner, shuffled, checkpoint=path).run() == [
        {"double": 8}, {"double": 18}, {"double": 0}, {"double": 4}]
    assert runner.calls == [9]


def test_shared_variables_are_part_of_the_key(tmp_path):
    path = tmp_path / "run.jsonl"
    skill = Skill(model=FakeModel(), prompt="{lang}: {text}")
    data = [{"text": "a"}, {"text": "b"}]
    Pool(skill, data, checkpoint=path).run({"lang": "fr"})
    pool = Pool(skill, data, checkpoint=path)
    assert pool.run({"lang": "de"}) == ["echo: de: a", "echo: de: b"]
    assert not any(rec.from_checkpoint for rec in pool.records)


def test_a_changed_prompt_or_model_reuses_nothing(tmp_path):
    path = tmp_path / "run.jsonl"
    data = [{"text": f"t{i}"} for i in range(4)]
    model = FakeModel()
    Pool(Skill(model=model, prompt="Summarise: {text}"), data, checkpoint=path).run()
    assert len(model.calls) == 4

    same = FakeModel()
    Pool(Skill(model=same, prompt="Summarise: {text}"), data, checkpoint=path).run()
    assert same.calls == []

    edited = FakeModel()
    results = Pool(Skill(model=edited, prompt="Translate: {text}"), data, checkpoint=path).run()
    assert len(edited.calls) == 4 and results[0] == "echo: Translate: t0"

    other = Model("gpt-4o", api_key="k", base_url="http://127.0.0.1:9/v1")
    mini = Model("gpt-4o-mini", api_key="k", base_url="http://127.0.0.1:9/v1")
    assert runner_identity(Skill(model=other, prompt="x")) != runner_identity(Skill(model=mini, prompt="x"))
    hot = Model("gpt-4o", api_key="k", base_url="http://127.0.0.1:9/v1", temperature=1.0)
    assert runner_identity(other) != runner_identity(hot)
    # What only changes how a call is made keeps the identity.
    patient = Model("gpt-4o", api_key="other", base_url="http://127.0.0.1:9/v1", timeout=999)
    assert runner_identity(other) == runner_identity(patient)


def test_chains_and_functions_have_identities_that_follow_their_parts(tmp_path):
    from yait_aichain.errors import ConfigurationError

    skill_a = Skill(model=FakeModel(), prompt="A {text}")
    skill_b = Skill(model=FakeModel(), prompt="B {text}")
    assert runner_identity(Chain([skill_a, (len, "n")])) != runner_identity(Chain([skill_b, (len, "n")]))
    assert runner_identity(Chain([skill_a, (len, "n")])) != runner_identity(Chain([skill_a, (len, "m")]))

    def via_a(v):
        return skill_a.run(v)

    # A plain function does not describe itself: checkpointing it needs a key, and the
    # error says how; nothing is guessed from its bytecode.
    with pytest.raises(ConfigurationError, match=r"checkpoint_key='v1'.*identity\(\)") as info:
        Pool(via_a, items(1), checkpoint=tmp_path / "a.jsonl")
    assert "via_a" in str(info.value)
    with pytest.raises(ConfigurationError, match="checkpoint_key"):
        Pool(Chain([skill_a, (via_a, "n")]), items(1), checkpoint=tmp_path / "a.jsonl")
    # Built-ins are versioned with Python; a key versions the rest.
    assert runner_identity(Chain([skill_a, (len, "n")]))
    assert runner_identity(via_a, "v1") != runner_identity(via_a, "v2")
    path = tmp_path / "b.jsonl"
    Pool(lambda v: v["i"], items(2), checkpoint=path, checkpoint_key="v1").run()
    calls = []
    again = Pool(lambda v: calls.append(v) or v["i"], items(2), checkpoint=path,
                 checkpoint_key="v1")
    assert again.run() == [0, 1] and calls == []
    again.checkpoint_key = "v2"  # a new version: nothing stored is reused
    assert again.run() == [0, 1] and len(calls) == 2


def test_identities_are_stable_across_interpreters():
    # Hash randomisation changes set order and string hashes between processes; a key
    # that changed with it would re-run every item after a restart.
    code = textwrap.dedent("""
        from yait_aichain.pool._checkpoint import canonical_json, runner_identity
        from yait_aichain.skills import Skill
        from yait_aichain.testing._fake import FakeModel
        def post(v):
            return v["x"] in {"alpha", "beta", "gamma"} and ("a", frozenset({"p", "q", "r"}))
        skill = Skill(model=FakeModel(), prompt="Hi {x}")
        print(canonical_json([runner_identity(post, "v1"), runner_identity(skill),
                              {"s": {"b", "a", "c"}}]).replace("__main__", "M"))
    """)
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": ROOT}).stdout
        for seed in (1, 2, 3)
    }
    assert len(outputs) == 1


# -- the file --------------------------------------------------------------------------

def test_a_torn_last_line_is_ignored_with_a_warning_and_cut_off(tmp_path):
    path = tmp_path / "run.jsonl"
    Pool(Counting(), items(3), checkpoint=path).run()
    with open(path, "ab") as fh:
        fh.write(b'{"v": 1, "key": "abc", "status": "DO')  # kill -9 mid-write
    runner = Counting()
    with pytest.warns(RuntimeWarning, match="torn last line"):
        results = Pool(runner, items(4), checkpoint=path).run()
    assert results == [{"double": i * 2} for i in range(4)] and runner.calls == [3]
    assert [e["index"] for e in lines(path)] == [0, 1, 2, 3]  # every line parses again


def test_unreadable_lines_are_skipped_with_a_warning(tmp_path):
    path = tmp_path / "run.jsonl"
    Pool(Counting(), items(2), checkpoint=path).run()
    text = path.read_text().splitlines()
    path.write_text("\n".join([text[0], "not json", text[1]]) + "\n")
    runner = Counting()
    with pytest.warns(RuntimeWarning, match="1 unreadable line"):
        Pool(runner, items(2), checkpoint=path).run()
    assert runner.calls == []


def test_a_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "run.jsonl"
    Pool(Counting(), items(2), checkpoint=path).run()
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    runner = Counting()
    Pool(runner, items(3), checkpoint=path).run()
    assert runner.calls == [2]
    assert len(lines(path)) == 3


def test_outputs_that_are_not_json_are_marked_and_run_again(tmp_path):
    path = tmp_path / "run.jsonl"
    calls = []

    def opaque(v):
        calls.append(v["i"])
        return object() if v["i"] == 0 else v["i"]

    Pool(opaque, items(2), checkpoint=path, checkpoint_key="opaque-v1").run()
    stored = lines(path)
    marked = next(e for e in stored if e["index"] == 0)
    assert marked["unserialisable"] == "object" and "output" not in marked
    assert "object at 0x" not in path.read_text()  # a marker, not a repr
    calls.clear()
    Pool(opaque, items(2), checkpoint=path, checkpoint_key="opaque-v1").run()
    assert calls == [0]


def test_no_key_and_no_variable_is_written(tmp_path):
    path = tmp_path / "run.jsonl"
    with Simulator() as sim:
        model = Model("gpt-4o-mini", api_key=CANARY, base_url=sim.openai_base_url)
        Pool(Skill(model=model, prompt="{text}"), [{"text": "very private words"}],
             checkpoint=path).run({"token": CANARY})
    text = path.read_text()
    assert CANARY not in text and "private" not in text.replace("Summary: very private words", "")
    entry = lines(path)[0]
    assert set(entry) >= {"key", "status", "output", "usage", "attempts"} and "variables" not in entry


def test_two_runs_cannot_write_one_file_at_once(tmp_path):
    path = tmp_path / "run.jsonl"
    journal = Journal(Checkpoint(path), Counting())
    try:
        with pytest.raises(RuntimeError, match="another run"):
            Pool(Counting(), items(1), checkpoint=path).run()
    finally:
        from yait_aichain.pool._record import RecordBook

        journal.close(RecordBook())


def test_bad_checkpoint_arguments(tmp_path):
    from yait_aichain.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="file path"):
        Pool(Counting(), items(1), checkpoint=42)
    with pytest.raises(ConfigurationError, match="directory"):
        Pool(Counting(), items(1), checkpoint=tmp_path)


def test_retry_failed_appends_the_new_outcome(tmp_path):
    path = tmp_path / "run.jsonl"
    runner = Counting(fail={1})
    pool = Pool(runner, items(3), checkpoint=path)
    pool.run()
    assert pool.status[FAILED] == 1
    runner.fail.clear()
    assert pool.retry_failed() == [{"double": 0}, {"double": 2}, {"double": 4}]
    statuses = [(e["index"], e["status"]) for e in lines(path)]
    assert statuses.count((1, "FAILED")) == 1 and statuses.count((1, "DONE")) == 1
    assert canonical_json({"b": 1, "a": {2, 1}}) == '{"a":[1,2],"b":1}'


# -- kill -9 halfway, then resume -------------------------------------------------------

_CHILD = textwrap.dedent("""
    import os
    from yait_aichain.models import Model
    from yait_aichain.pool import Pool
    from yait_aichain.skills import Skill

    model = Model("gpt-4o-mini", api_key=os.environ["TEST_API_KEY"],
                  base_url=os.environ["TEST_SIM_URL"])
    skill = Skill(model=model, prompt="Summarise row {n}: {text}")
    items = [{"n": i, "text": f"text of row {i}"} for i in range(1000)]
    Pool(skill, items, max_flows=50, checkpoint=os.environ["TEST_CHECKPOINT"]).run()
""")


def test_killed_halfway_then_resumed_pays_at_most_the_items_in_flight(tmp_path):
    path = tmp_path / "run.jsonl"
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    data = [{"n": i, "text": f"text of row {i}"} for i in range(1000)]
    expected = [f"Summary: Summarise row {i}: text of row {i}" for i in range(1000)]
    with Simulator(latency=0.1) as sim:
        env = {**os.environ, "TEST_API_KEY": CANARY, "TEST_SIM_URL": sim.openai_base_url,
               "TEST_CHECKPOINT": str(path), "PYTHONPATH": ROOT}
        child = subprocess.Popen([sys.executable, str(script)], env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            if path.exists() and path.read_bytes().count(b"\n") >= 500:
                break
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL, "the child finished before it was killed"
        stored = path.read_bytes().count(b"\n")
        assert 500 <= stored < 1000
        sent_before = sim.stats.requests

        model = Model("gpt-4o-mini", api_key=CANARY, base_url=sim.openai_base_url)
        skill = Skill(model=model, prompt="Summarise row {n}: {text}")
        pool = Pool(skill, data, max_flows=50, checkpoint=path)
        results = pool.run()
        assert results == expected  # all 1000, in input order, each its own answer
        restored = sum(rec.from_checkpoint for rec in pool.records)
        assert restored >= stored - 1  # a torn last line may cost one
        assert sim.stats.requests <= 1000 + 50, (sent_before, sim.stats.requests)
        asked = [r.last_user_text for r in sim.requests_log]
        # Nothing stored was asked for again: the only repeats are the items in flight.
        assert len(asked) - len(set(asked)) <= 50
        entries = lines(path)
        assert len({e["key"] for e in entries if e["status"] == "DONE"}) == 1000
        assert CANARY not in path.read_text()

        # A new prompt is a new runner: every item runs again, nothing stale comes back.
        before = sim.stats.requests
        edited = Skill(model=model, prompt="Translate row {n}: {text}")
        pool = Pool(edited, data, max_flows=50, checkpoint=path)
        assert pool.run()[5] == "Summary: Translate row 5: text of row 5"
        assert sim.stats.requests - before == 1000
        assert not any(rec.from_checkpoint for rec in pool.records)


def test_a_variable_without_a_stable_form_warns_that_resume_cannot_work(tmp_path):
    path = tmp_path / "run.jsonl"
    with pytest.warns(RuntimeWarning, match="can never be resumed"):
        Pool(Counting(), items(3), checkpoint=path).run({"client": object()})
    assert runner_identity(len) != runner_identity(abs)


def test_convert_to_md_identity_follows_what_shapes_its_markdown(tmp_path):
    from yait_aichain.tools import convertToMD

    base = runner_identity(convertToMD())
    # Caps decide where a document is cut, and root which files can be read at all.
    assert runner_identity(convertToMD(max_pages=3)) != base
    assert runner_identity(convertToMD(max_rows=10)) != base
    assert runner_identity(convertToMD(root=tmp_path)) != base
    # How long a fetch may take changes no answer.
    assert runner_identity(convertToMD(timeout=99)) == base
