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
SHORT = ("It is {x}.", "Typical {x}.", "Looks like {x}.", "Consider {x}.", "This is {x}.",
         "Should be {x} based on the picture.", "It is probable to be {x}.", "Suspect it is {x}.",
         "Looks like it is {x}.")
DIFFERENTIAL = ("{x} or {y}.", "Could be {x} or {y}.", "{x} or {y}; a biopsy would help.",
                "Consider {x}; differential diagnosis {y}.")
NEGATION = ("Not {s}.", "Not {s}, it is {x}.", "This is not {s}. Looks like {x}.", "It is not {s}.")
VARIANTS = ("chronic {x}", "acute {x}", "localized {x}", "early {x}", "{x} with infection", "{x} on the skin",
            "atypical {x}")
GENERAL = ("Please see a dermatologist in person.", "A biopsy is needed to confirm.",
           "Need more history and a clearer photo.", "Treatment is relatively easy.",
           "Should keep a close eye on that.", "Avoid scratching and hot water.")
# Kinds of answer and their default shares (WorldParams.mix_*), after the English responses of the real DermaVQA
# iiyi test split (test_ht.json, github.com/wyim/DermaVQA commit 686a570; 926 responses, measured with the dermavqa
# loader): 49.8 % have 1-3 words (mostly a bare condition name), 28.7 % 4-10 words, 21.5 % more than 10 words (4.2 %
# more than 30); 9.6 % contain a negation word; 29.5 % start in lower case. The M3G paper (Xie et al. 2024, Secs. 4, 6):
# answers are "in many cases merely the skin condition", and professionals respond with "not [disease label]".
RESPONSE_KINDS = ("bare", "short", "discussion", "differential", "negation", "no_diagnosis")
DEFAULT_RESPONSE_MIX = (0.45, 0.22, 0.18, 0.05, 0.05, 0.05)  # shares of RESPONSE_KINDS (sources above)
PIECES = {"bare": (1, 0), "short": (1, 0), "discussion": (1, 1), "differential": (1, 0), "negation": (1, 0),
          "negation_only": (0, 0), "advice_only": (0, 1), "general": (0, 0)}  # written kind -> (states a diagnosis, gives treatment)


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


def spoken_name(cond: Condition, rng: np.random.Generator, p_alias: float = 0.25, p_variant: float = 0.0) -> str:
    """The canonical name, or with probability `p_alias` one of its aliases; with probability `p_variant` qualified
    ("chronic psoriasis", "psoriasis with infection"), as DermaVQA's responders name subtypes and stages."""
    name = _pick(rng, cond.aliases) if cond.aliases and rng.random() < p_alias else cond.name
    if rng.random() < p_variant:
        name = _pick(rng, VARIANTS).format(x=name)
    return name


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


def compose_response(truth: Condition, ctx: Context, correct: bool, rng: np.random.Generator, mix=None,
                     p_lowercase: float = 0.0, p_variant: float = 0.0) -> tuple[str, str, list[str]]:
    """(kind, English text, canonical names mentioned) of one answer; `mix`: the shares of RESPONSE_KINDS."""
    named = truth if correct else _other(truth, rng, {truth.name})
    mix = _shares(mix)
    kind = str(rng.choice(RESPONSE_KINDS, p=mix))
    x = spoken_name(named, rng, p_variant=p_variant)
    kind, text, names = _compose(kind, named, truth, ctx, correct, x, rng)
    lower = rng.random() < p_lowercase
    return kind, (text[:1].lower() + text[1:]) if lower else _cap(text), names


def _shares(mix) -> np.ndarray:
    """Response-kind probabilities (default: the DermaVQA-like mix), normalised."""
    mix = np.asarray(DEFAULT_RESPONSE_MIX if mix is None else mix, dtype=float)
    return mix / mix.sum()


def _compose(kind: str, named: Condition, truth: Condition, ctx: Context, correct: bool, x: str, rng):
    """(written kind, text, names) of one answer of `kind` naming `named` (spoken as `x`)."""
    if kind == "bare":
        return kind, x + _pick(rng, ("", ".")), [named.name]
    if kind == "short":
        return kind, _pick(rng, SHORT).format(x=x), [named.name]
    if kind == "discussion":
        opener = _pick(rng, (x + ".", *SHORT)).format(x=x)
        return kind, f"{_cap(opener)} {named.advice} {_pick(rng, GENERAL)}", [named.name]
    if kind == "differential":
        second = truth if not correct and rng.random() < 0.5 else _other(named, rng, {named.name})
        return kind, _pick(rng, DIFFERENTIAL).format(x=x, y=spoken_name(second, rng)), [named.name, second.name]
    if kind == "negation":
        negated = BY_NAME[ctx.self_dx] if ctx.self_dx and ctx.self_dx != named.name else _other(named, rng, {named.name})
        template = _pick(rng, NEGATION)
        text = template.format(s=spoken_name(negated, rng), x=x)
        return (kind, text, [named.name]) if "{x}" in template else ("negation_only", text, [])
    if rng.random() < 0.5:
        return "advice_only", named.advice, []
    return "general", _pick(rng, GENERAL), []


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
