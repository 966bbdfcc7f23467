"""deltaBLEU throughput vs sacreBLEU (peer: ``sacrebleu.corpus_bleu``, weights all 1).

Same synthetic hypotheses / references (1-5 references per case, fixed seed) scored by
``medvl_core.eval.deltableu.delta_bleu`` and by ``sacrebleu.corpus_bleu`` at 100, 10k and 100k
cases (about a minute in all on 2 cores). Scores must be equal.
Prints cases/s for both and the ratio ours/sacrebleu last. Not part of ``make test``.
"""

from __future__ import annotations

import random
import time

import sacrebleu

from medvl_core.eval.deltableu import delta_bleu

WORDS = ("the lesion is a red scaly plaque on the left forearm with mild itching apply topical "
         "steroid cream twice daily see a dermatologist if it spreads fungal infection likely "
         "keep the area dry avoid scratching, . ?").split()
SIZES = (100, 10_000, 100_000)


def make_cases(n: int, seed: int = 0):
    """n hypotheses and their 1-5 references each (short answers, shared vocabulary)."""
    rng = random.Random(seed)

    def sentence():
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30)))

    hyps = [sentence() for _ in range(n)]
    refs = [[sentence() for _ in range(rng.randint(1, 5))] for _ in range(n)]
    return hyps, refs


def streams(refs):
    """sacreBLEU's reference streams: stream k holds case i's k-th reference or None."""
    k = max(len(r) for r in refs)
    return [[r[j] if j < len(r) else None for r in refs] for j in range(k)]


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def run(n: int) -> tuple[float, float]:
    hyps, refs = make_cases(n, seed=n)
    ours, t_ours = timed(delta_bleu, hyps, refs, weights=[[1.0] * len(r) for r in refs])
    peer, t_peer = timed(sacrebleu.corpus_bleu, hyps, streams(refs), force=True)
    assert abs(ours.score - peer.score) < 1e-9, (ours.score, peer.score)
    print(f"n={n:>7,d}  BLEU={ours.score:8.4f} (sacrebleu {peer.score:8.4f})  "
          f"ours {n / t_ours:>10,.0f} cases/s ({t_ours:6.2f} s)  sacrebleu {n / t_peer:>10,.0f} cases/s "
          f"({t_peer:6.2f} s)  ratio {t_peer / t_ours:5.2f}")
    return t_ours, t_peer


def main() -> None:
    results = {n: run(n) for n in SIZES}
    t_ours, t_peer = results[SIZES[-1]]
    print(f"deltaBLEU ratio ours/sacrebleu (cases/s at {SIZES[-1]:,d} cases): {t_peer / t_ours:.2f}")


if __name__ == "__main__":
    main()
