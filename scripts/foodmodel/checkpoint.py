"""Reading the workshop's training checkpoints into a FoodClassifier.

    load_checkpoint(path) -> (model, config)
        read_checkpoint(path): the file -> (state_dict, its 'config' dict, other scalar entries)
        infer_config(state_dict, config dict): the FoodClassifierConfig its shapes describe

A checkpoint is unpickled as plain data only (tensors, containers, numbers): torch's weights-only reader, or
where torch 1.13's refuses a float or a numpy scalar, the restricted reader below (_SAFE_GLOBALS). Anything
else in the file would run code it names when unpickled, so that needs the caller's `trust`
(export_model.py --trust-checkpoint).
"""

from __future__ import annotations

import dataclasses
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import torch

from .architecture import FoodClassifier
from .config import FoodClassifierConfig


class CheckpointError(ValueError):
    """A file that is not a FoodClassifier checkpoint, or one that does not fit the architecture."""


# Buffers that older transformers versions saved in the state_dict; current ones do not (non-persistent).
DROPPED_KEYS = ("text_encoder.embeddings.position_ids", "text_encoder.embeddings.token_type_ids")


def read_checkpoint(
    path: str | Path, log: Optional[Callable[[str], None]] = None, trust: bool = False
) -> Tuple[Dict[str, torch.Tensor], Optional[Dict[str, Any]], Dict[str, Any]]:
    """Reads a torch.save file: {'model_state_dict': ..., ...} (the workshop's) or a raw state_dict.

    Returns (state_dict without the dropped buffers and without a 'module.' prefix, the checkpoint's
    'config' dict or None, the checkpoint's other scalar entries such as epoch). Raises CheckpointError with
    a message that says what the file is when it is not such a checkpoint."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), not a PyTorch checkpoint")
    if _is_torchscript(path):
        raise CheckpointError(f"{path} is a TorchScript model, not a training checkpoint: it needs no conversion")
    try:
        # Tensors and plain containers only: no code from the file runs.
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" not in str(e).lower():
            raise CheckpointError(f"{path} is not a PyTorch checkpoint (torch.save file): {e}") from None
        # torch 1.13's weights-only reader refuses floats (a checkpoint's val_acc) and numpy scalars; a reader
        # that allows plain data but no other code reads those.
        try:
            data = _load_restricted(path)
        except _Refused as refused:
            # Something else is pickled in it, and unpickling that runs code the file names: only for a file
            # the caller vouches for.
            if not trust:
                raise CheckpointError(
                    f"{path} holds Python objects besides tensors and plain data ({refused}), and reading those "
                    "would run code from the file. If you trust where it comes from (your own training run), "
                    "convert it with --trust-checkpoint; or save only the weights: "
                    'torch.save({"model_state_dict": model.state_dict()}, path)'
                ) from None
            if log:
                log(
                    f"  the checkpoint holds Python objects besides tensors ({refused}): loading it with full "
                    "unpickling (--trust-checkpoint)"
                )
            data = _load_unrestricted(path)
    except Exception as e:  # noqa: BLE001 - torch.load raises KeyError, RuntimeError, EOFError, ... on non-checkpoints
        first = (str(e).splitlines() or [""])[0] or type(e).__name__
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (torch.save file): {type(e).__name__}: {first}"
        ) from None

    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a checkpoint dict or a state_dict")
    meta: Dict[str, Any] = {}
    config_dict = None
    if "model_state_dict" in data:
        state = data["model_state_dict"]
        for key, value in data.items():
            if key == "config" and isinstance(value, Mapping):
                config_dict = dict(value)
            elif isinstance(value, (int, float, str, bool)):
                meta[key] = value
    elif "state_dict" in data and isinstance(data["state_dict"], Mapping):
        state = data["state_dict"]
        if isinstance(data.get("config"), Mapping):
            config_dict = dict(data["config"])
    else:
        state = data
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = ", ".join(list(map(str, data.keys()))[:8])
        raise CheckpointError(
            f"{path} holds no state_dict: a checkpoint is a dict with model_state_dict (the "
            f"workshop's) or a state_dict of tensors; this one has the keys {keys}"
        )
    state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if k not in DROPPED_KEYS}
    return state, config_dict, meta


class _Refused(Exception):
    """A pickled global outside _SAFE_GLOBALS."""


# What a training checkpoint holds besides tensors: containers, numbers, numpy scalars and arrays, an argparse
# Namespace of hyper-parameters. Building these runs no code of the file's choosing.
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("builtins", "range"),
    ("argparse", "Namespace"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("_codecs", "encode"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch", "dtype"),
}


def _restricted_pickle_module() -> Any:
    import pickle as std

    class Unpickler(std.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) in _SAFE_GLOBALS or (module == "torch" and name.endswith("Storage")):
                return super().find_class(module, name)
            raise _Refused(f"{module}.{name}")

    class Module:
        pass

    module = Module()
    module.Unpickler = Unpickler  # type: ignore[attr-defined]
    module.load = std.load  # type: ignore[attr-defined]
    module.__name__ = "restricted_pickle"  # type: ignore[attr-defined]
    return module


def _load_restricted(path: Path) -> Any:
    """torch.load with _SAFE_GLOBALS only. Through torch.serialization's own readers: torch 1.13's torch.load
    ignores a pickle_module unless weights_only, whose reader refuses plain floats."""
    from torch import serialization as ser

    module = _restricted_pickle_module()
    try:
        with open(path, "rb") as f:
            if ser._is_zipfile(f):
                with ser._open_zipfile_reader(f) as archive:
                    return ser._load(archive, "cpu", module, encoding="utf-8")
            return ser._legacy_load(f, "cpu", module, encoding="utf-8")
    except _Refused:
        raise
    except AttributeError as e:
        # another torch whose readers moved: the caller then asks for --trust-checkpoint
        raise _Refused(f"this torch has no restricted reader ({e})") from None
    except Exception as e:  # noqa: BLE001 - whatever the unpickler raises means the same
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (torch.save file): {e}") from None


def _load_unrestricted(path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001 - whatever the unpickler raises means the same
            raise CheckpointError(f"{path} is not a PyTorch checkpoint (torch.save file): {e}") from None


def _is_torchscript(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _count_layers(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in state for m in [pattern.match(k)] if m}
    return max(found) + 1 if found else 0


def infer_config(
    state: Mapping[str, torch.Tensor], config_dict: Optional[Mapping[str, Any]] = None
) -> FoodClassifierConfig:
    """The FoodClassifierConfig of a state_dict, from its shapes.

    What shapes cannot tell comes from `config_dict` (the checkpoint's 'config', if any; keys that are not
    FoodClassifierConfig fields are ignored) or else the workshop's values: BERT heads = hidden / 64, 8
    fusion heads, max_length 128. A config_dict value that contradicts the shapes is an error."""

    def shape(key: str) -> Tuple[int, ...]:
        if key not in state:
            raise CheckpointError(
                f"the state_dict has no {key}: it is not a FoodClassifier checkpoint "
                f"(its first keys: {', '.join(list(state)[:5])})"
            )
        return tuple(state[key].shape)

    inferred: Dict[str, Any] = {}
    vocab, hidden = shape("text_encoder.embeddings.word_embeddings.weight")
    inferred.update(vocab_size=vocab, hidden_size=hidden)
    inferred["max_position_embeddings"] = shape("text_encoder.embeddings.position_embeddings.weight")[0]
    inferred["type_vocab_size"] = shape("text_encoder.embeddings.token_type_embeddings.weight")[0]
    inferred["num_hidden_layers"] = _count_layers(state, "text_encoder.encoder.layer.")
    inferred["intermediate_size"] = shape("text_encoder.encoder.layer.0.intermediate.dense.weight")[0]
    inferred["fusion_layers"] = _count_layers(state, "fusion.layers.")
    inferred["fusion_feedforward"] = shape("fusion.layers.0.linear1.weight")[0]
    inferred["classifier_hidden"] = shape("classifier.0.weight")[0]
    inferred["num_classes"] = shape("classifier.3.weight")[0]
    inferred["image_features"] = shape("img_proj.weight")[1]
    if "img_encoder.conv1.weight" in state:
        inferred["image_backbone"] = "resnet18"
    elif "img_encoder.stem.0.weight" in state:
        inferred["image_backbone"] = "small"
        inferred["image_width"] = shape("img_encoder.stem.0.weight")[0]
        inferred["image_stages"] = _count_layers(state, "img_encoder.stages.")
    elif "img_encoder._conv_stem.weight" in state:
        inferred["image_backbone"] = "efficientnet_lite0"
        inferred["image_blocks"] = _count_layers(state, "img_encoder._blocks.")
    else:
        raise CheckpointError(
            "the state_dict has none of img_encoder.conv1.weight (resnet18), "
            "img_encoder.stem.0.weight (the small CNN) or img_encoder._conv_stem.weight "
            "(EfficientNet-Lite0): unknown image encoder"
        )

    fields = {f.name for f in dataclasses.fields(FoodClassifierConfig)}
    values: Dict[str, Any] = {}
    if config_dict:
        values.update({k: v for k, v in config_dict.items() if k in fields})
        for key, value in inferred.items():
            if key in values and values[key] != value:
                raise CheckpointError(
                    f"the checkpoint's config says {key}={values[key]!r} but its weights have {key}={value!r}"
                )
    values.update(inferred)
    values.setdefault("num_attention_heads", max(1, hidden // 64))
    try:
        return FoodClassifierConfig(**values).validate()
    except ValueError as e:
        raise CheckpointError(f"the checkpoint does not give a valid configuration: {e}") from None


def load_checkpoint(
    path: str | Path, *, bert: str = "auto", log: Optional[Callable[[str], None]] = None, trust: bool = False
) -> Tuple[FoodClassifier, FoodClassifierConfig]:
    """A FoodClassifier from a checkpoint (see read_checkpoint), its config inferred (see infer_config), the
    weights loaded with strict=True; returned in eval mode."""
    state, config_dict, _meta = read_checkpoint(path, log, trust)
    config = infer_config(state, config_dict)
    model = FoodClassifier(config, bert=bert)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        expected = model.state_dict()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        wrong = [
            f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
            for k in expected
            if k in state and state[k].shape != expected[k].shape
        ]
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if items:
                parts.append(f"{len(items)} {label}: {', '.join(items[:5])}{', ...' if len(items) > 5 else ''}")
        raise CheckpointError(
            f"{path}: the weights do not fit the FoodClassifier architecture; "
            + ("; ".join(parts) or str(e).splitlines()[0])
        ) from None
    return model.eval(), config
