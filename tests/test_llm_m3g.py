"""The M3G Claude pipeline's four scenarios against the local fake Messages server: which calls, in which order,
with which content, the final answers, cache sharing between scenarios, and input errors."""

from __future__ import annotations

import base64
import re
import subprocess
import sys

import pytest
from llm_fake_server import FakeMessagesServer

from medvl_core.errors import ParameterError
from medvl_core.llm import SCENARIOS, ClaudeClient, M3GCase, answer_cases, case_from_item, run_scenario
from medvl_core.llm.m3g import (
    DIFFERENTIAL_SYSTEM,
    QUERY_REDUCE_SYSTEM,
    REDUCE_SYSTEM,
    SINGLE_CALL_SYSTEM,
    answer_sentence,
    diagnosis_name,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def case_png(case_id: str) -> bytes:
    """PNG-signed bytes carrying the case id (the fake server reads it back)."""
    return PNG_SIGNATURE + f"marker:{case_id};".encode()


def image_marker(body: dict) -> str:
    """The case id carried by the first image of a request."""
    image = next(b for b in body["messages"][0]["content"] if b["type"] == "image")
    return re.search(rb"marker:([^;]+);", base64.b64decode(image["source"]["data"])).group(1).decode()


def last_text(body: dict) -> str:
    """The request's text block."""
    return body["messages"][0]["content"][-1]["text"]


def clinic(body: dict) -> str:
    """A fake dermatologist: a differential per case, then the reduction of it, keyed by the system prompt."""
    system = body["system"]
    if system == DIFFERENTIAL_SYSTEM:
        case = image_marker(body)
        return f"1. Disease {case}\n2. Contact dermatitis\n3. Tinea corporis"
    if system == SINGLE_CALL_SYSTEM:
        return f"Direct disease {image_marker(body)}."
    first_line = re.search(r"1\. (Disease \S+)", last_text(body)).group(1)
    if system == REDUCE_SYSTEM:
        return f"**{first_line}.**"
    if system == QUERY_REDUCE_SYSTEM:
        return f"It is query-aware {first_line}"
    raise AssertionError(f"unexpected system prompt {system[:40]!r}")


@pytest.fixture
def server():
    """The fake server answering like `clinic`."""
    with FakeMessagesServer(responder=clinic) as fake:
        yield fake


@pytest.fixture
def client(server, tmp_path, monkeypatch):
    """A ClaudeClient on the fake server (key from the environment)."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-m3g")
    return ClaudeClient("claude-opus-4-5", tmp_path / "cache", base_url=server.base_url, max_concurrency=3,
                        backoff_base=0.001, progress=False)


def make_cases(n: int = 3) -> list[M3GCase]:
    """Cases c0..c{n-1}, each with two images and a query naming the case."""
    return [M3GCase(id=f"c{k}", images=[case_png(f"c{k}"), case_png(f"c{k}")], query=f"Itchy red patch, case c{k}?")
            for k in range(n)]


def bodies(server, system: str) -> list[dict]:
    """Request bodies the server received under `system`, in arrival order."""
    return [r["body"] for r in server.requests if r["body"]["system"] == system]


def n_images(body: dict) -> int:
    """Image blocks in a request."""
    return sum(b["type"] == "image" for b in body["messages"][0]["content"])


def test_img_one_call(server, client):
    answers = answer_cases(client, make_cases(), "img 1-call")
    assert answers == ["It is Direct disease c0.", "It is Direct disease c1.", "It is Direct disease c2."]
    assert len(server.requests) == 3
    for body in bodies(server, SINGLE_CALL_SYSTEM):
        assert n_images(body) == 2 and "Itchy" not in last_text(body)


def test_img_two_calls(server, client):
    answers = answer_cases(client, make_cases(), "img 2-calls")
    assert answers == ["It is Disease c0.", "It is Disease c1.", "It is Disease c2."]
    systems = [r["body"]["system"] for r in server.requests]
    assert systems == [DIFFERENTIAL_SYSTEM] * 3 + [REDUCE_SYSTEM] * 3  # all first calls, then all second calls
    for body in bodies(server, DIFFERENTIAL_SYSTEM):
        assert n_images(body) == 2 and "Itchy" not in last_text(body)
    differentials = {image_marker(b): clinic(b) for b in bodies(server, DIFFERENTIAL_SYSTEM)}
    for body in bodies(server, REDUCE_SYSTEM):
        assert n_images(body) == 0
        case = re.search(r"Disease (\S+)", last_text(body)).group(1)
        assert differentials[case] in last_text(body) and "Itchy" not in last_text(body)


def test_img_then_text_second_call_has_query_and_differential(server, client):
    cases = make_cases()
    traces = run_scenario(client, cases, "img-then-text")
    assert [t.answer for t in traces] == [f"It is query-aware Disease c{k}." for k in range(3)]
    assert [r["body"]["system"] for r in server.requests] == [DIFFERENTIAL_SYSTEM] * 3 + [QUERY_REDUCE_SYSTEM] * 3
    for trace, case in zip(traces, cases, strict=True):
        first, second = trace.replies
        assert trace.case_id == case.id and not first.cached and not second.cached
        (body,) = [b for b in bodies(server, QUERY_REDUCE_SYSTEM) if first.text in last_text(b)]
        assert case.query in last_text(body) and n_images(body) == 0


def test_img_plus_text_first_call_has_images_and_query(server, client):
    cases = make_cases()
    answers = answer_cases(client, cases, "img+text")
    assert answers == [f"It is Disease c{k}." for k in range(3)]
    for body in bodies(server, DIFFERENTIAL_SYSTEM):
        case = image_marker(body)
        assert n_images(body) == 2 and f"case {case}?" in last_text(body)
    assert len(bodies(server, REDUCE_SYSTEM)) == 3


def test_scenarios_share_cached_first_calls(server, client):
    cases = make_cases()
    answer_cases(client, cases, "img 2-calls")
    assert server.attempts == 6
    answer_cases(client, cases, "img-then-text")  # same first call (images only): served from the cache
    assert server.attempts == 9
    answer_cases(client, cases, "img 2-calls")  # a rerun makes no calls
    assert server.attempts == 9
    usage = client.usage()
    assert (usage.calls, usage.cached_calls) == (9, 9)


def test_order_kept_with_many_cases(server, client):
    cases = make_cases(10)
    assert answer_cases(client, cases, "img 2-calls") == [f"It is Disease c{k}." for k in range(10)]
    assert server.max_in_flight <= 3


@pytest.mark.parametrize("scenario", ["img 3-calls", "IMG 1-CALL", ""])
def test_unknown_scenario(server, client, scenario):
    with pytest.raises(ParameterError, match="scenario"):
        answer_cases(client, make_cases(), scenario)
    assert server.requests == []


def test_case_errors_before_any_call(server, client):
    with pytest.raises(ParameterError, match="'bare' has no images"):
        answer_cases(client, [*make_cases(1), M3GCase(id="bare", images=[], query="q")], "img 2-calls")
    with pytest.raises(ParameterError, match="empty query"):
        answer_cases(client, [M3GCase(id="silent", images=[case_png("x")], query=" ")], "img+text")
    assert answer_cases(client, [M3GCase(id="silent", images=[case_png("x")])], "img 2-calls") == ["It is Disease x."]


def test_scenarios_constant():
    assert SCENARIOS == ("img 1-call", "img 2-calls", "img-then-text", "img+text")


@pytest.mark.parametrize(("reply", "name"), [
    ("Psoriasis", "Psoriasis"),
    ("**Atopic dermatitis.**", "Atopic dermatitis"),
    ("It is tinea versicolor.", "tinea versicolor"),
    ("The most likely diagnosis is: Lichen planus\n\nReasoning: ...", "Lichen planus"),
    ("Diagnosis: \"Seborrheic keratosis\"", "Seborrheic keratosis"),
    ("1. Herpes zoster\n2. Impetigo", "Herpes zoster"),
    ("\n\n  - Urticaria  \n", "Urticaria"),
    ("", ""),
])
def test_diagnosis_name_cleanup(reply, name):
    assert diagnosis_name(reply) == name
    assert answer_sentence(reply) == (f"It is {name}." if name else "")


def test_case_from_item(tmp_path):
    item = {"id": "ENC1", "image_paths": [tmp_path / "IMG_ENC1_00001.jpg"], "text": "Rash. Red itchy patches."}
    case = case_from_item(item)
    assert case == M3GCase(id="ENC1", images=[str(tmp_path / "IMG_ENC1_00001.jpg")], query="Rash. Red itchy patches.")
    with pytest.raises(ParameterError, match="image_paths"):
        case_from_item({"id": "x", "text": "t"})


def test_llm_import_stays_light():
    code = "import sys, medvl_core.llm; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
