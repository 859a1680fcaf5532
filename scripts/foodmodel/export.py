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

This module runs the export's steps; the inputs' checks are in export_inputs.py, the comparisons with the
eager model in export_checks.py, and what model.json says in model_json.py.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional

import torch

from .architecture import FoodClassifier, HeadPart, TextEncoderPart, WholeModelPart
from .config import FoodClassifierConfig
from .export_checks import (
    CHECK_BATCHES,
    CHECK_SEED,
    ExportCheckError,
    compare_with_eager,
    eager_reference,
    example_inputs,
)
from .export_inputs import SPECIAL_TOKENS, ExportError, normalize_class_mapping, read_vocab
from .model_json import RESERVED_KEYS, describe_files, model_json, write_model_json

# The names other code imports from here: the export, the files it writes and its errors (which are defined
# beside the checks that raise them).
__all__ = ["FILES", "ExportCheckError", "ExportError", "export_model_folder"]

Log = Callable[[str], None]

ONNX_OPSET = 14
TRACE_BATCH = 2  # traced at batch 2, so that nothing can specialise on a batch of 1
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
    log(
        f"Exporting FoodClassifier ({config.image_backbone} image encoder, BERT {config.num_hidden_layers}x"
        f"{config.hidden_size} with {config.num_attention_heads} heads ({model.bert_implementation}), fusion "
        f"{config.fusion_layers}x{config.fusion_heads} heads, {config.num_classes} classes, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters) into {out}"
    )

    with torch.no_grad():
        # --- the eager reference ----------------------------------------------------------------------
        with step(log, f"[1/7] eager reference outputs at batch {' and '.join(map(str, CHECK_BATCHES))}"):
            cases = eager_reference(model, config, token_ids, log)

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
            checks = compare_with_eager(out, cases)
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
        files = describe_files(out, FILES, log)
        info = model_json(
            model=model,
            config=config,
            classes=names,
            tokens=tokens,
            special_ids=ids,
            onnx_opset=ONNX_OPSET,
            files=files,
            checks=checks,
            tolerance=tolerance,
            tokenizer_extra=tokenizer_extra,
            extra=extra,
        )
        write_model_json(out, info)
    log(f"Exported in {time.perf_counter() - total_start:.1f} s: {out}")
    return info
