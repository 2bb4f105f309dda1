"""The simulator's three Batch APIs, driven by the official SDKs."""

import io
import json

import pytest

from yait_aichain.testing import Simulator


@pytest.fixture
def bsim():
    with Simulator() as sim:
        yield sim


def _anthropic(sim):
    import anthropic

    return anthropic.Anthropic(api_key="sk-ant-test", base_url=sim.anthropic_base_url,
                               max_retries=0)


def _openai(sim):
    import openai

    return openai.OpenAI(api_key="sk-test", base_url=sim.openai_base_url, max_retries=0)


def _gemini(sim):
    from google import genai
    from google.genai import types

    return genai.Client(api_key="gm-test",
                        http_options=types.HttpOptions(base_url=sim.gemini_base_url,
                                                       api_version="v1beta"))


def test_anthropic_sdk_create_retrieve_list_results(bsim):
    bsim.batches.delay = 30
    client = _anthropic(bsim)
    requests = [{"custom_id": f"r{i}", "params": {
        "model": "claude-sonnet-4-6", "max_tokens": 50,
        "messages": [{"role": "user", "content": f"doc {i}"}]}} for i in range(3)]
    batch = client.messages.batches.create(requests=requests)
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 3
    assert [b.id for b in client.messages.batches.list()] == [batch.id]
    bsim.batches.finish_all()
    done = client.messages.batches.retrieve(batch.id)
    assert done.processing_status == "ended" and done.request_counts.succeeded == 3
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["r1"].type == "succeeded"
    assert results["r1"].message.content[0].text == "Summary: doc 1"
    assert results["r1"].message.usage.input_tokens == 2
    # No live Messages call was made.
    assert not any(r.path == "/v1/messages" for r in bsim.requests_log)


def test_anthropic_sdk_cancel_and_per_request_errors(bsim):
    client = _anthropic(bsim)
    bsim.batches.delay = 60
    params = {"model": "claude-sonnet-4-6", "max_tokens": 5,
              "messages": [{"role": "user", "content": "x"}]}
    batch = client.messages.batches.create(requests=[{"custom_id": "a", "params": params}])
    cancelled = client.messages.batches.cancel(batch.id)
    assert cancelled.processing_status == "ended" and cancelled.request_counts.canceled == 1
    assert [r.result.type for r in client.messages.batches.results(batch.id)] == ["canceled"]
    bsim.batches.delay = 0
    bsim.batches.fail_when("bad", status=400, message="prompt is too long")
    bad = dict(params, messages=[{"role": "user", "content": "bad one"}])
    second = client.messages.batches.create(requests=[
        {"custom_id": "ok", "params": params}, {"custom_id": "no", "params": bad}])
    results = {r.custom_id: r.result for r in client.messages.batches.results(second.id)}
    assert results["ok"].type == "succeeded" and results["no"].type == "errored"
    assert results["no"].error.error.message == "prompt is too long"


def test_openai_sdk_files_and_batches(bsim):
    client = _openai(bsim)
    lines = [{"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"t {i}"}]}}
             for i in range(4)]
    bsim.batches.fail_when("t 2", status=400)
    payload = "".join(json.dumps(line) + "\n" for line in lines).encode()
    upload = client.files.create(file=("in.jsonl", io.BytesIO(payload)), purpose="batch")
    assert upload.purpose == "batch" and upload.bytes == len(payload)
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    assert batch.status in ("validating", "in_progress", "completed")
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed"
    assert (done.request_counts.total, done.request_counts.completed,
            done.request_counts.failed) == (4, 3, 1)
    assert [b.id for b in client.batches.list()] == [batch.id]
    out = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    assert sorted(x["custom_id"] for x in out) == ["c0", "c1", "c3"]
    first = next(x for x in out if x["custom_id"] == "c1")["response"]
    assert first["status_code"] == 200
    assert first["body"]["choices"][0]["message"]["content"] == "Summary: t 1"
    errors = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
    assert errors[0]["custom_id"] == "c2" and errors[0]["response"]["status_code"] == 400
    assert not any(r.path == "/v1/chat/completions" for r in bsim.requests_log)


def test_openai_sdk_cancel_and_expiry(bsim):
    client = _openai(bsim)
    line = {"custom_id": "c", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}}
    upload = client.files.create(file=("in.jsonl", io.BytesIO(json.dumps(line).encode())),
                                 purpose="batch")
    bsim.batches.delay = 60
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    assert client.batches.cancel(batch.id).status == "cancelled"
    bsim.batches.delay, bsim.batches.expire = 0, True
    expired = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                    completion_window="24h")
    expired = client.batches.retrieve(expired.id)
    assert expired.status == "expired" and expired.output_file_id is None
    errs = client.files.content(expired.error_file_id).text.splitlines()
    assert json.loads(errs[0])["error"]["code"] == "batch_expired"


def test_gemini_sdk_inline_batch(bsim):
    client = _gemini(bsim)
    bsim.batches.delay = 30
    src = [{"contents": [{"parts": [{"text": f"page {i}"}], "role": "user"}],
            "metadata": {"key": f"k{i}"}} for i in range(3)]
    job = client.batches.create(model="gemini-2.5-flash", src=src)
    assert job.name.startswith("batches/") and job.state.name == "JOB_STATE_RUNNING"
    assert [j.name for j in client.batches.list()] == [job.name]
    bsim.batches.finish_all()
    done = client.batches.get(name=job.name)
    assert done.state.name == "JOB_STATE_SUCCEEDED"
    answers = done.dest.inlined_responses
    assert [a.metadata["key"] for a in answers] == ["k0", "k1", "k2"]
    assert answers[2].response.text == "Summary: page 2"
    bsim.batches.delay = 60
    other = client.batches.create(model="gemini-2.5-flash", src=src[:1])
    client.batches.cancel(name=other.name)
    assert client.batches.get(name=other.name).state.name == "JOB_STATE_CANCELLED"


def test_batch_endpoints_check_the_key_and_ids(bsim):
    bsim.require_key = "right"
    import anthropic

    wrong = anthropic.Anthropic(api_key="wrong", base_url=bsim.anthropic_base_url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        wrong.messages.batches.list()
    bsim.require_key = None
    with pytest.raises(anthropic.NotFoundError):
        _anthropic(bsim).messages.batches.retrieve("msgbatch_nope")
    with pytest.raises(anthropic.BadRequestError):
        _anthropic(bsim).messages.batches.create(requests=[{"custom_id": "bad id!", "params": {
            "model": "m", "max_tokens": 1, "messages": []}}])
