"""The poster's claims that this run can pose (`claims`), each with what we measured and whether we agree."""

from __future__ import annotations

import pandas as pd


def claims(summary: pd.DataFrame, confounders: pd.DataFrame, subclasses: pd.DataFrame, tags: dict) -> pd.DataFrame:
    """The poster's claims that this run can pose, each with what we measured and whether we agree."""
    acc = summary["cv_accuracy_mean (random)"]
    med, non, rnd = (tags.get(k) for k in ("medical", "encoder", "random"))
    rows = []
    if med in acc and non in acc:
        gap = acc[med] - acc[non]
        rows.append(("Medical and non-medical encoders give similarly discriminative features (mean CV accuracy "
                     "within 5 points)", f"{acc[med]:.3f} vs {acc[non]:.3f}", abs(gap) < 0.05))
    if non in acc and rnd in acc:
        rows.append(("Pretrained features beat a random-init control", f"{acc[non]:.3f} vs {acc[rnd]:.3f}",
                     acc[non] > acc[rnd]))
    if not confounders.empty:
        lift = confounders.groupby("model", sort=False)["lift over chance"].mean()
        rows.append(("Background factors (plane, burned-in words, marks, scanner) are encoded although independent "
                     "of the class (mean confounder lift over chance at association 0)",
                     ", ".join(f"{m}: {v:.3f}" for m, v in lift.items()), bool((lift.drop([rnd] if rnd else [], errors="ignore") > 0.05).all())))
    if not subclasses.empty and "microbe" in set(subclasses["parent"]):
        micro = subclasses[subclasses["parent"] == "microbe"].set_index("model")["lift over chance"]
        rows.append(("HiCervix-like microbe subclasses are linearly separable (lift of CV accuracy over chance "
                     "within the microbe group; the poster finds PMC-15M models fail here, which no demo model is)",
                     ", ".join(f"{m}: {v:.3f}" for m, v in micro.items()), bool((micro > 0.1).any())))
    return pd.DataFrame(rows, columns=["claim (poster)", "this run", "agrees"])
