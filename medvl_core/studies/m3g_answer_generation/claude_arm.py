"""Table 1's Claude arm on a prepared split: the dry run by default, the scored scenarios when asked, and the
winning scenario's diagnoses through Table 4's post-processing."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from ...config import cache_dir
from ...errors import MedvlError, ParameterError
from ...llm.claude_models import retired_on
from ...llm.client import API_KEY_ENV, ClaudeClient, api_key_available
from .claude import case_from_item, diagnosis_of, run_scenario
from .dry_run import dry_run
from .prepare import M3GData, M3GSplit, head
from .prompts import SCENARIOS
from .scores import POSTPROCESSING, answers, score_row

CLAUDE_METRICS = {"img 1-call": "dbleu_claude_img_1_call", "img 2-calls": "dbleu_claude_img_2_calls",
                  "img-then-text": "dbleu_claude_img_then_text", "img+text": "dbleu_claude_img_plus_text"}
CLAUDE_TABLE4_SCENARIO = "img 2-calls"  # the winning Claude solution (Table 4's "Claude Solution" row)
TABLE1_POSTPROCESSING = "It is [label]. + query matching"  # Table 4's "Both" column repeats Table 1's 10.415


def claude_cases(data: M3GData, split: str, max_cases: int = 0) -> tuple[M3GSplit, list]:
    """The split's first `max_cases` cases (0: all) and their claude.M3GCase (images by path, query text)."""
    target = head(data.split(split), max_cases)
    return target, [case_from_item(record) for record in target.dataset.records]


def claude_texts(claude_answers, target: M3GSplit, dictionary: dict, post: str = TABLE1_POSTPROCESSING) -> list[str]:
    """The scored answers of one scenario: its diagnoses (answers without "It is ... .") through the `post` arm."""
    names = [diagnosis_of(answer) for answer in claude_answers]
    return answers(names, target, dictionary, *POSTPROCESSING[post])


def claude_rows(claude_answers: dict, target: M3GSplit, dictionary: dict, post: str = TABLE1_POSTPROCESSING,
                **extra) -> list[dict]:
    """Table 1's rows from each scenario's answers, scored as the paper did (both post-processing steps by default);
    `extra`: scenario -> extra columns (model, parse fallbacks)."""
    return [score_row(scenario, claude_texts(texts, target, dictionary, post), target, postprocessing=post,
                      **extra.get(scenario, {})) for scenario, texts in claude_answers.items()]


def claude_table(client, data: M3GData, split: str, scenarios=None, max_cases: int = 0,
                 post: str = TABLE1_POSTPROCESSING) -> tuple[pd.DataFrame, dict]:
    """Table 1: the Claude pipeline's scenarios (`claude`, Appendix A prompts) scored on `split`; (rows, answers)."""
    target, cases = claude_cases(data, split, max_cases)
    out, extra = {}, {}
    for scenario in scenarios or SCENARIOS:
        traces = run_scenario(client, cases, scenario)
        out[scenario] = [trace.answer for trace in traces]
        fallbacks = sum(trace.parsed_by.startswith("fallback") for trace in traces)
        extra[scenario] = {"model": client.model, "parse fallbacks": fallbacks}
    return pd.DataFrame(claude_rows(out, target, data.dictionary, post, **extra)), out


def sdk_token_counter(model: str, count_tokens: bool):
    """A ClaudeClient for the SDK's (free) token counting when asked for and `model` is served; else None (estimates)."""
    if not count_tokens or retired_on(model):
        return None
    if not api_key_available():
        raise ParameterError(f"claude_count_tokens=True asks the Anthropic API to count tokens and needs {API_KEY_ENV} "
                             "in the environment; export it, or keep claude_count_tokens=False (offline estimates)")
    return ClaudeClient(model, cache_dir("claude"), progress=False, timeout=20.0)


def claude_arm(data: M3GData, split: str, model: str, claude_run: bool, *, max_cases: int = 0, concurrency: int = 4,
               count_tokens: bool = False, show=None, temperature: float | None = 0.0, max_tokens: int = 1024,
               post: str = TABLE1_POSTPROCESSING) -> tuple[pd.DataFrame, dict, str, object]:
    """Table 1's Claude arm: the dry run unless `claude_run`; (rows, answers, outcome, plan or usage).

    `temperature` and `max_tokens` are the sampling settings of every call (the paper states neither); `post` the
    post-processing of the scored answers (the paper's Table 1: both steps). The outcome is "dry run", "ran" or
    "failed": a real run that fails (API errors after retries) fails alone, so Tables 2-4 still run; the returned
    object is then the error message.
    """
    if post not in POSTPROCESSING:
        raise ParameterError(f"claude post-processing {post!r} is not one of {list(POSTPROCESSING)}")
    if not claude_run:
        counter = sdk_token_counter(model, count_tokens)
        return pd.DataFrame(), {}, "dry run", claude_dry_run(data, split, model, max_cases=max_cases, counter=counter,
                                                             show=show, temperature=temperature, max_tokens=max_tokens)
    client = ClaudeClient(model, cache_dir("claude"), max_concurrency=concurrency, progress=False,
                          temperature=temperature, max_tokens=max_tokens)
    try:
        table, answers = claude_table(client, data, split, max_cases=max_cases, post=post)
    except MedvlError as exc:
        return pd.DataFrame(), {}, "failed", f"The Claude arm failed, alone (Tables 2-4 below do not need it): {exc}"
    return table, answers, "ran", client.usage().as_dict()


def claude_dry_run(data: M3GData, split: str, model: str, scenarios=None, max_cases: int = 0, counter=None,
                   show=None, temperature: float | None = 0.0, max_tokens: int = 1024):
    """Table 1 before any call: the first case's requests, and the calls, input tokens and cost on `split` (dry_run.DryRun).

    `show` names the scenarios whose requests are kept for printing (None: all); every scenario is priced.
    """
    _, cases = claude_cases(data, split, max_cases)
    plan = dry_run(cases, model, scenarios, split=split, counter=counter, max_tokens=max_tokens,
                   temperature=temperature)
    if show is None:
        return plan
    unknown = [name for name in show if name not in plan.requests]
    if unknown:
        raise ParameterError(f"claude_shown_requests names {unknown}; use scenarios of {list(plan.requests)}")
    return replace(plan, requests={name: plan.requests[name] for name in show})


def claude_postprocessing_table(data: M3GData, split: str, claude_answers: dict, max_cases: int = 0,
                                scenario: str = CLAUDE_TABLE4_SCENARIO) -> pd.DataFrame:
    """Table 4's Claude row: the scenario's diagnoses (its answers without "It is ... .") through each arm."""
    if scenario not in claude_answers:
        return pd.DataFrame()
    target = head(data.split(split), max_cases)
    names = [diagnosis_of(answer) for answer in claude_answers[scenario]]
    return pd.DataFrame([score_row(arm, answers(names, target, data.dictionary, *POSTPROCESSING[arm]), target)
                         for arm in POSTPROCESSING])
