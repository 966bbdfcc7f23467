import json

import numpy as np

from medvl_core import runs


def test_record_writes_and_merges_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv(runs.RUN_DIR_ENV, str(tmp_path / "run"))
    run = runs.start_run("meems")
    assert run.dir == tmp_path / "run"
    runs.record(auc=np.float64(0.75), n=np.int64(3))
    stored = runs.record(f1=float("nan"))
    assert stored == {"auc": 0.75, "n": 3, "f1": None}
    assert json.loads((run.dir / "metrics.json").read_text()) == stored


def test_start_run_defaults_to_interactive_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(runs.RUN_DIR_ENV, raising=False)
    monkeypatch.setenv("MEDVL_RUNS", str(tmp_path))
    assert runs.start_run("meems").dir == tmp_path / "interactive" / "meems"


def test_savefig_writes_png(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv(runs.RUN_DIR_ENV, str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    assert runs.start_run("x").savefig(fig, "line") is None
    assert (tmp_path / "figures" / "line.png").read_bytes()[:4] == b"\x89PNG"
    runs.current_run().savefig(fig, "umap_image-folder:/data/us")
    assert (tmp_path / "figures" / "umap_image-folder_data_us.png").is_file()
