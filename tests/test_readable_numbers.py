"""What a user reads: durations and costs rounded, never a float's full expansion."""

from __future__ import annotations

from yait_aichain import Usage
from yait_aichain.models._transport import _describe


def test_summed_costs_are_rounded():
    total = sum([Usage(1, 1, 2, 0.008198)] * 3, Usage())
    assert repr(total.cost) == "0.024594"  # not 0.024594000000000008
    assert sum([Usage(1, 1, 2, 0.1)] * 3, Usage()).cost == 0.3


def test_timeouts_in_transport_messages_are_rounded():
    exc = TimeoutError("HTTPConnectionPool(host='127.0.0.1', port=1): Read timed out. "
                       "(read timeout=1.9998692529998152)")
    text = _describe(exc)
    assert "read timeout=2.00" in text and "1.99986" not in text
    assert "port=1" in text
