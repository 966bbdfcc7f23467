"""The M3G paper's label pipeline through the real openai SDK against the local fake server: chat and embeddings
request shapes, cache, retries, clear errors, the label prompt and parsing, and the study wiring (LLM labels +
API label embeddings as the text tower of label-CLIP)."""

from __future__ import annotations

import numpy as np
import pytest
from llm_fake_server import EMBED_DIM, FakeMessagesServer, fake_embedding
from test_m3g_clip import _write_dermavqa

from medvl_core.errors import ParameterError
from medvl_core.llm import openai_client
from medvl_core.llm.base import LLMRequestError
from medvl_core.llm.openai_client import MissingOpenAIKeyError, OpenAIClient
from medvl_core.studies.m3g_answer_generation.llm_labels import label_prompt, label_request, llm_labels, parse_label

KEY = "sk-openai-test-SECRET-42"


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    """The test key, from the environment only."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def label_responder(body: dict) -> str:
    """Answer a label request with the first known disease named in it, else 'Label: none'."""
    text = body["messages"][-1]["content"]
    for name in ("psoriasis", "melanoma", "vitiligo"):
        if name in text.lower():
            return f"Label: {name.capitalize()}."
    return "Label: none"


def make_client(server, tmp_path, **options) -> OpenAIClient:
    """A client on the fake server with tiny backoff."""
    settings = {"base_url": f"{server.base_url}/v1", "backoff_base": 0.001, "backoff_max": 0.01, "timeout": 2.0,
                "progress": False}
    return OpenAIClient(tmp_path / "cache", **{**settings, **options})


def test_chat_request_shape_key_and_cache(tmp_path):
    with FakeMessagesServer() as server:
        client = make_client(server, tmp_path)
        first = client.complete("SYSTEM", "Answers:\n1. It is psoriasis.")
        again = client.complete("SYSTEM", "Answers:\n1. It is psoriasis.")
    assert first.text == again.text == "echo: Answers:\n1. It is psoriasis." and again.cached and not first.cached
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == "gpt-4-turbo" and body["temperature"] == 0.0 and body["max_tokens"] == 64
    assert body["messages"] == [{"role": "system", "content": "SYSTEM"},
                                {"role": "user", "content": "Answers:\n1. It is psoriasis."}]
    usage = client.usage()
    assert (usage.calls, usage.cached_calls, usage.attempts) == (1, 1, 1) and usage.input_tokens > 0
    assert KEY not in "".join(p.read_text() for p in (tmp_path / "cache").glob("*.json"))


def test_retries_then_gives_up_with_a_clear_error(tmp_path):
    with FakeMessagesServer() as server:
        client = make_client(server, tmp_path, max_retries=2)
        server.inject(429)
        server.inject(500)
        assert client.complete("s", "t").text == "echo: t"
        assert server.attempts == 3 and client.usage().attempts == 3
        server.inject(503, times=3)
        with pytest.raises(LLMRequestError, match="OpenAI API still failing after 3 attempts"):
            client.complete("s", "other")


@pytest.mark.parametrize(("status", "message"), [(401, "OPENAI_API_KEY"), (404, "-p label_model"),
                                                 (400, "refused the request")])
def test_refusals_are_not_retried_and_say_what_to_do(tmp_path, status, message):
    with FakeMessagesServer() as server:
        server.inject(status)
        with pytest.raises(LLMRequestError, match=message):
            make_client(server, tmp_path).complete("s", "t")
        assert server.attempts == 1


def test_missing_key_names_the_variable_and_the_offline_alternative(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(MissingOpenAIKeyError, match=r"OPENAI_API_KEY.*label_source responses"):
        OpenAIClient(tmp_path)
    with pytest.raises(ParameterError, match="chat_model"):
        OpenAIClient(tmp_path, chat_model="", api_key="k")


def test_embeddings_keep_order_batch_and_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(openai_client, "EMBED_BATCH", 2)
    texts = ["psoriasis", "melanoma", "vitiligo", "psoriasis"]
    with FakeMessagesServer() as server:
        client = make_client(server, tmp_path, embedding_model="text-embedding-3-large")
        vectors = client.embed(texts)
        again = make_client(server, tmp_path).embed(["vitiligo", "melanoma"])
    assert vectors.shape == (4, EMBED_DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors[1], fake_embedding("melanoma"), atol=1e-6)
    np.testing.assert_array_equal(vectors[0], vectors[3])
    np.testing.assert_array_equal(again, vectors[[2, 1]])
    bodies = [r["body"] for r in server.requests]
    assert [r["path"] for r in server.requests] == ["/v1/embeddings"] * 2  # 3 distinct texts, batches of 2; rerun cached
    assert [b["input"] for b in bodies] == [["psoriasis", "melanoma"], ["vitiligo"]]
    assert {b["model"] for b in bodies} == {"text-embedding-3-large"}


def test_label_prompt_request_and_parsing():
    prompt = label_prompt()
    assert "not printed in the paper" in prompt["source"] and prompt["model"] == "gpt-4-turbo"
    system, text = label_request(["It is  psoriasis.", "Looks like\npsoriasis vulgaris."])
    assert system == prompt["system"] and text == "Answers:\n1. It is psoriasis.\n2. Looks like psoriasis vulgaris."
    assert parse_label("Label: Psoriasis.") == "psoriasis"
    assert parse_label("Thinking...\nLabel: x\n**Label: [Atopic  Dermatitis]**") == "atopic dermatitis"
    assert parse_label("Label: none") == parse_label("") == ""
    assert parse_label("Lichen planus") == "lichen planus"  # no "Label:" line: the first line


def test_llm_labels_ask_once_per_case_with_answers(tmp_path):
    with FakeMessagesServer(responder=label_responder) as server:
        labels = llm_labels(make_client(server, tmp_path),
                            [["It is psoriasis."], [], ["A rash."], ["melanoma?"], ["It is psoriasis."]])
    assert labels == ["psoriasis", "", "", "melanoma", "psoriasis"]
    assert len(server.requests) == 3  # no call for the case without answers, one for the two identical ones
    assert server.requests[0]["body"]["messages"][0]["content"] == label_prompt()["system"]


def test_study_uses_llm_labels_and_api_label_embeddings(data_root, tmp_path):
    from medvl_core.studies import m3g_answer_generation as m3g
    from medvl_core.studies.m3g_answer_generation.knn import label_embeddings
    from medvl_core.studies.m3g_answer_generation.prepare import label_text_tower
    from medvl_core.train import TrainConfig

    root = data_root / "dermavqa"
    _write_dermavqa(root)
    assert m3g.label_client("world", "bundled:minilm") is None
    with pytest.raises(ParameterError, match="label_source"):
        m3g.label_client("gpt", "bundled:minilm")
    with FakeMessagesServer(responder=label_responder) as server:
        client = m3g.label_client("llm", "openai:text-embedding-3-large", cache=tmp_path / "cache",
                                  base_url=f"{server.base_url}/v1", backoff_base=0.001)
        data = m3g.prepare_m3g("dermavqa", m3g.choose_dictionary("llm", "dermavqa"), ("train", "val"), "tiny:cnn",
                               "openai:text-embedding-3-large", 32, root=root, label_client=client)
        with pytest.raises(ParameterError, match="embedding model is 'other'"):
            label_text_tower("openai:other", data.label_names, client=client)
    assert data.label_names == ["melanoma", "psoriasis", "vitiligo"]
    references = data.train.dataset.column("references")
    assert all(label and f"It is {label}." in refs for label, refs in zip(data.train.labels, references))
    assert data.label_features.shape == (3, EMBED_DIM)
    np.testing.assert_allclose(data.label_features[0].numpy(), fake_embedding("melanoma"), atol=1e-6)
    fit = m3g.fit_label_clip(data, 8, TrainConfig(epochs=1, device="cpu", progress=False), embed_dim=8)
    assert label_embeddings(fit.model, data).shape == (3, 8)
    paths = [r["path"] for r in server.requests]
    # 3 distinct discussions, asked once each (the valid split repeats them: cache hits), one embeddings batch
    assert paths.count("/v1/embeddings") == 1 and paths.count("/v1/chat/completions") == 3
