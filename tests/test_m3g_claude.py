"""The M3G Claude pipeline with the paper's Appendix A prompts, against the local fake Messages server: the exact
system prompts, content blocks and image order of every call of the four scenarios, the answer parsing, cache
sharing between scenarios, input errors, and the dry run (requests, calls, tokens, cost) before any call."""

from __future__ import annotations

import base64
import io
import math
import re

import pytest
from llm_fake_server import FakeMessagesServer, count_tokens
from PIL import Image

from medvl_core.errors import DataFormatError, ParameterError
from medvl_core.llm import ClaudeClient
from medvl_core.studies.m3g_answer_generation.claude import (
    M3GCase,
    answer_cases,
    answer_sentence,
    build_request,
    case_from_item,
    check_claude_run,
    diagnosis_name,
    parse_answer,
    run_scenario,
)
from medvl_core.studies.m3g_answer_generation.dry_run import dry_run, estimate_tokens, image_tokens
from medvl_core.studies.m3g_answer_generation.prompts import SCENARIOS, load_prompts, prompts_file, scenario

# Appendix A's system prompts, transcribed again here from the paper (typos included) to check the data file.
A1 = ("You are an expert assistant to a blind dermatology student, help him identify exactly what conditions would be "
      "included in the differential for this condition? Be concise. After brief description of the images and "
      "explanation of your choice, give the most commonly occuring skin disease out of the differentials at the end "
      "and nothing else, in the form of\n\nAnswer: [Disease Name]")
A2_FIRST = ("You are an expert assistant to a dermatology student, help him identify exactly what skin conditions "
            "would be included in the differential for the images presented. Consider both resemblence and prevalence.")
A2_SECOND = ("You are an expert assistant to a dermatology student. Given the following differentials, only return "
             "the name of the most likely diagnosis and nothing else. Do not include alternative names of the "
             "differential in brackets.")
A3_SECOND = ("You are an expert assistant to a dermatology student, given the following differentials discussed and "
             "some additional information provided, only return the name of the most likely diagnosis and nothing "
             "else. Do not include alternative names of the differential in brackets.")
A4_FIRST = ("You are an expert assistant to a dermatology student, help him identify what skin conditions would be "
            "included in the differential for the presented images and additional information provided by the "
            "medical professional. If any skin conditions are mentioned in the additional information, include them "
            "as the most likely differential.")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_png(marker: str) -> bytes:
    """PNG-signed bytes carrying a marker (the fake server reads it back)."""
    return PNG_SIGNATURE + f"marker:{marker};".encode()


def markers(body: dict) -> list[str]:
    """The markers of a request's image blocks, in block order."""
    return [re.search(rb"marker:([^;]+);", base64.b64decode(b["source"]["data"])).group(1).decode()
            for b in body["messages"][0]["content"] if b["type"] == "image"]


def layout(body: dict) -> list[str]:
    """The request's blocks: 'image:<marker>' or the text."""
    out, images = [], iter(markers(body))
    for block in body["messages"][0]["content"]:
        out.append(f"image:{next(images)}" if block["type"] == "image" else block["text"])
    return out


def differential(case: str) -> str:
    """The fake first reply of a case."""
    return f"Based on the images provided ...\n\n1. Disease {case} (alias)\n2. Contact dermatitis"


def clinic(body: dict) -> str:
    """A fake dermatologist answering by the system prompt (the Appendix A one it was sent)."""
    system, text = body["system"], "\n".join(b.get("text", "") for b in body["messages"][0]["content"])
    if system == A1:
        return f"The images show vesicles.\n\n**Answer:** Direct disease {markers(body)[0].split('/')[0]}"
    if system in (A2_FIRST, A4_FIRST):
        return differential(markers(body)[0].split("/")[0])
    case = re.search(r"1\. Disease (\S+)", text).group(1)
    return f"Disease {case}" if system == A2_SECOND else f"query-aware disease {case}."


@pytest.fixture
def server():
    """The fake server answering like `clinic`."""
    with FakeMessagesServer(responder=clinic) as fake:
        yield fake


