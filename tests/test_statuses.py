"""Statuses read as names everywhere a user sees them, and still equal the public ints."""

from __future__ import annotations

import json
import pickle

from yait_aichain import CANCELLED, DONE, FAILED, PENDING, RUNNING, Pool, Skill
from yait_aichain.pool import Status
from yait_aichain.testing import FakeModel


def _pool(n: int = 4) -> Pool:
    def work(v):
        if v["i"] == 1:
            raise ValueError("bad item")
        return v["i"]

    return Pool(work, [{"i": i} for i in range(n)], max_flows=2, progress=False)


def test_values_are_the_public_ints_and_the_seed_indexing_works():
    assert [PENDING, RUNNING, DONE, FAILED, CANCELLED] == [0, 1, 2, 3, 4]
    pool = _pool()
    pool.run()
    s = pool.status
    assert s[DONE] == 3 and s[2] == 3 and s[FAILED] == 1  # the seed's s[DONE]
    assert sum(s.values()) == 4


def test_repr_str_and_format_read_the_name():
    assert repr(DONE) == "DONE" and str(FAILED) == "FAILED" and f"{CANCELLED}" == "CANCELLED"
    assert f"{DONE:d}" == "2" and int(DONE) == 2
    pool = _pool()
    pool.run()
    assert repr(pool.status) == "{PENDING: 0, RUNNING: 0, DONE: 3, FAILED: 1, CANCELLED: 0}"


def test_history_rows_carry_the_name_and_json_keeps_the_number():
    pool = _pool()
    pool.run()
    rows = pool.history
    assert [row["status_name"] for row in rows] == ["DONE", "FAILED", "DONE", "DONE"]
    assert rows[1]["status"] == FAILED and str(rows[1]["status"]) == "FAILED"
    assert json.loads(json.dumps({"s": rows[0]["status"]})) == {"s": 2}
    assert pickle.loads(pickle.dumps(rows[0]["status"])) is Status.DONE


def test_repr_of_a_pool_names_its_runner():
    skill = Skill(model=FakeModel(), prompt="Summarise: {text}")
    pool = Pool(skill, [{"text": "a"}])
    assert "runner='Skill(fake-model)'" in repr(pool), repr(pool)

    def summarise(v):
        return v

    assert "runner='summarise'" in repr(Pool(summarise, [{}]))
    assert "runner='lambda'" in repr(Pool(lambda v: v, [{}]))
