"""model.json: what a model folder holds, as the service reads it.

Its inputs and outputs, the two parts (text_encoder, head), the ONNX files, the preprocessing, the
tokenizer's vocabulary and special ids, the classes, the config, the versions that wrote it, the checks'
results, and each file's sha256 and size. It is written last (through a temporary file), so a folder
without model.json is an unfinished export.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import torch

from .architecture import FoodClassifier
from .config import CROP, IMAGENET_MEAN, IMAGENET_STD, RESIZE, FoodClassifierConfig
from .export_checks import CHECK_BATCHES, CHECK_SEED

Log = Callable[[str], None]

# model.json's own top-level keys, which an export's `extra` may not replace ('tokenizer' it may update).
RESERVED_KEYS = (
    "name",
    "inputs",
    "outputs",
    "text_encoder",
    "head",
    "preprocessing",
    "max_length",
    "num_classes",
    "classes",
    "config",
    "versions",
    "created",
    "files",
    "checks",
    "onnx",
)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def io_spec(name: str, dtype: str, shape: Sequence[int]) -> Dict[str, Any]:
    return {"name": name, "dtype": dtype, "shape": list(shape)}


def describe_files(out: Path, names: Iterable[str], log: Log) -> Dict[str, Dict[str, Any]]:
    """name -> {sha256, bytes} of each file in `out`, logged one per line."""
    files = {}
    for name in names:
        path = out / name
        files[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        log(f"  {name:<18} {path.stat().st_size / 1e6:9.1f} MB  sha256 {files[name]['sha256'][:16]}...")
    return files


def model_json(
    *,
    model: FoodClassifier,
    config: FoodClassifierConfig,
    classes: List[str],
    tokens: List[str],
    special_ids: Mapping[str, int],
    onnx_opset: int,
    files: Dict[str, Dict[str, Any]],
    checks: Dict[str, float],
    tolerance: float,
    tokenizer_extra: Optional[Mapping[str, Any]] = None,
    extra: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """The model.json of a folder exported from `model` (see export.export_model_folder): `tokenizer_extra`
    updates the tokenizer entry, `extra` adds top-level keys (not RESERVED_KEYS: the caller checks)."""
    H, L, C = config.hidden_size, config.max_length, config.num_classes
    image_in = io_spec("image", "float32", [-1, 3, CROP, CROP])
    ids_in = io_spec("input_ids", "int64", [-1, L])
    mask_in = io_spec("attention_mask", "int64", [-1, L])
    logits_out = io_spec("logits", "float32", [-1, C])
    features = io_spec("text_features", "float32", [-1, L, H])
    return {
        "name": "FoodClassifier",
        "inputs": [image_in, ids_in, mask_in],
        "outputs": [logits_out],
        "text_encoder": {
            "file": "text_encoder.pth",
            "onnx_file": "text_encoder.onnx",
            "inputs": [ids_in, mask_in],
            "outputs": [features],
        },
        "head": {
            "file": "head.pth",
            "onnx_file": "head.onnx",
            "inputs": [image_in, features],
            "outputs": [logits_out],
            "first_token_only": True,
        },
        "onnx": {"file": "best_model.onnx", "opset": onnx_opset, "dynamic_axes": {"batch": 0}},
        "preprocessing": {
            "resize": RESIZE,
            "crop": CROP,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "interpolation": "bilinear",
            "antialias": True,
        },
        "max_length": L,
        "tokenizer": {
            "vocab": "vocab.txt",
            "vocab_size": len(tokens),
            "lowercase": True,
            "pad_id": special_ids["[PAD]"],
            "unk_id": special_ids["[UNK]"],
            "cls_id": special_ids["[CLS]"],
            "sep_id": special_ids["[SEP]"],
            **(tokenizer_extra or {}),
        },
        "num_classes": C,
        "classes": classes,
        "config": config.to_dict(),
        "versions": _versions(model),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": files,
        "checks": {
            "tolerance": tolerance,
            "batches": list(CHECK_BATCHES),
            "seed": CHECK_SEED,
            "max_abs_diff": checks,
        },
        **(extra or {}),
    }


def write_model_json(out: Path, info: Mapping[str, Any]) -> None:
    tmp = out / "model.json.tmp"
    tmp.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out / "model.json")


def _versions(model: FoodClassifier) -> Dict[str, str]:
    import torchvision

    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__, "python": platform.python_version()}
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if model.bert_implementation == "transformers":
        import transformers

        versions["transformers"] = transformers.__version__
    return versions
