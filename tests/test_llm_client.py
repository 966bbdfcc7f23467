"""ClaudeClient against a local fake Messages server driven through the real anthropic SDK: request shape,
retries (429/500/529/timeouts), the on-disk cache, the concurrency limit, usage and the missing-key error."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
from llm_fake_server import FakeMessagesServer

from medvl_core.errors import DataFormatError, MedvlError, ParameterError
from medvl_core.llm import ClaudeClient, LLMRequest, LLMRequestError, MissingAPIKeyError, api_key_available
from medvl_core.llm.claude_content import image_media_type
from medvl_core.llm.claude_models import model_price

KEY = "sk-ant-test-SECRET-0123456789"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16 + b"png-payload"
JPEG = b"\xff\xd8\xff\xe0" + b"jpeg-payload"
GIF = b"GIF89a" + b"gif-payload"
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"webp-payload"


@pytest.fixture
def server():
    """A running fake Messages server."""
    with FakeMessagesServer() as fake:
        yield fake


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    """The test key, from the environment only."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    return KEY


def make_client(server, tmp_path, model="claude-opus-4-7", **options) -> ClaudeClient:
    """A client pointed at the fake server with tiny backoff and a short timeout."""
    settings = {"base_url": server.base_url, "backoff_base": 0.001, "backoff_max": 0.01, "timeout": 2.0,
                "progress": False, "max_tokens": 64}
    return ClaudeClient(model, tmp_path / "cache", **{**settings, **options})


def sent_key(headers: dict) -> str | None:
    """The API key a request carried (x-api-key, or a Bearer token in SDKs that send keys that way)."""
    if "x-api-key" in headers:
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


# ------------------------------------------------------------------ request shape

def test_request_shape_images_before_text(server, tmp_path):
    jpeg_file = tmp_path / "case.jpg"
    jpeg_file.write_bytes(JPEG)
    reply = make_client(server, tmp_path).complete("SYSTEM PROMPT", "What is it?", [PNG, jpeg_file])
    assert reply.text == "echo: What is it?" and not reply.cached and reply.model == "claude-opus-4-7"
    assert reply.input_tokens > 0 and reply.output_tokens > 0
    (request,) = server.requests
    body = request["body"]
    assert request["path"] == "/v1/messages"
    assert body["model"] == "claude-opus-4-7" and body["system"] == "SYSTEM PROMPT"
    assert body["max_tokens"] == 64 and body["temperature"] == 0.0
    (message,) = body["messages"]
    assert message["role"] == "user"
    image_png, image_jpeg, text = message["content"]
    assert image_png["type"] == image_jpeg["type"] == "image"
    assert image_png["source"]["type"] == "base64" and image_png["source"]["media_type"] == "image/png"
    assert base64.b64decode(image_png["source"]["data"]) == PNG
    assert image_jpeg["source"]["media_type"] == "image/jpeg"
    assert base64.b64decode(image_jpeg["source"]["data"]) == JPEG
    assert text == {"type": "text", "text": "What is it?"}
    assert sent_key(request["headers"]) == KEY
    assert "anthropic-version" in request["headers"]


def test_temperature_none_is_omitted(server, tmp_path):
    make_client(server, tmp_path, temperature=None).complete("s", "t")
    assert "temperature" not in server.requests[0]["body"]


def test_api_key_argument_overrides_environment(server, tmp_path):
    make_client(server, tmp_path, api_key="sk-ant-explicit").complete("s", "t")
    assert sent_key(server.requests[0]["headers"]) == "sk-ant-explicit"


@pytest.mark.parametrize(("data", "media_type"), [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"),
                                                  (b"GIF87a...", "image/gif"), (WEBP, "image/webp")])
def test_media_type_from_bytes(data, media_type):
    assert image_media_type(data) == media_type


def test_unknown_image_format_and_missing_file_are_clear_errors(server, tmp_path):
    client = make_client(server, tmp_path)
    with pytest.raises(DataFormatError, match="PNG, JPEG, GIF or WEBP"):
        client.complete("s", "t", [b"BM not an image we send"])
    with pytest.raises(DataFormatError, match="nope.png"):
        client.complete("s", "t", [tmp_path / "nope.png"])
    with pytest.raises(ParameterError, match="bytes or file paths"):
        client.complete("s", "t", [123])
    assert server.requests == []


