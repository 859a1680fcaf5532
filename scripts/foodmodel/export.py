"""Writes a FoodClassifier as a model folder the service loads, and checks every file against the eager model.

    export_model_folder(model, config, out_dir, class_mapping, vocab_path) -> the model.json dict

The folder:
    best_model.pth      TorchScript (torch.jit.trace in eval mode): forward(image, input_ids, attention_mask) -> logits
    best_model.onnx     the same model as ONNX (opset 14, dynamic batch axis)
    text_encoder.pth    TorchScript: forward(input_ids, attention_mask) -> text_features [B, 128, H]
    head.pth            TorchScript: forward(image, text_features) -> logits
    text_encoder.onnx   the two parts as ONNX, so that either backend can compute a text's features once and
    head.onnx           run only the head for each photo
    class_mapping.json  class name -> index (the workshop's format)
    vocab.txt           the BERT WordPiece vocabulary, copied
    model.json          inputs, outputs, preprocessing, classes, config, versions, check results, sha256 of each file

Checks (seeded random inputs at batch 1 and 3, with padded attention masks; the files are read back as the
service reads them): TorchScript vs eager, ONNX (onnxruntime, CPU) vs eager, text_encoder then head (both
formats) vs eager. The exported whole model and head compute the last fusion layer for the image token only
(WholeModelPart, HeadPart: the same logits, about a quarter less work in the head). A max abs difference
above `tolerance` raises ExportCheckError, and model.json is not written.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import time
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch

from .architecture import FoodClassifier, HeadPart, TextEncoderPart, WholeModelPart
from .config import CROP, IMAGENET_MEAN, IMAGENET_STD, RESIZE, FoodClassifierConfig

Log = Callable[[str], None]

ONNX_OPSET = 14
TRACE_BATCH = 2  # traced at batch 2, so that nothing can specialise on a batch of 1
CHECK_BATCHES = (1, 3)  # and checked at other batch sizes
CHECK_SEED = 1234
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
FILES = (
    "best_model.pth",
    "best_model.onnx",
    "text_encoder.pth",
    "head.pth",
    "text_encoder.onnx",
    "head.onnx",
    "class_mapping.json",
    "vocab.txt",
)
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


class ExportError(ValueError):
    """The inputs of an export do not fit together (class mapping, vocabulary, config, model)."""


class ExportCheckError(RuntimeError):
    """An exported file does not compute what the eager model computes (within the tolerance)."""


# ------------------------------------------------------------------------------------------------------
# inputs


def normalize_class_mapping(mapping: Mapping[Any, Any]) -> List[str]:
    """The class names in index order, from {name: index} (the workshop's class_mapping.json) or
    {"index": name}; each index 0..N-1 exactly once."""
    if not isinstance(mapping, Mapping) or not mapping:
        raise ExportError("the class mapping must be a non-empty JSON object of class name -> index")
    items = list(mapping.items())
    if all(isinstance(v, int) and not isinstance(v, bool) for _, v in items):
        pairs = [(v, str(k)) for k, v in items]
    elif all(isinstance(v, str) and str(k).isdigit() for k, v in items):
        pairs = [(int(k), v) for k, v in items]
    else:
        raise ExportError('the class mapping must map class names to integer indices, e.g. {"apple_pie": 0, ...}')
    n = len(pairs)
    names: Dict[int, str] = {}
    for index, name in pairs:
        if not name.strip():
            raise ExportError("the class mapping has an empty class name")
        if index in names:
            raise ExportError(f"the class mapping uses index {index} twice ({names[index]!r} and {name!r})")
        names[index] = name
    missing = sorted(set(range(n)) - set(names))
    if missing:
        raise ExportError(
            f"the class mapping's {n} classes must have the indices 0..{n - 1} exactly once; "
            f"missing {missing[:5]}, out of range {sorted(i for i in names if not 0 <= i < n)[:5]}"
        )
    return [names[i] for i in range(n)]


def read_vocab(path: Path) -> List[str]:
    try:
        with open(path, encoding="utf-8") as f:
            tokens = [line.rstrip("\r\n") for line in f]
    except FileNotFoundError:
        raise ExportError(f"{path}: no such vocabulary file") from None
    except UnicodeDecodeError as e:
        raise ExportError(f"{path} is not UTF-8 text: {e}") from None
    missing = [t for t in SPECIAL_TOKENS if t not in tokens]
    if missing:
        raise ExportError(f"{path} lacks the token(s) {' '.join(missing)}: it is not a BERT vocabulary")
    return tokens


# ------------------------------------------------------------------------------------------------------
# helpers


@contextmanager
def step(log: Log, title: str) -> Iterator[None]:
    log(f"{title} ...")
    start = time.perf_counter()
    yield
    log(f"  done in {time.perf_counter() - start:.1f} s")


@contextmanager
def reported_warnings(log: Log) -> Iterator[None]:
    """Shows the warnings of tracing and ONNX export (once each) as progress lines instead of stderr noise."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen = set()
    for w in caught:
        text = str(w.message).strip().splitlines()[0][:200]
        if text not in seen:
            seen.add(text)
            log(f"  warning ({w.category.__name__}): {text}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def example_inputs(
    config: FoodClassifierConfig, batch: int, seed: int, token_ids: Tuple[int, int, int, int, int]
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded inputs that look like the service's: a normalised image, then [CLS] words [SEP] [PAD]... with
    the attention mask 1 on the tokens and 0 on the padding. token_ids: ([PAD], [CLS], [SEP], the first and
    one past the last word id). Row 0 has 16 tokens, the last row of a batch of 3 or more all max_length,
    the others a random length."""
    pad_id, cls_id, sep_id, word_start, word_end = token_ids
    g = torch.Generator().manual_seed(seed)
    length = config.max_length
    image = torch.randn(batch, 3, CROP, CROP, generator=g)
    input_ids = torch.full((batch, length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros(batch, length, dtype=torch.long)
    for row in range(batch):
        if row == 0:
            n = min(16, length)
        elif row == batch - 1 and batch >= 3:
            n = length
        else:
            n = int(torch.randint(3, length + 1, (1,), generator=g))
        words = torch.randint(word_start, word_end, (n,), generator=g)
        words[0] = cls_id
        words[n - 1] = sep_id
        input_ids[row, :n] = words
        attention_mask[row, :n] = 1
    return image, input_ids, attention_mask


def max_abs_diff(a: Any, b: torch.Tensor) -> float:
    a = torch.as_tensor(a)
    if tuple(a.shape) != tuple(b.shape):
        return float("inf")
    return float((a.to(torch.float64) - b.to(torch.float64)).abs().max())


def io_spec(name: str, dtype: str, shape: Sequence[int]) -> Dict[str, Any]:
    return {"name": name, "dtype": dtype, "shape": list(shape)}


# ------------------------------------------------------------------------------------------------------
# export


def export_model_folder(
    model: FoodClassifier,
    config: FoodClassifierConfig,
    out_dir: str | Path,
    class_mapping: Mapping[Any, Any],
    vocab_path: str | Path,
    *,
    log: Log = print,
    tolerance: float = 1e-4,
    extra: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Writes the model folder into out_dir (created if needed; files of an earlier export are replaced) and
    returns what it wrote to model.json.

    model: a FoodClassifier of `config` (it is put in eval mode, on the CPU);
    class_mapping: {class name: index} (the workshop's class_mapping.json) or {"index": class name}, with
    config.num_classes entries; it is written as {class name: index};
    vocab_path: the BERT vocabulary (vocab.txt) the token ids come from;
    extra: more top-level keys for model.json (e.g. {'source': {...}, 'training': {...}}), which may not
    replace the keys written here, except 'tokenizer', whose entries update the written ones (e.g.
    {'tokenizer': {'lowercase': False}} for a cased vocabulary).
    Raises ExportError for inputs that do not fit, ExportCheckError when a file's outputs differ from the
    eager model's by more than `tolerance` (model.json is then not written).
    """
    total_start = time.perf_counter()
    out = Path(out_dir)
    vocab_path = Path(vocab_path)
    extra = dict(extra or {})
    tokenizer_extra = dict(extra.pop("tokenizer", None) or {})
    clash = sorted(set(extra) & set(RESERVED_KEYS))
    if clash:
        raise ExportError(f"extra may not replace model.json's own key(s) {', '.join(clash)}")
    if not isinstance(model, FoodClassifier):
        raise ExportError(f"model must be a FoodClassifier, not {type(model).__name__}")
    config = config.validate()
    if model.config != config:
        raise ExportError("the model was built from another config than the one given")

    names = normalize_class_mapping(class_mapping)
    if len(names) != config.num_classes:
        raise ExportError(
            f"the class mapping has {len(names)} classes but the model has {config.num_classes} outputs (classifier.3)"
        )
    tokens = read_vocab(vocab_path)
    if len(tokens) > config.vocab_size:
        raise ExportError(
            f"{vocab_path} has {len(tokens)} tokens but the model's word embeddings only "
            f"{config.vocab_size}: token ids past {config.vocab_size - 1} would fail"
        )
    ids = {t: tokens.index(t) for t in SPECIAL_TOKENS}
    word_end = len(tokens)
    word_start = max(ids.values()) + 1 if max(ids.values()) + 1 < word_end else 0
    token_ids = (ids["[PAD]"], ids["[CLS]"], ids["[SEP]"], word_start, word_end)

    out.mkdir(parents=True, exist_ok=True)
    (out / "model.json").unlink(missing_ok=True)  # a folder without model.json is an unfinished export
    model.eval().cpu()  # traced on the CPU: a trace on CUDA would record CUDA devices into the files
    if int(torch.__version__.split(".")[0]) >= 2:
        log(
            f"warning: torch {torch.__version__} writes files that the addon's default LibTorch 1.13 cannot load; "
            "export with the project's .venv/bin/python (torch 1.13) for that"
        )
    H, L, C = config.hidden_size, config.max_length, config.num_classes
    log(
        f"Exporting FoodClassifier ({config.image_backbone} image encoder, BERT {config.num_hidden_layers}x"
        f"{H} with {config.num_attention_heads} heads ({model.bert_implementation}), fusion "
        f"{config.fusion_layers}x{config.fusion_heads} heads, {C} classes, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters) into {out}"
    )

    checks: Dict[str, float] = {}
    with torch.no_grad():
        # --- the eager reference ----------------------------------------------------------------------
        cases = {}
        with step(log, f"[1/7] eager reference outputs at batch {' and '.join(map(str, CHECK_BATCHES))}"):
            for b in CHECK_BATCHES:
                inputs = example_inputs(config, b, CHECK_SEED + b, token_ids)
                features = model.encode_text(inputs[1], inputs[2])
                logits = model.classify(inputs[0], features)
                cases[b] = (inputs, features, logits)
                lengths = inputs[2].sum(1).tolist()
                log(f"  batch {b}: token counts {lengths}, logits in [{logits.min():.3f}, {logits.max():.3f}]")

        example = example_inputs(config, TRACE_BATCH, CHECK_SEED, token_ids)

        # --- TorchScript ----------------------------------------------------------------------------------
        whole = WholeModelPart(model).eval()
        text_part = TextEncoderPart(model).eval()
        head_part = HeadPart(model).eval()
        with step(log, f"[2/7] tracing the full model (batch {TRACE_BATCH}) -> best_model.pth"), reported_warnings(log):
            traced = torch.jit.trace(whole, example, check_trace=False)
            torch.jit.save(traced, str(out / "best_model.pth"))
            del traced
        with (
            step(log, "[3/7] tracing the text encoder -> text_encoder.pth and the rest -> head.pth"),
            reported_warnings(log),
        ):
            example_features = model.encode_text(example[1], example[2])
            traced = torch.jit.trace(text_part, (example[1], example[2]), check_trace=False)
            torch.jit.save(traced, str(out / "text_encoder.pth"))
            traced = torch.jit.trace(head_part, (example[0], example_features), check_trace=False)
            torch.jit.save(traced, str(out / "head.pth"))
            del traced

        # --- ONNX ---------------------------------------------------------------------------------------------
        with (
            step(
                log,
                f"[4/7] exporting ONNX (opset {ONNX_OPSET}, dynamic batch) -> best_model.onnx, "
                "text_encoder.onnx, head.onnx",
            ),
            reported_warnings(log),
        ):
            for module, args, file, input_names, output_name in (
                (whole, example, "best_model.onnx", ["image", "input_ids", "attention_mask"], "logits"),
                (
                    text_part,
                    (example[1], example[2]),
                    "text_encoder.onnx",
                    ["input_ids", "attention_mask"],
                    "text_features",
                ),
                (head_part, (example[0], example_features), "head.onnx", ["image", "text_features"], "logits"),
            ):
                torch.onnx.export(
                    module,
                    args,
                    str(out / file),
                    opset_version=ONNX_OPSET,
                    input_names=input_names,
                    output_names=[output_name],
                    dynamic_axes={name: {0: "batch"} for name in [*input_names, output_name]},
                    do_constant_folding=True,
                )

        # --- the small files ------------------------------------------------------------------------------
        with step(log, "[5/7] writing class_mapping.json and vocab.txt"):
            (out / "class_mapping.json").write_text(
                json.dumps({name: i for i, name in enumerate(names)}, indent=2, ensure_ascii=False) + "\n",
                encoding="utf-8",
            )
            if vocab_path.resolve() != (out / "vocab.txt").resolve():
                shutil.copyfile(vocab_path, out / "vocab.txt")
            log(
                f"  {len(names)} classes ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}); "
                f"{len(tokens)} vocabulary tokens"
            )

        # --- checks on the files as written -----------------------------------------------------------------
        with step(
            log, f"[6/7] checking the files against the eager model (max abs difference, tolerance {tolerance:g})"
        ):
            full = torch.jit.load(str(out / "best_model.pth"), map_location="cpu").eval()
            for b, (inputs, _, logits) in cases.items():
                checks[f"torchscript_batch{b}"] = max_abs_diff(full(*inputs), logits)
            del full
            text_ts = torch.jit.load(str(out / "text_encoder.pth"), map_location="cpu").eval()
            head_ts = torch.jit.load(str(out / "head.pth"), map_location="cpu").eval()
            for b, (inputs, features, logits) in cases.items():
                got_features = text_ts(inputs[1], inputs[2])
                checks[f"text_encoder_batch{b}"] = max_abs_diff(got_features, features)
                checks[f"text_encoder_then_head_batch{b}"] = max_abs_diff(head_ts(inputs[0], got_features), logits)
            del text_ts, head_ts
            checks.update(_check_onnx(out, cases))
            width = max(len(k) for k in checks)
            for name, diff in checks.items():
                log(f"  {name:<{width}}  {diff:.3e}  {'ok' if diff <= tolerance else 'TOO LARGE'}")
        failed = {k: v for k, v in checks.items() if not v <= tolerance}
        if failed:
            raise ExportCheckError(
                "the exported files do not compute what the eager model computes: "
                + ", ".join(f"{k} differs by {v:.3e}" for k, v in failed.items())
                + f" (tolerance {tolerance:g}); model.json was not written, so {out} is not a usable model folder"
            )

    # --- model.json --------------------------------------------------------------------------------------------
    with step(log, "[7/7] hashing the files -> model.json"):
        files = {}
        for name in FILES:
            path = out / name
            files[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
            log(f"  {name:<18} {path.stat().st_size / 1e6:9.1f} MB  sha256 {files[name]['sha256'][:16]}...")
        image_in = io_spec("image", "float32", [-1, 3, CROP, CROP])
        ids_in = io_spec("input_ids", "int64", [-1, L])
        mask_in = io_spec("attention_mask", "int64", [-1, L])
        logits_out = io_spec("logits", "float32", [-1, C])
        features = io_spec("text_features", "float32", [-1, L, H])
        info: Dict[str, Any] = {
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
            "onnx": {"file": "best_model.onnx", "opset": ONNX_OPSET, "dynamic_axes": {"batch": 0}},
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
                "pad_id": ids["[PAD]"],
                "unk_id": ids["[UNK]"],
                "cls_id": ids["[CLS]"],
                "sep_id": ids["[SEP]"],
                **tokenizer_extra,
            },
            "num_classes": C,
            "classes": names,
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
            **extra,
        }
        tmp = out / "model.json.tmp"
        tmp.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(out / "model.json")
    log(f"Exported in {time.perf_counter() - total_start:.1f} s: {out}")
    return info


def _check_onnx(
    out: Path, cases: Mapping[int, Tuple[Tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]]
) -> Dict[str, float]:
    """best_model.onnx, and text_encoder.onnx then head.onnx, against the eager logits (and features)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError(
            "onnxruntime is not installed, so the ONNX export cannot be checked: run "
            "scripts/setup.sh (it makes .venv with onnxruntime) and use .venv/bin/python"
        ) from None

    def session(name: str) -> Any:
        return ort.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])

    whole, text, head = session("best_model.onnx"), session("text_encoder.onnx"), session("head.onnx")
    result = {}
    for b, (inputs, features, logits) in cases.items():
        image, ids, mask = (t.numpy() for t in inputs)
        (got,) = whole.run(["logits"], {"image": image, "input_ids": ids, "attention_mask": mask})
        result[f"onnx_batch{b}"] = max_abs_diff(torch.from_numpy(got), logits)
        (got_features,) = text.run(["text_features"], {"input_ids": ids, "attention_mask": mask})
        result[f"onnx_text_encoder_batch{b}"] = max_abs_diff(torch.from_numpy(got_features), features)
        (got,) = head.run(["logits"], {"image": image, "text_features": got_features})
        result[f"onnx_text_encoder_then_head_batch{b}"] = max_abs_diff(torch.from_numpy(got), logits)
    return result


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
