"""SynthDerm wording: lay queries (context, sometimes a self-diagnosis) and responder answers with annotations."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from .synth_derm_conditions import BY_NAME, CONDITIONS, Condition

WHO = ("I have", "My husband has", "My wife has", "My son ({age} years old) has", "My daughter ({age} years old) has",
       "Male, {age} years old. He has", "Female, {age} years old. She has", "My father ({age}) has", "My mother ({age}) has")
TITLES = ("What is this on my {site}?", "Please help: {lay} on the {site}", "Skin problem for {duration}, what is it?",
          "What skin disease is this?", "Rash on the {site}", "Please take a look at my {site}")
SELF_DX = ("I think it is {s}.", "A pharmacist said it is {s}.", "Could it be {s}?", "Someone online said it is {s}.")
TRIED = ("I used a steroid cream but it did not help.", "I tried an antifungal cream with no change.",
         "I took antibiotics for a week but it is the same.", "Calamine lotion did not help.")
ASK_TREAT = ("What is it and how do I treat it?", "What medicine should I use?", "How should it be treated?")
ASK_DX = ("What is it?", "Is it serious?", "What disease is this?")
VAGUE = ("a rash", "some spots", "a skin problem", "something strange", "a few marks")
SHORT = ("It is {x}.", "{x}.", "Typical {x}.", "Looks like {x}.", "Consider {x}.", "This is {x}.")
DIFFERENTIAL = ("Could be {x} or {y}.", "{x} or {y}; a biopsy would help.", "Consider {x}; differential diagnosis {y}.")
NEGATION = ("Not {s}, it is {x}.", "This is not {s}. Looks like {x}.")
GENERAL = ("Please see a dermatologist in person.", "A biopsy is needed to confirm.", "Need more history and a clearer photo.")
RESPONSE_KINDS = ("short", "advice", "differential", "negation", "advice_only", "general")
RESPONSE_P = (0.3, 0.25, 0.15, 0.12, 0.1, 0.08)
PIECES = {"short": (1, 0), "advice": (1, 1), "differential": (1, 0), "negation": (1, 0), "advice_only": (0, 1),
          "general": (0, 0)}  # kind -> (states a diagnosis, gives treatment)


@dataclass(frozen=True)
class Context:
    """What the asker says about the case."""

    site: str
    days: int
    itch: bool
    age: int
    self_dx: str  # canonical name or ""
    asks_treatment: bool
    vague: bool  # the asker does not describe the lesions


def _pick(rng: np.random.Generator, options):
    """One element of a sequence."""
    return options[int(rng.integers(0, len(options)))]


def _cap(text: str) -> str:
    """Upper-case the first character."""
    return text[:1].upper() + text[1:]


def duration_text(days: int) -> str:
    """'3 days', '2 weeks', '4 months', '2 years'."""
    for unit, size in (("year", 365), ("month", 30), ("week", 7)):
        if days >= 2 * size:
            return f"{days // size} {unit}s"
    return f"{days} day{'s' if days != 1 else ''}"


def spoken_name(cond: Condition, rng: np.random.Generator, p_alias: float = 0.25) -> str:
    """The canonical name, or with probability `p_alias` one of its aliases."""
    return _pick(rng, cond.aliases) if cond.aliases and rng.random() < p_alias else cond.name


# ------------------------------------------------------------------ queries

def draw_context(cond: Condition, rng: np.random.Generator, p_self: float, p_wrong: float, p_vague: float) -> Context:
    """Site, duration, itch, age, an optional (possibly wrong) self-diagnosis and vagueness for a case of `cond`."""
    lo, hi = cond.days
    days = int(round(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
    self_dx = ""
    if rng.random() < p_self:
        self_dx = _pick(rng, cond.confusers) if rng.random() < p_wrong else cond.name
    return Context(site=_pick(rng, cond.sites), days=days, itch=bool(rng.random() < cond.itch),
                   age=int(rng.integers(3, 80)), self_dx=self_dx, asks_treatment=bool(rng.random() < 0.6),
                   vague=bool(rng.random() < p_vague))


def compose_query(cond: Condition, ctx: Context, rng: np.random.Generator) -> tuple[str, str]:
    """(title, content) of a lay query in English."""
    lay, duration = _pick(rng, VAGUE) if ctx.vague else cond.lay, duration_text(ctx.days)
    spoken_self = spoken_name(BY_NAME[ctx.self_dx], rng, 0.5) if ctx.self_dx else ""
    title = f"Is this {spoken_self}?" if spoken_self and rng.random() < 0.5 else _pick(rng, TITLES)
    title = title.format(site=ctx.site, lay=lay, duration=duration)
    who = _pick(rng, WHO).format(age=ctx.age)
    parts = [f"{who} had {lay} on the {ctx.site} for {duration}."]
    parts.append(_pick(rng, ("It is very itchy.", "It itches, especially at night.")) if ctx.itch
                 else _pick(rng, ("It does not itch.", "No itching.", "It is a bit painful.")))
    if rng.random() < 0.3:
        parts.append(_pick(rng, TRIED))
    if spoken_self and not title.startswith("Is this"):
        parts.append(_pick(rng, SELF_DX).format(s=spoken_self))
    parts.append(_pick(rng, ASK_TREAT if ctx.asks_treatment else ASK_DX))
    return _cap(title), " ".join(parts)


# ------------------------------------------------------------------ responses

def responder_accuracy(validation_level: str, rank_level: str, base: float) -> float:
    """Probability that a responder names the true condition: higher for md-validated and high-rank authors."""
    rank = 0 if rank_level == "unk" else int(rank_level.split("_")[1])
    bonus = 0.1 * validation_level.startswith("md") + 0.1 * (rank >= 4) + 0.05 * (rank >= 6)
    return min(0.98, base * (0.75 + bonus))


def _other(cond: Condition, rng: np.random.Generator, exclude: set) -> Condition:
    """A confuser of `cond` (70%) or any other condition, not in `exclude`."""
    pool = [BY_NAME[c] for c in cond.confusers if c not in exclude]
    if not pool or rng.random() < 0.3:
        pool = [c for c in CONDITIONS if c.name not in exclude | {cond.name}]
    return _pick(rng, pool)


def compose_response(truth: Condition, ctx: Context, correct: bool, rng: np.random.Generator) -> tuple[str, str, list[str]]:
    """(kind, English text, canonical names mentioned) of one answer."""
    named = truth if correct else _other(truth, rng, {truth.name})
    kind = str(rng.choice(RESPONSE_KINDS, p=RESPONSE_P))
    x = spoken_name(named, rng)
    if kind == "negation" and not (ctx.self_dx and ctx.self_dx != named.name):
        kind = "short"
    if kind == "short":
        return kind, _cap(_pick(rng, SHORT).format(x=x)), [named.name]
    if kind == "advice":
        return kind, f"{_cap(_pick(rng, SHORT).format(x=x))} {named.advice}", [named.name]
    if kind == "differential":
        second = truth if not correct and rng.random() < 0.5 else _other(named, rng, {named.name})
        text = _pick(rng, DIFFERENTIAL).format(x=x, y=spoken_name(second, rng))
        return kind, _cap(text), [named.name, second.name]
    if kind == "negation":
        text = _pick(rng, NEGATION).format(s=spoken_name(BY_NAME[ctx.self_dx], rng), x=x)
        return kind, _cap(text), [named.name]
    if kind == "advice_only":
        return kind, named.advice, []
    return kind, _pick(rng, GENERAL), []


def annotate(kinds: list[str], mentions: list[list[str]], asks_treatment: bool) -> tuple[list[float], list[float], str]:
    """(completeness, contains_freq_ans, most frequent answer) for a case's responses."""
    counts = Counter(name for names in mentions for name in names[:1])
    order = [name for names in mentions for name in names[:1]]
    frequent = max(counts, key=lambda name: (counts[name], -order.index(name))) if counts else ""
    completeness = []
    for kind in kinds:
        dx, treat = PIECES[kind]
        completeness.append(1.0 if dx and (treat or not asks_treatment) else 0.5 if dx or treat else 0.0)
    freq = [1.0 if frequent and frequent in names else 0.0 for names in mentions]
    return completeness, freq, frequent
