"""Published vs reproduced: one table from papers/<id>/published.yaml and a run's metrics."""

from __future__ import annotations

import pandas as pd


def comparison_table(published: dict, metrics: dict, produced_by: str = "this run") -> pd.DataFrame:
    """Rows from published.yaml's `compare:` list (label, published, metric) plus its headline.

    `produced_by` names the data and model behind our numbers so the table never passes a
    synthetic demo off as a reproduction of the paper's clinical result.
    """
    rows = []
    headline = published.get("headline") or {}
    if headline:
        rows.append({"quantity": f"{headline.get('metric', 'headline')} ({headline.get('setting', 'paper')})",
                     "published": headline.get("value"), "metric key": headline.get("metric_key", "-")})
    for entry in published.get("compare") or []:
        rows.append({"quantity": entry["label"], "published": entry.get("published"), "metric key": entry["metric"]})
    table = pd.DataFrame(rows, columns=["quantity", "published", "metric key"])
    table[f"reproduced: {produced_by}"] = [metrics.get(key, "not reproduced yet") if key != "-" else "not reproduced yet"
                                          for key in table["metric key"]]
    return table