@pytest.fixture
def client(server, tmp_path, monkeypatch):
    """A ClaudeClient on the fake server (key from the environment)."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-m3g")
    return ClaudeClient("claude-opus-4-7", tmp_path / "cache", base_url=server.base_url, max_concurrency=3,
                        backoff_base=0.001, progress=False)


def make_cases(n: int = 3) -> list[M3GCase]:
    """Cases c0..c{n-1}, each with two distinct images and a query naming the case."""
    return [M3GCase(id=f"c{k}", images=[image_png(f"c{k}/1"), image_png(f"c{k}/2")], query=f"Itchy red patch, case c{k}?")
            for k in range(n)]


def bodies(server, system: str) -> list[dict]:
    """Request bodies the server received under `system`, in arrival order."""
    return [r["body"] for r in server.requests if r["body"]["system"] == system]


# ------------------------------------------------------------------ the prompts file


def test_prompts_file_quotes_appendix_a_verbatim_with_sources():
    prompts = load_prompts()
    assert prompts["model"] == "claude-3-opus-20240229" and "Appendix A" in prompts["source"]
    systems = {name: [c.system for c in scenario(name).calls] for name in SCENARIOS}
    assert systems == {"img 1-call": [A1], "img 2-calls": [A2_FIRST, A2_SECOND], "img-then-text": [A2_FIRST, A3_SECOND],
                       "img+text": [A4_FIRST, A2_SECOND]}
    sections = {"img 1-call": "A.1", "img 2-calls": "A.2", "img-then-text": "A.3", "img+text": "A.4"}
    for name, section in sections.items():
        plan = scenario(name)
        assert plan.source.startswith(f"Appendix {section}") and all(f"Appendix {section}" in c.source for c in plan.calls)
    assert [scenario(n).paper_row for n in SCENARIOS] == ["Img (1 Call)", "Img (2 Calls)", "Img then text (2 Calls)",
                                                         "Img + text (2 Calls)"]
    assert "source:" in prompts_file().read_text(encoding="utf-8")


def test_paper_example_outputs_parse_to_the_papers_diagnoses():
    parsed = [parse_answer(scenario(n).calls[-1].example, scenario(n).parse)[0] for n in SCENARIOS]
    assert parsed == ["Dyshidrotic eczema", "hand eczema", "hand eczema (dyshidrotic eczema)",
                      "picture 1: lipoma. picture 2: palmar erythema"]


def test_broken_prompts_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "prompts.yaml"
    bad.write_text("scenarios:\n  img 1-call:\n    calls: [{system: x, content: [images]}]\n")
    with pytest.raises(DataFormatError, match="source"):
        load_prompts(str(bad))
    bad.write_text("scenarios: {}\n")
    with pytest.raises(DataFormatError, match=r"scenarios\['img 1-call'\] is missing"):
        load_prompts(str(bad))


# ------------------------------------------------------------------ requests sent, in order


def test_img_one_call_sends_a1_and_the_images_only(server, client):
    traces = run_scenario(client, make_cases(), "img 1-call")
    assert [t.answer for t in traces] == [f"It is Direct disease c{k}." for k in range(3)]
    assert {t.parsed_by for t in traces} == {"answer line"}
    assert [r["body"]["system"] for r in server.requests] == [A1] * 3
    assert sorted(layout(r["body"]) for r in server.requests) == [[f"image:c{k}/1", f"image:c{k}/2"] for k in range(3)]


def test_img_two_calls_sends_a2_then_the_differential_verbatim(server, client):
    assert answer_cases(client, make_cases(), "img 2-calls") == [f"It is Disease c{k}." for k in range(3)]
    assert [r["body"]["system"] for r in server.requests] == [A2_FIRST] * 3 + [A2_SECOND] * 3  # all first calls first
    assert sorted(layout(b) for b in bodies(server, A2_FIRST)) == [[f"image:c{k}/1", f"image:c{k}/2"] for k in range(3)]
    assert sorted(layout(b) for b in bodies(server, A2_SECOND)) == [[differential(f"c{k}")] for k in range(3)]


def test_img_then_text_second_call_has_the_differential_then_the_query(server, client):
    cases = make_cases()
    traces = run_scenario(client, cases, "img-then-text")
    assert [t.answer for t in traces] == [f"It is query-aware disease c{k}." for k in range(3)]
    assert [r["body"]["system"] for r in server.requests] == [A2_FIRST] * 3 + [A3_SECOND] * 3
    expected = [[f"Differentials:\n\n{differential(c.id)}\n\nAdditional information: {c.query}"] for c in cases]
    assert sorted(layout(b) for b in bodies(server, A3_SECOND)) == expected
    for trace in traces:
        assert len(trace.replies) == 2 and trace.replies[0].text == differential(trace.case_id)


def test_img_plus_text_first_call_has_the_query_then_the_images(server, client):
    cases = make_cases()
    assert answer_cases(client, cases, "img+text") == [f"It is Disease c{k}." for k in range(3)]
    assert [r["body"]["system"] for r in server.requests] == [A4_FIRST] * 3 + [A2_SECOND] * 3
    expected = [[f"Additional information: {c.query}", f"image:{c.id}/1", f"image:{c.id}/2"] for c in cases]
    assert sorted(layout(b) for b in bodies(server, A4_FIRST)) == expected
    assert sorted(layout(b) for b in bodies(server, A2_SECOND)) == [[differential(c.id)] for c in cases]


def test_scenarios_share_the_identical_first_call(server, client):
    cases = make_cases()
    answer_cases(client, cases, "img 2-calls")
    assert server.attempts == 6
    answer_cases(client, cases, "img-then-text")  # the same first call (A.2, images only): served from the cache
    assert server.attempts == 9
    answer_cases(client, cases, "img 2-calls")  # a rerun makes no calls
    assert server.attempts == 9
    assert (client.usage().calls, client.usage().cached_calls) == (9, 9)


def test_order_kept_with_many_cases(server, client):
    assert answer_cases(client, make_cases(10), "img 2-calls") == [f"It is Disease c{k}." for k in range(10)]
    assert server.max_in_flight <= 3


@pytest.mark.parametrize("name", ["img 3-calls", "IMG 1-CALL", ""])
def test_unknown_scenario(server, client, name):
    with pytest.raises(ParameterError, match="scenario"):
        answer_cases(client, make_cases(), name)
    assert server.requests == []


def test_case_errors_before_any_call(server, client):
    with pytest.raises(ParameterError, match="'bare' has no images"):
        answer_cases(client, [*make_cases(1), M3GCase(id="bare", images=[], query="q")], "img 2-calls")
    for name in ("img+text", "img-then-text"):
        with pytest.raises(ParameterError, match="empty query"):
            answer_cases(client, [M3GCase(id="silent", images=[image_png("x/1")], query=" ")], name)
    assert server.requests == []
    assert answer_cases(client, [M3GCase(id="silent", images=[image_png("x/1")])], "img 2-calls") == ["It is Disease x."]


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(("reply", "name", "how"), [
    ("The vesicles suggest eczema.\n\nAnswer: Dyshidrotic eczema", "Dyshidrotic eczema", "answer line"),
    ("...\n**Answer:** Psoriasis", "Psoriasis", "answer line"),
    ("...\nanswer :  tinea corporis.\n", "tinea corporis", "answer line"),
    ("ANSWER:Lichen planus", "Lichen planus", "answer line"),
    ("Answer: [Urticaria]", "Urticaria", "answer line"),
    ("My answer: maybe eczema\nAnswer: Scabies", "Scabies", "answer line"),  # the last one counts
    ("Describes the rash.\nMost likely: Impetigo.", "Most likely: Impetigo", "fallback"),
    ("", "", "fallback"),
])
def test_answer_line_parsing_is_robust_with_a_clear_fallback(reply, name, how):
    parsed, parsed_by = parse_answer(reply, "answer_line")
    assert parsed == name and parsed_by.startswith(how)
    assert answer_sentence(parsed) == (f"It is {name}." if name else "")


def test_fallback_is_recorded_in_the_trace(server, client):
    server.responder = lambda body: "The rash looks like eczema.\nDyshidrotic eczema"
    (trace,) = run_scenario(client, make_cases(1), "img 1-call")
    assert trace.answer == "It is Dyshidrotic eczema." and trace.parsed_by.startswith("fallback: no 'Answer:' line")


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
def test_name_parsing(reply, name):
    assert diagnosis_name(reply) == name == parse_answer(reply, "name")[0]


def test_case_from_item(tmp_path):
    item = {"id": "ENC1", "image_paths": [tmp_path / "IMG_ENC1_00001.jpg"], "text": "Rash. Red itchy patches."}
    case = case_from_item(item)
    assert case == M3GCase(id="ENC1", images=[str(tmp_path / "IMG_ENC1_00001.jpg")], query="Rash. Red itchy patches.")
    with pytest.raises(ParameterError, match="image_paths"):
        case_from_item({"id": "x", "text": "t"})


# ------------------------------------------------------------------ dry run


def real_png(width: int, height: int) -> bytes:
    """A real PNG of the given size."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 50, 50)).save(buffer, format="PNG")
    return buffer.getvalue()


