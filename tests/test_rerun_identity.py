"""The same notebook run twice records exactly the same metrics (every digit), on 2 threads.

The stand-in trains UniCLIP's per-domain-pair similarity and projections with the engine, the part of loss
relaxation whose recorded AUROCs moved by 1e-4 between identical runs: the backward of `offset[pair]` accumulates
many entries into 3 parameters, which torch's default multi-threaded CPU kernel does in the order the threads
finish; `seed_everything` asks for the deterministic kernels (medvl_core.config.deterministic_algorithms).
"""

import json

import pytest
from stand_in import write_stand_in

from medvl_core.cli.run import execute

BODY = """import hashlib
import torch
from medvl_core import runs
from medvl_core.config import seed_everything
from medvl_core.losses.uniclip import uniclip_loss
from medvl_core.models.uniclip import DomainSimilarity
from medvl_core.train import TrainConfig, train

torch.set_num_threads(threads)  # the kernel of make test is single-threaded; order races need several threads
runs.start_run("meems")
seed_everything(0)
g = torch.Generator().manual_seed(0)
items = [{"views": torch.randn(2, 16, generator=g), "text": torch.randn(16, generator=g)} for _ in range(512)]
model = torch.nn.ModuleDict({"image": torch.nn.Linear(16, 32), "text": torch.nn.Linear(16, 32),
                             "similarity": DomainSimilarity()})

def loss(m, batch):
    views = [m["image"](batch["views"][:, k]) for k in range(2)]
    return uniclip_loss(views, m["text"](batch["text"]), m["similarity"], relax=(0.5, 10.0))

result = train(model, items, loss, TrainConfig(epochs=epochs, global_batch_size=128, lr=0.01, device="cpu", progress=False))
state = b"".join(t.detach().numpy().tobytes() for t in model.state_dict().values())
runs.record(loss=repr(result.history[-1]["train_loss"]), state=hashlib.sha256(state).hexdigest(),
            offset=repr(model["similarity"].offset.tolist()))"""


@pytest.mark.slow
@pytest.mark.xdist_group("own")
def test_a_rerun_records_exactly_the_metrics_of_the_first_run(tmp_path, monkeypatch):
    folder = write_stand_in(tmp_path / "notebooks", "epochs = 4  # epochs\nthreads = 2  # torch threads", [BODY])
    monkeypatch.setenv("MEDVL_NOTEBOOKS", str(folder))
    runs = [tmp_path / "first", tmp_path / "second"]
    for out in runs:
        assert execute("meems", {}, out, progress=False) == 0
    first, second = (json.loads((out / "metrics.json").read_text()) for out in runs)
    assert set(first) >= {"loss", "state", "offset"} and first == second
