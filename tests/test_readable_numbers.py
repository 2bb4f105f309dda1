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


def test_connection_refused_on_this_machine_is_one_attempt_and_says_so():
    import socket
    import time

    import pytest

    from yait_aichain import Model
    from yait_aichain.errors import NetworkError

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    model = Model("llama3.1", provider="ollama", base_url=f"http://127.0.0.1:{port}/v1")
    started = time.monotonic()
    with pytest.raises(NetworkError) as info:
        model.generate("hi")
    assert time.monotonic() - started < 2  # not five retries with backoff
    err = info.value
    assert err.refused and err.attempts == 1 and err.base_url.endswith(f":{port}/v1")
    assert "nothing listens" in str(err)