def test_oversized_image_is_reencoded_below_the_limit(server, tmp_path, monkeypatch):
    import io

    import numpy as np
    from PIL import Image

    from medvl_core.llm import claude_content

    noise = np.random.default_rng(0).integers(0, 256, (160, 240, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    monkeypatch.setattr(claude_content, "MAX_IMAGE_BYTES", 8000)
    assert buffer.tell() > 8000
    make_client(server, tmp_path).complete("s", "t", [buffer.getvalue(), PNG])
    big, small = server.requests[0]["body"]["messages"][0]["content"][:2]
    sent = base64.b64decode(big["source"]["data"])
    assert big["source"]["media_type"] == "image/jpeg" and len(sent) <= 8000
    assert Image.open(io.BytesIO(sent)).size[0] / Image.open(io.BytesIO(sent)).size[1] == pytest.approx(1.5, abs=0.05)
    assert base64.b64decode(small["source"]["data"]) == PNG  # within the limit: sent unchanged


# ------------------------------------------------------------------ retries

@pytest.mark.parametrize("status", [429, 500, 529])
def test_retries_after_injected_error(server, tmp_path, status):
    server.inject(status, times=2)
    client = make_client(server, tmp_path)
    reply = client.complete("s", "retry me")
    assert reply.text == "echo: retry me"
    assert server.attempts == 3
    usage = client.usage()
    assert usage.attempts == 3 and usage.calls == 1


def test_retries_after_timeouts(server, tmp_path):
    server.stall(1.5, times=2)
    client = make_client(server, tmp_path, timeout=0.3)
    assert client.complete("s", "slow").text == "echo: slow"
    assert server.attempts == 3 and client.usage().attempts == 3


def test_gives_up_after_max_retries(server, tmp_path):
    server.inject(529, times=10)
    client = make_client(server, tmp_path, max_retries=2)
    with pytest.raises(LLMRequestError, match=r"after 3 attempts.*529") as info:
        client.complete("s", "t")
    assert isinstance(info.value, MedvlError)
    assert server.attempts == 3
    assert not list((tmp_path / "cache").glob("*.json"))


@pytest.mark.parametrize(("status", "message"), [(400, "refused the request"), (401, "rejected the key")])
def test_client_errors_are_not_retried(server, tmp_path, status, message):
    server.inject(status, times=3)
    with pytest.raises(LLMRequestError, match=message) as info:
        make_client(server, tmp_path).complete("s", "t")
    assert server.attempts == 1
    assert KEY not in str(info.value)


def test_backoff_grows_and_is_capped(server, tmp_path):
    client = make_client(server, tmp_path, backoff_base=1.0, backoff_max=5.0)
    waits = [client._backoff(attempt) for attempt in range(6)]
    assert 0.5 <= waits[0] <= 1.0 and 2.0 <= waits[2] <= 4.0
    assert all(2.5 <= w <= 5.0 for w in waits[3:])


def test_retry_after_header_is_honoured_up_to_the_cap(server, tmp_path):
    client = make_client(server, tmp_path, backoff_base=0.001, backoff_max=3.0)
    asked = SimpleNamespace(response=SimpleNamespace(headers={"retry-after": "2"}))
    assert client._wait_seconds(0, asked) == 2.0
    assert make_client(server, tmp_path, backoff_max=0.5)._wait_seconds(0, asked) == 0.5
    assert client._wait_seconds(0, SimpleNamespace(response=None)) <= 0.001
    assert client._wait_seconds(0, SimpleNamespace(response=SimpleNamespace(headers={"retry-after": "soon"}))) <= 0.001


# ------------------------------------------------------------------ cache

def test_rerun_is_served_from_cache_without_http(server, tmp_path):
    first = make_client(server, tmp_path).complete("s", "cache me", [PNG])
    assert server.attempts == 1
    again = make_client(server, tmp_path)
    second = again.complete("s", "cache me", [PNG])
    assert server.attempts == 1
    assert second.cached and second.text == first.text
    assert (second.input_tokens, second.output_tokens) == (first.input_tokens, first.output_tokens)
    usage = again.usage()
    assert (usage.calls, usage.cached_calls, usage.attempts, usage.cost_usd) == (0, 1, 0, 0.0)


def test_cache_key_covers_model_prompts_images_and_settings(server, tmp_path):
    make_client(server, tmp_path).complete("s", "t", [PNG])
    variants = [
        make_client(server, tmp_path, model="claude-haiku-4-5").complete("s", "t", [PNG]),
        make_client(server, tmp_path).complete("s2", "t", [PNG]),
        make_client(server, tmp_path).complete("s", "t2", [PNG]),
        make_client(server, tmp_path).complete("s", "t", [PNG + b"x"]),
        make_client(server, tmp_path, max_tokens=65).complete("s", "t", [PNG]),
        make_client(server, tmp_path, temperature=0.5).complete("s", "t", [PNG]),
    ]
    assert not any(reply.cached for reply in variants)
    assert server.attempts == 7
    assert len(list((tmp_path / "cache").glob("*.json"))) == 7


def test_cache_file_content_has_no_key(server, tmp_path):
    make_client(server, tmp_path).complete("s", "t", [PNG])
    (path,) = (tmp_path / "cache").glob("*.json")
    assert len(path.stem) == 64
    entry = json.loads(path.read_text())
    assert entry["text"] == "echo: t" and entry["request"]["model"] == "claude-opus-4-7"
    assert len(entry["request"]["images_sha256"]) == 1
    for file in (tmp_path / "cache").rglob("*"):
        assert KEY not in file.read_text(errors="replace")
    assert KEY not in repr(make_client(server, tmp_path))


def test_cache_write_is_atomic(server, tmp_path, monkeypatch):
    import medvl_core.io as io

    def crash(*args):
        raise OSError("disk went away")

    monkeypatch.setattr(io.os, "replace", crash)
    with pytest.raises(OSError, match="disk went away"):
        make_client(server, tmp_path).complete("s", "t")
    assert list((tmp_path / "cache").iterdir()) == []  # no partial file, no temp file
    monkeypatch.undo()
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    make_client(server, tmp_path).complete("s", "t")
    assert [p.suffix for p in (tmp_path / "cache").iterdir()] == [".json"]


def test_corrupt_cache_file_is_a_clear_error(server, tmp_path):
    make_client(server, tmp_path).complete("s", "t")
    (path,) = (tmp_path / "cache").glob("*.json")
    path.write_text("{not json")
    with pytest.raises(DataFormatError, match=path.name):
        make_client(server, tmp_path).complete("s", "t")


# ------------------------------------------------------------------ concurrency, order, usage

def test_concurrency_limit_and_order(tmp_path):
    with FakeMessagesServer(delay=0.25) as server:
        client = make_client(server, tmp_path, max_concurrency=3)
        replies = client.complete_many([LLMRequest("s", f"question {k}") for k in range(9)])
    assert [r.text for r in replies] == [f"echo: question {k}" for k in range(9)]
    assert server.max_in_flight == 3


def test_concurrency_one_is_sequential(tmp_path):
    with FakeMessagesServer(delay=0.05) as server:
        make_client(server, tmp_path, max_concurrency=1).complete_many([LLMRequest("s", str(k)) for k in range(4)])
    assert server.max_in_flight == 1
    assert [r["body"]["messages"][0]["content"][-1]["text"] for r in server.requests] == ["0", "1", "2", "3"]


def test_usage_tokens_and_cost(server, tmp_path):
    client = make_client(server, tmp_path, max_concurrency=1)
    replies = client.complete_many([LLMRequest("s", "a"), LLMRequest("s", "b"), LLMRequest("s", "a")])
    usage = client.usage()
    assert [r.cached for r in replies] == [False, False, True]
    assert (usage.calls, usage.cached_calls, usage.attempts) == (2, 1, 2)
    assert usage.input_tokens == replies[0].input_tokens + replies[1].input_tokens > 0
    assert usage.output_tokens == replies[0].output_tokens + replies[1].output_tokens > 0
    price_in, price_out = model_price("claude-opus-4-7")[0]
    assert usage.cost_usd == pytest.approx((usage.input_tokens * price_in + usage.output_tokens * price_out) / 1e6)
    assert usage.as_dict()["calls"] == usage.calls and usage.price_known


def test_price_table_prefixes_and_fallback():
    assert model_price("claude-3-opus-20240229") == ((15.0, 75.0), True)
    assert model_price("claude-opus-4-5-20251101") == ((5.0, 25.0), True)
    assert model_price("claude-opus-4-1") == ((15.0, 75.0), True)
    price, known = model_price("some-future-model")
    assert not known and price == (15.0, 75.0)


# ------------------------------------------------------------------ key and parameters

def test_missing_key_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert not api_key_available()
    with pytest.raises(MissingAPIKeyError, match="export ANTHROPIC_API_KEY") as info:
        ClaudeClient("claude-opus-4-7", tmp_path)
    assert isinstance(info.value, MedvlError) and "rest of the notebook" in str(info.value)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "  ")
    assert not api_key_available()


def test_invalid_parameters(tmp_path):
    assert api_key_available()
    with pytest.raises(ParameterError, match="max_concurrency"):
        ClaudeClient("claude-opus-4-7", tmp_path, max_concurrency=0)
    with pytest.raises(ParameterError, match="model"):
        ClaudeClient("", tmp_path)


# ------------------------------------------------------------------ content layout, token counting, models

def test_text_first_layout_and_image_only_message(server, tmp_path):
    client = make_client(server, tmp_path)
    client.complete("s", "Additional information: rash", [PNG, JPEG], text_first=True)
    client.complete("s", "", [PNG])
    client.complete_many([LLMRequest("s", "q", (JPEG,), text_first=True)])
    first, image_only, many = (r["body"]["messages"][0]["content"] for r in server.requests)
    assert [b["type"] for b in first] == ["text", "image", "image"] and first[0]["text"] == "Additional information: rash"
    assert [b["source"]["media_type"] for b in first[1:]] == ["image/png", "image/jpeg"]
    assert [b["type"] for b in image_only] == ["image"]  # no empty text block
    assert [b["type"] for b in many] == ["text", "image"]


def test_layout_is_part_of_the_cache_key_only_when_text_first(server, tmp_path):
    client = make_client(server, tmp_path)
    client.complete("s", "t", [PNG])
    client.complete("s", "t", [PNG], text_first=True)
    client.complete("s", "t", [], text_first=True)  # no images: the same message as without the flag
    client.complete("s", "t", [])
    assert server.attempts == 3
    (entry,) = [json.loads(p.read_text()) for p in (tmp_path / "cache").glob("*.json")
                if json.loads(p.read_text())["request"].get("text_first")]
    assert entry["request"]["images_sha256"]
    assert "text_first" not in client._key_fields("s", "t", [PNG])  # images-then-text keys are unchanged


def test_count_tokens_uses_the_sdk_endpoint(server, tmp_path):
    from llm_fake_server import count_tokens

    client = make_client(server, tmp_path)
    n = client.count_tokens(LLMRequest("SYS", "Additional information: q", (PNG,), text_first=True))
    (body,) = server.count_requests
    assert n == count_tokens(body) > 0 and body["system"] == "SYS" and body["model"] == "claude-opus-4-7"
    assert [b["type"] for b in body["messages"][0]["content"]] == ["text", "image"]
    assert server.requests == []  # counting sends no message


def test_retired_model_is_refused_before_any_call(server, tmp_path):
    with pytest.raises(ParameterError, match=r"claude_model='claude-3-opus-20240229' was retired by Anthropic on "
                                             r"2026-01-05.*-p claude_model NAME.*paper used claude-3-opus-20240229"):
        make_client(server, tmp_path, model="claude-3-opus-20240229")
    assert server.attempts == 0


def test_sdk_end_of_life_dates_retire_models(monkeypatch):
    import datetime

    from medvl_core.llm import claude_models

    monkeypatch.setattr(claude_models, "sdk_deprecations", lambda: {"claude-x-1": datetime.date(2026, 6, 30)})
    assert claude_models.retired_on("claude-x-1", datetime.date(2026, 6, 29)) is None
    assert claude_models.retired_on("claude-x-1", datetime.date(2026, 7, 1)) == "2026-06-30"
    with pytest.raises(ParameterError, match="claude-x-1' was retired by Anthropic on 2026-06-30"):
        claude_models.check_model("claude-x-1", datetime.date(2026, 7, 1))
    assert claude_models._eol_date("January 22nd, 2027") == datetime.date(2027, 1, 22)


def test_unknown_model_names_the_parameter_and_the_paper_model(server, tmp_path):
    from medvl_core.llm.claude_models import check_known_model

    with pytest.raises(ParameterError, match=r"claude_model='claude-opsu-4-7' is not a model.*-p claude_model.*"
                                             r"claude-3-opus-20240229"):
        check_known_model("claude-opsu-4-7")
    check_known_model("claude-opus-4-7")
    server.inject(404)
    with pytest.raises(LLMRequestError, match=r"claude_model='claude-opus-4-7' is unknown to the Anthropic API or "
                                              r"retired.*-p claude_model NAME.*claude-3-opus-20240229"):
        make_client(server, tmp_path).complete("s", "t")


def test_llm_import_stays_light():
    code = "import sys, medvl_core.llm; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
