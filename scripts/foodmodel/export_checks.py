"""The exported files checked against the eager model, on seeded inputs that look like the service's.

The eager model's outputs at CHECK_BATCHES are computed first (eager_reference); once the files are
written, they are read back as the service reads them and run on the same inputs (compare_with_eager):
best_model.pth, text_encoder.pth then head.pth, and the same three as ONNX with onnxruntime (CPU). Each
check is the largest absolute difference from the eager outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Tuple

import torch

from .architecture import FoodClassifier
from .config import CROP, FoodClassifierConfig
from .export_inputs import ExportError

Log = Callable[[str], None]
# batch size -> ((image, input_ids, attention_mask), the eager text features, the eager logits)
Cases = Mapping[int, Tuple[Tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor, torch.Tensor]]

CHECK_BATCHES = (1, 3)  # other batch sizes than the trace's (export.TRACE_BATCH)
CHECK_SEED = 1234


class ExportCheckError(RuntimeError):
    """An exported file does not compute what the eager model computes (within the tolerance)."""


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


def eager_reference(
    model: FoodClassifier, config: FoodClassifierConfig, token_ids: Tuple[int, int, int, int, int], log: Log
) -> Cases:
    """The eager model's text features and logits on example_inputs at each of CHECK_BATCHES."""
    cases = {}
    for b in CHECK_BATCHES:
        inputs = example_inputs(config, b, CHECK_SEED + b, token_ids)
        features = model.encode_text(inputs[1], inputs[2])
        logits = model.classify(inputs[0], features)
        cases[b] = (inputs, features, logits)
        lengths = inputs[2].sum(1).tolist()
        log(f"  batch {b}: token counts {lengths}, logits in [{logits.min():.3f}, {logits.max():.3f}]")
    return cases


def compare_with_eager(out: Path, cases: Cases) -> Dict[str, float]:
    """The files in `out` read back and run on the cases' inputs: name -> max abs difference from eager."""
    checks: Dict[str, float] = {}
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
    return checks


def _check_onnx(out: Path, cases: Cases) -> Dict[str, float]:
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