def photo_cases(tmp_path, n: int = 3) -> list[M3GCase]:
    """n cases with two 300 x 150 photos on disk each (60 tokens per photo)."""
    cases = []
    for k in range(n):
        paths = []
        for i in (1, 2):
            path = tmp_path / f"IMG_ENC{k}_0000{i}.png"
            path.write_bytes(real_png(300, 150))
            paths.append(str(path))
        cases.append(M3GCase(id=f"ENC{k}", images=paths, query=f"Small blisters on the palm, case {k}."))
    return cases


def test_image_token_estimate_follows_the_resizing_rule():
    assert image_tokens(300, 150) == 60  # 45000 / 750
    assert image_tokens(1000, 1000) == 1334
    assert image_tokens(3000, 2000) == 1600  # long side 1568 then the ~1600-token cap


def test_dry_run_shows_the_first_case_requests_and_estimates_the_split(tmp_path):
    cases = photo_cases(tmp_path)
    plan = dry_run(cases, "claude-opus-4-7", split="val")
    assert (plan.n_cases, plan.first_case, list(plan.requests)) == (3, "ENC0", list(SCENARIOS))
    first, second = plan.requests["img+text"]
    content = first["messages"][0]["content"]
    assert first["system"] == A4_FIRST and first["model"] == "claude-opus-4-7" and first["max_tokens"] == 1024
    assert content[0] == {"type": "text", "text": f"Additional information: {cases[0].query}"}
    assert [b["source"]["data"] for b in content[1:]] == [
        f"<base64 of IMG_ENC0_0000{i}.png: {len(real_png(300, 150)):,} bytes, 300 x 150 px, ~60 tokens>" for i in (1, 2)]
    assert second["messages"][0]["content"] == [{"type": "text", "text": "<the reply of call 1 (the differential)>"}]
    (only,) = plan.requests["img 1-call"]
    assert only["system"] == A1 and [b["type"] for b in only["messages"][0]["content"]] == ["image", "image"]
    rows = {row["scenario"]: row for row in plan.table()}
    assert [rows[n]["calls"] for n in (*SCENARIOS, "total")] == [3, 6, 3, 6, 18]  # A.3 reuses A.2's first calls
    a1_tokens = math.ceil(len(A1) / 3.5) + 2 * 60  # system prompt at 3.5 characters per token, no text, two photos
    assert estimate_tokens(build_request(scenario("img 1-call").calls[0], cases[0])) == a1_tokens
    assert rows["img 1-call"]["input tokens"] == 3 * a1_tokens
    assert rows["img 1-call"]["output tokens (assumed)"] == 3 * 400
    assert rows["img 1-call"]["cost USD"] == round((3 * a1_tokens * 5 + 1200 * 25) / 1e6, 4)
    assert rows["total"]["input tokens"] == sum(rows[n]["input tokens"] for n in SCENARIOS)
    assert rows["total"]["cost USD at most"] > rows["total"]["cost USD"] > 0
    text = str(plan)
    assert plan.token_source.startswith("estimated") and "input tokens: estimated" in text
    assert "base64 of IMG_ENC0_00001.png" in text and "iVBOR" not in text  # summarised, never the base64 itself
    assert "$5 / $25 per million" in text and "platform.claude.com" in text and not plan.model_note


def test_dry_run_of_the_papers_retired_model_notes_it_and_prices_it(tmp_path):
    plan = dry_run(photo_cases(tmp_path, 1), "claude-3-opus-20240229", scenarios=["img 2-calls"])
    row = plan.table()[0]
    assert row["cost USD"] == round((row["input tokens"] * 15 + row["output tokens (assumed)"] * 75) / 1e6, 4)
    assert "retired by Anthropic on 2026-01-05, so a real run stops" in plan.model_note and "-p claude_model" in plan.model_note
    assert plan.model_note in str(plan)


def test_dry_run_of_an_unknown_model_is_one_clear_error(tmp_path):
    with pytest.raises(ParameterError, match=r"claude_model='claude-opus-47'.*-p claude_model NAME.*"
                                             r"paper used claude-3-opus-20240229"):
        dry_run(photo_cases(tmp_path, 1), "claude-opus-47")


def test_dry_run_counts_first_calls_with_the_sdk_when_reachable(server, client, tmp_path):
    cases = photo_cases(tmp_path, 2)
    plan = dry_run(cases, client.model, scenarios=["img 1-call"], counter=client)
    assert plan.token_source.startswith("counted by the SDK")
    assert plan.table()[0]["input tokens"] == sum(count_tokens(b) for b in server.count_requests[1:])
    assert len(server.count_requests) == 3 and server.requests == []  # a probe, then one count per case; no message
    down = ClaudeClient(client.model, tmp_path / "c2", base_url="http://127.0.0.1:9", max_retries=0, timeout=0.5,
                        progress=False)
    fallback = dry_run(cases, client.model, scenarios=["img 1-call"], counter=down)
    assert fallback.token_source.startswith("estimated") and "not reachable" in fallback.token_source


def test_claude_runs_only_when_asked_and_checks_model_and_key_first(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-x")
    check_claude_run(False, "claude-3-opus-20240229")  # not asked: neither the key nor the retired model matters
    with pytest.raises(ParameterError, match="-p claude_model"):
        check_claude_run(True, "claude-3-opus-20240229")
    check_claude_run(True, "claude-opus-4-7")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ParameterError, match="claude_run=True .* ANTHROPIC_API_KEY"):
        check_claude_run(True, "claude-opus-4-7")
    with pytest.raises(ParameterError, match="claude_run='yes'"):
        check_claude_run("yes", "claude-opus-4-7")

