"""Reduced-precision (int8) variants of an exported model folder, made beside its fp32 files and measured against them.

    make_int8_variant(folder, calibration_dir, validation_dir) -> model.json's variants["int8"] entry

From the folder's text_encoder.onnx and head.onnx (which must match model.json's sha256: they are never
rewritten), it writes
    text_encoder.int8.onnx  dynamic quantisation (onnxruntime): the BERT's MatMuls and its embeddings (Gather),
                            weights int8 per channel, activations uint8 with their range computed per forward
    head.int8.onnx          static quantisation in the QDQ format: the head's convolutions and projections (Conv,
                            Gemm, MatMul), weights int8 symmetric per channel, activations uint8 with ranges
                            calibrated on photos of `calibration_dir` (a seeded choice) and the texts' features
Dynamic quantisation of the convolutions (ConvInteger) made the head slower than fp32 on the CPU, hence static.
Weights use 7 of their 8 bits (onnxruntime's reduce_range): on x86 CPUs without VNNI (AVX2 only, like this
project's machine) the uint8 x int8 products saturate their int16 sums otherwise, which cost the demo model
2 of 75 answers (top-1 agreement 0.9733, max |delta p| 0.55); with it, 75 of 75 and 0.09.

The variant is then measured against the fp32 parts on the photos of `validation_dir` (disjoint from the
calibration photos; ImageFolder layout <dir>/<class>/<file>.jpg gives accuracies too), with the workshop's
default text and others: top-1 agreement, top-5 overlap, max |delta p| (softmax) and accuracy, for each text
and over all. A variant whose top-1 agreement with fp32 is under `min_agreement` for any text is refused
(VariantRefused: nothing is written, model.json is unchanged) unless `allow_disagreement`; otherwise the
files are put in place, listed in model.json's `files` (sha256, bytes: the service checks every file it
loads) and described in model.json's `variants.int8` (how they were made, the figures, passed).

The photos get the preprocessing of model.json (resize 256, centre crop 224, ImageNet mean and std), through
the project's evaluation transform (scripts/demo_training/images.py); the texts the tokenisation of
model.json's tokenizer (BERT WordPiece, padded to max_length).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .config import CROP, IMAGENET_MEAN, IMAGENET_STD, RESIZE
from .export import step
from .export_inputs import ExportError
from .model_json import sha256_file, write_model_json

Log = Callable[[str], None]

PRECISIONS = ("int8",)
VARIANT_PARTS = {"text_encoder": "text_encoder.int8.onnx", "head": "head.int8.onnx"}
FP32_PARTS = {"text_encoder": "text_encoder.onnx", "head": "head.onnx"}
DEFAULT_TEXT = "Image of food"  # what the workshop's clients send with almost every photo
# The default text, the README's curl ("Image of pizza"), the demo's classes, and texts unlike them.
AGREEMENT_TEXTS = (
    DEFAULT_TEXT,
    "Image of pizza",
    "Image of steak",
    "Image of sushi",
    "",
    "a photo of a hamburger",
    "what is this?",
    "I took this picture last night at a small family restaurant near the station, the waiter said it was "
    "the chef's favourite and I still wonder what exactly was on my plate, can you tell me?",
)
DEFAULT_MIN_AGREEMENT = 0.99
DEFAULT_CALIBRATION_PHOTOS = 96
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# The convolutions and projections, and the activations after them (ReLU, ReLU6 as Clip): quantised, the
# quantiser folds each into the range of the output before it (a ReLU6's output range is [0, 6], where the
# convolution's own output spans far more), which halved max |delta p| on the demo model.
HEAD_OPS = ("Conv", "Gemm", "MatMul", "Relu", "Clip")
REDUCE_RANGE_WHY = "weights in 7 bits: uint8 x int8 products saturate on x86 CPUs without VNNI (AVX2) otherwise"
TEXT_OPS = ("MatMul", "Gather")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
EVAL_BATCH = 25


class VariantRefused(RuntimeError):
    """The variant's top-1 agreement with fp32 is under the threshold (and no override was given)."""

    def __init__(self, message: str, entry: Dict[str, Any]):
        super().__init__(message)
        self.entry = entry


# ---------------------------------------------------------------------------------------------------------------
# photos and texts


def list_photos(folder: Path) -> Tuple[Optional[List[str]], List[Tuple[Path, Optional[int]]]]:
    """(class folder names or None, [(photo, index into those names or None)]): ImageFolder layout when the
    folder has sub-folders with photos (sorted by name, as the project's evaluation reads them), else the
    photos directly in it, unlabelled."""
    from demo_training.images import list_images

    if not folder.is_dir():
        raise ExportError(f"{folder}: no such photo folder")
    classes, items = list_images(folder)
    if items:
        return classes, [(path, label) for path, label in items]
    flat = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not flat:
        raise ExportError(f"{folder} holds no photos (.jpg, .jpeg, .png), neither directly nor in class folders")
    return None, [(p, None) for p in flat]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def photo_tensor(paths: Sequence[Path], preprocessing: Dict[str, Any], log: Log, what: str) -> np.ndarray:
    """[N, 3, 224, 224] float32: the photos with model.json's preprocessing (the project's evaluation transform)."""
    from demo_training.images import eval_transform, load_rgb

    expected = {"resize": RESIZE, "crop": CROP, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    got = {k: preprocessing.get(k) for k in expected}
    if got != expected or preprocessing.get("interpolation", "bilinear") != "bilinear":
        raise ExportError(f"model.json's preprocessing {preprocessing} is not the one this exporter applies {expected}")
    transform = eval_transform()
    out = np.empty((len(paths), 3, CROP, CROP), dtype=np.float32)
    start = time.perf_counter()
    for i, path in enumerate(paths):
        out[i] = transform(load_rgb(path)).numpy()
        if (i + 1) % 50 == 0 or i + 1 == len(paths):
            log(f"  {what}: {i + 1}/{len(paths)} photos read ({time.perf_counter() - start:.1f} s)")
    return out


def make_tokenizer(folder: Path, info: Dict[str, Any]) -> Callable[[str], Tuple[np.ndarray, np.ndarray]]:
    """text -> (input_ids [1, L], attention_mask [1, L]) int64, with model.json's tokenizer."""
    from tokenizers import BertWordPieceTokenizer

    spec = info["tokenizer"]
    length = int(info["max_length"])
    vocab = (folder / spec.get("vocab", "vocab.txt")).read_text(encoding="utf-8").splitlines()
    tokenizer = BertWordPieceTokenizer(
        str(folder / spec.get("vocab", "vocab.txt")),
        lowercase=bool(spec.get("lowercase", True)),
        unk_token=vocab[spec["unk_id"]],
        sep_token=vocab[spec["sep_id"]],
        cls_token=vocab[spec["cls_id"]],
        pad_token=vocab[spec["pad_id"]],
    )
    tokenizer.enable_truncation(max_length=length)
    tokenizer.enable_padding(length=length, pad_id=spec["pad_id"], pad_token=vocab[spec["pad_id"]])

    def encode(text: str) -> Tuple[np.ndarray, np.ndarray]:
        e = tokenizer.encode(text)
        return np.array([e.ids], dtype=np.int64), np.array([e.attention_mask], dtype=np.int64)

    return encode


# ---------------------------------------------------------------------------------------------------------------
# onnxruntime


def session(path: Path, threads: int = 2) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_head(head: Any, images: np.ndarray, features: np.ndarray) -> np.ndarray:
    """The logits of every photo with one text's features [1, L, H]."""
    out = []
    for start in range(0, len(images), EVAL_BATCH):
        x = images[start : start + EVAL_BATCH]
        f = np.ascontiguousarray(np.broadcast_to(features, (len(x), *features.shape[1:])))
        out.append(head.run(["logits"], {"image": x, "text_features": f})[0])
    return np.concatenate(out)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def compare(fp32: np.ndarray, low: np.ndarray, labels: Optional[np.ndarray]) -> Dict[str, Any]:
    """top-1 agreement, top-k overlap (k = min(5, classes)), max |delta p| and accuracies of two runs' logits."""
    p, q = softmax(fp32), softmax(low)
    k = min(5, p.shape[1])
    top_p, top_q = np.argsort(-p, axis=1)[:, :k], np.argsort(-q, axis=1)[:, :k]
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(top_p.tolist(), top_q.tolist(), strict=True)])
    result: Dict[str, Any] = {
        "photos": int(len(p)),
        "top1_agreement": round(float(np.mean(top_p[:, 0] == top_q[:, 0])), 4),
        "top5_overlap": round(float(overlap), 4),
        "max_abs_delta_p": round(float(np.abs(p - q).max()), 4),
        "mean_abs_delta_p": round(float(np.abs(p - q).max(axis=1).mean()), 5),
    }
    if labels is not None:
        result["accuracy_fp32"] = round(float(np.mean(top_p[:, 0] == labels)), 4)
        result["accuracy_int8"] = round(float(np.mean(top_q[:, 0] == labels)), 4)
    return result


def median_ms(sess: Any, feeds: Dict[str, np.ndarray], runs: int) -> float:
    for _ in range(3):
        sess.run(None, feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t) * 1e3)
    return round(statistics.median(times), 2)


# ---------------------------------------------------------------------------------------------------------------
# the variant


def make_int8_variant(
    folder: str | Path,
    calibration_dir: str | Path,
    validation_dir: str | Path,
    *,
    calibration_photos: int = DEFAULT_CALIBRATION_PHOTOS,
    calibration_seed: int = 0,
    calibration_method: str = "minmax",
    texts: Sequence[str] = AGREEMENT_TEXTS,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    allow_disagreement: bool = False,
    exclude_nodes: Sequence[str] = (),
    reduce_range: bool = True,
    head_ops: Sequence[str] = HEAD_OPS,
    timing_runs: int = 20,
    command: Optional[str] = None,
    log: Log = print,
) -> Dict[str, Any]:
    """Writes text_encoder.int8.onnx and head.int8.onnx into `folder` (an exported model folder), measures
    them against the fp32 parts and records them in model.json; returns model.json's variants['int8'] entry.

    Raises ExportError when the folder or the photos do not fit (model.json missing, an fp32 file changed
    since the export, no photos, the two photo folders sharing a photo), VariantRefused when the top-1
    agreement of some text is under `min_agreement` and not `allow_disagreement` (nothing is then written).
    """
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    import onnx

    total_start = time.perf_counter()
    folder, calibration_dir, validation_dir = Path(folder), Path(calibration_dir), Path(validation_dir)
    texts = list(dict.fromkeys([DEFAULT_TEXT, *texts]))  # the default text first, each once
    if calibration_method not in CALIBRATION_METHODS:
        raise ExportError(f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}")
    if calibration_photos < 1:
        raise ExportError("calibration needs at least one photo")
    info_path = folder / "model.json"
    if not info_path.is_file():
        raise ExportError(f"{folder} has no model.json: export the model first (an int8 variant is made from it)")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    for name in FP32_PARTS.values():
        entry = info.get("files", {}).get(name)
        if entry is None or not (folder / name).is_file():
            raise ExportError(f"{folder} has no {name} (listed in model.json): export the model again")
        if sha256_file(folder / name) != entry["sha256"]:
            raise ExportError(f"{folder / name} does not match the sha256 in model.json (changed since the export)")
    classes: List[str] = list(info["classes"])
    log(
        f"Making the int8 variant of {folder} ({len(classes)} classes; onnxruntime {ort.__version__}, "
        f"onnx {onnx.__version__})"
    )

    # --- the photos ---------------------------------------------------------------------------------------------
    with step(log, "[int8 1/5] choosing the calibration photos and reading the validation photos"):
        _, calibration_items = list_photos(calibration_dir)
        val_classes, val_items = list_photos(validation_dir)
        chosen = sorted(
            random.Random(calibration_seed).sample(
                [p for p, _ in calibration_items], min(calibration_photos, len(calibration_items))
            )
        )
        calibration_digests = {_file_digest(p) for p in chosen}
        shared = [p for p, _ in val_items if _file_digest(p) in calibration_digests]
        if shared:
            raise ExportError(
                f"{len(shared)} validation photo(s) are also calibration photos (e.g. {shared[0].name}): the "
                "validation photos must be others"
            )
        labels: Optional[np.ndarray] = None
        per_class: Optional[Dict[str, int]] = None
        if val_classes is not None and set(val_classes) <= set(classes):
            labels = np.array([classes.index(val_classes[y]) for _, y in val_items])
            per_class = {c: int(sum(1 for _, y in val_items if val_classes[y] == c)) for c in val_classes}
            counts = ", ".join(f"{c} {n}" for c, n in per_class.items())
            log(f"  validation: {len(val_items)} labelled photos ({counts})")
        else:
            why = "not in class folders" if val_classes is None else "class folders that are not the model's classes"
            log(f"  validation: {len(val_items)} photos, {why}: no accuracy, agreement only")
        log(
            f"  calibration: {len(chosen)} of the {len(calibration_items)} photos of {calibration_dir} "
            f"(seed {calibration_seed}), none of them among the validation photos"
        )
        images = photo_tensor([p for p, _ in val_items], info["preprocessing"], log, "validation")
        calibration_images = photo_tensor(chosen, info["preprocessing"], log, "calibration")

    encode = make_tokenizer(folder, info)
    fp32_text = session(folder / FP32_PARTS["text_encoder"])
    fp32_head = session(folder / FP32_PARTS["head"])
    tokens = {t: encode(t) for t in texts}
    fp32_features = {
        t: fp32_text.run(["text_features"], {"input_ids": ids, "attention_mask": mask})[0]
        for t, (ids, mask) in tokens.items()
    }

    tmp = Path(tempfile.mkdtemp(prefix=".int8-", dir=folder))
    try:
        # --- quantisation ---------------------------------------------------------------------------------------
        with step(log, "[int8 2/5] text encoder: dynamic int8 (MatMul, Gather), per channel -> text_encoder.int8.onnx"):
            quiet_quantizer()
            quantize_dynamic(
                folder / FP32_PARTS["text_encoder"],
                tmp / VARIANT_PARTS["text_encoder"],
                op_types_to_quantize=list(TEXT_OPS),
                per_channel=True,
                reduce_range=reduce_range,
                weight_type=QuantType.QInt8,
            )

        class Photos(CalibrationDataReader):
            """Each calibration photo once, with the texts' fp32 features in turn."""

            def __init__(self) -> None:
                self.i = 0

            def get_next(self) -> Optional[Dict[str, np.ndarray]]:
                if self.i >= len(calibration_images):
                    return None
                i, self.i = self.i, self.i + 1
                if (i + 1) % 32 == 0 or i + 1 == len(calibration_images):
                    log(f"  calibration: {i + 1}/{len(calibration_images)} photos through the head")
                return {"image": calibration_images[i : i + 1], "text_features": fp32_features[texts[i % len(texts)]]}

        method = {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }[calibration_method]
        # ONNX Runtime's pre-processing first (its quantisation guide asks for it): it folds the Identity nodes
        # the exporter leaves where weights are shared. Without it, a Conv whose bias comes through an Identity
        # does not match ONNX Runtime's QDQ fusion and runs in fp32 between a DequantizeLinear and a
        # QuantizeLinear: 16 of the full-size head's 20 Convs did, which made its int8 head slower than fp32.
        head_input = tmp / "head.preprocessed.onnx"
        quant_pre_process(folder / FP32_PARTS["head"], head_input, skip_symbolic_shape=True)
        head_nodes = [n.name for n in onnx.load(str(head_input)).graph.node]
        unknown = [n for n in exclude_nodes if not any(h == n or h.startswith(n) for h in head_nodes)]
        if unknown:
            raise ExportError(
                f"no node of head.onnx (as ONNX Runtime's pre-processing leaves it: the names --keep-fp32 takes) "
                f"is named (or begins with) {', '.join(unknown)}"
            )
        excluded = sorted({h for h in head_nodes for n in exclude_nodes if h == n or h.startswith(n)})
        with step(
            log,
            f"[int8 3/5] head: static int8 QDQ ({', '.join(head_ops)}), per channel, calibrated ({calibration_method}, "
            f"{len(calibration_images)} photos) -> head.int8.onnx",
        ):
            quiet_quantizer()
            quantize_static(
                head_input,
                tmp / VARIANT_PARTS["head"],
                Photos(),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(head_ops),
                per_channel=True,
                reduce_range=reduce_range,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded,
                calibrate_method=method,
            )
            for leftover in [*tmp.glob("augmented_model*"), head_input]:
                leftover.unlink()
            dropped = drop_unused_initializers(tmp / VARIANT_PARTS["head"])
            if dropped:
                log(f"  {dropped} constants the quantiser left unused (the folded ReLU6s' bounds) removed")

        # --- agreement --------------------------------------------------------------------------------------------
        int8_text = session(tmp / VARIANT_PARTS["text_encoder"])
        int8_head = session(tmp / VARIANT_PARTS["head"])
        by_text: Dict[str, Any] = {}
        all_fp32, all_int8 = [], []
        with step(log, f"[int8 4/5] measuring int8 against fp32: {len(images)} photos x {len(texts)} texts"):
            for n, text in enumerate(texts, 1):
                ids, mask = tokens[text]
                features = int8_text.run(["text_features"], {"input_ids": ids, "attention_mask": mask})[0]
                real = mask[0].astype(bool)
                a, b = fp32_features[text][0][real].ravel(), features[0][real].ravel()
                cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))
                logits_fp32 = run_head(fp32_head, images, fp32_features[text])
                logits_int8 = run_head(int8_head, images, features)
                all_fp32.append(logits_fp32)
                all_int8.append(logits_int8)
                figures = compare(logits_fp32, logits_int8, labels)
                figures["text_features_cosine"] = round(cosine, 5)
                figures["tokens"] = int(mask.sum())
                by_text[text] = figures
                log(
                    f"  [{n}/{len(texts)}] {_short(text):<32} top-1 agreement {figures['top1_agreement']:.4f}, "
                    f"top-5 overlap {figures['top5_overlap']:.4f}, max |dp| {figures['max_abs_delta_p']:.4f}"
                    + (
                        f", accuracy {figures['accuracy_fp32']:.4f} -> {figures['accuracy_int8']:.4f}"
                        if labels is not None
                        else ""
                    )
                    + f", features cosine {cosine:.5f}"
                )
        overall = compare(
            np.concatenate(all_fp32), np.concatenate(all_int8), None if labels is None else np.tile(labels, len(texts))
        )
        worst_text = min(texts, key=lambda t: by_text[t]["top1_agreement"])
        worst = by_text[worst_text]["top1_agreement"]
        passed = worst >= min_agreement

        # --- speed --------------------------------------------------------------------------------------------------
        timing: Optional[Dict[str, Any]] = None
        if timing_runs > 0:
            with step(log, f"[int8 5/5] timing each part, fp32 and int8 (batch 1, 2 threads, median of {timing_runs})"):
                ids, mask = tokens[DEFAULT_TEXT]
                text_feeds = {"input_ids": ids, "attention_mask": mask}
                head_feeds = {"image": images[:1], "text_features": fp32_features[DEFAULT_TEXT]}
                ms = {
                    "text_encoder": {
                        "fp32": median_ms(fp32_text, text_feeds, timing_runs),
                        "int8": median_ms(int8_text, text_feeds, timing_runs),
                    },
                    "head": {
                        "fp32": median_ms(fp32_head, head_feeds, timing_runs),
                        "int8": median_ms(int8_head, head_feeds, timing_runs),
                    },
                }
                for part, t in ms.items():
                    log(f"  {part:<12} fp32 {t['fp32']:8.2f} ms   int8 {t['int8']:8.2f} ms")
                timing = {
                    "ms": ms,
                    "batch": 1,
                    "threads": 2,
                    "runs": timing_runs,
                    "statistic": "median",
                    "machine": f"{platform.machine()}, {os.cpu_count()} CPUs ({platform.processor() or 'unknown'})",
                    "note": "onnxruntime on the exporting machine, while it did whatever else it was doing",
                }
        else:
            log("[int8 5/5] timing skipped (timing runs 0)")
        del int8_text, int8_head

        entry: Dict[str, Any] = {
            "parts": dict(VARIANT_PARTS),
            "made_from": {name: info["files"][name]["sha256"] for name in FP32_PARTS.values()},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "quantization": {
                "onnxruntime": ort.__version__,
                "onnx": onnx.__version__,
                "text_encoder": {
                    "kind": "dynamic",
                    "ops": list(TEXT_OPS),
                    "weights": "int8, symmetric, per channel",
                    "activations": "uint8, range computed at each forward",
                    "reduce_range": reduce_range,
                    "reduce_range_why": REDUCE_RANGE_WHY,
                },
                "head": {
                    "kind": "static",
                    "format": "QDQ",
                    "preprocessed": (
                        "onnxruntime.quantization.shape_inference.quant_pre_process (shared weights' Identity nodes "
                        "folded, so that every Conv fuses)"
                    ),
                    "ops": list(head_ops),
                    "weights": "int8, symmetric, per channel",
                    "activations": "uint8, calibrated ranges",
                    "reduce_range": reduce_range,
                    "reduce_range_why": REDUCE_RANGE_WHY,
                    "activations_folded": (
                        "Relu and Clip (ReLU6) quantised: folded into the range of the output before them"
                    ),
                    "excluded_nodes": excluded,
                    "calibration": {
                        "method": calibration_method,
                        "photos": len(calibration_images),
                        "of": len(calibration_items),
                        "folder": str(calibration_dir),
                        "seed": calibration_seed,
                        "choice": "random.Random(seed).sample of the folder's photos (sorted by class and name)",
                        "texts": "the agreement texts' fp32 features, in turn",
                    },
                },
            },
            "validation": {
                "folder": str(validation_dir),
                "photos": len(images),
                "labelled": labels is not None,
                **({"per_class": per_class} if per_class is not None else {}),
                "disjoint_from_calibration": True,
                "preprocessing": "model.json's (resize 256 bilinear antialiased, centre crop 224, ImageNet mean/std)",
                "default_text": DEFAULT_TEXT,
                "texts": texts,
            },
            "agreement": {"by_text": by_text, "all_texts": overall},
            "threshold": {
                "min_top1_agreement": min_agreement,
                "applies_to": "the top-1 agreement of each text (the lowest must reach it)",
            },
            "worst_text": worst_text,
            "worst_top1_agreement": worst,
            "passed": passed,
            **({"accepted_by": "--allow-disagreement"} if not passed else {}),
            **({"timing": timing} if timing is not None else {}),
            **({"command": command} if command else {}),
        }
        if not passed and not allow_disagreement:
            raise VariantRefused(
                f"the int8 variant's top-1 agreement with fp32 is {worst:.4f} with the text {_short(worst_text)} "
                f"(on {len(images)} photos of {validation_dir}), under the threshold {min_agreement:g}: it was not "
                "written and model.json is unchanged (accept it with --allow-disagreement or a lower "
                "--min-agreement)",
                entry,
            )
        if not passed:
            log(f"  warning: top-1 agreement {worst:.4f} is under {min_agreement:g}; written as asked (passed: false)")

        # --- the files and model.json ---------------------------------------------------------------------------------
        files = {}
        for name in VARIANT_PARTS.values():
            (tmp / name).replace(folder / name)
            files[name] = {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
            log(f"  {name:<24} {files[name]['bytes'] / 1e6:7.2f} MB  sha256 {files[name]['sha256'][:16]}...")
        entry = {"files": files, **entry}
        info["files"].update(files)
        info.setdefault("variants", {})["int8"] = entry
        write_model_json(folder, info)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(
        f"int8 variant made in {time.perf_counter() - total_start:.1f} s: worst top-1 agreement {worst:.4f} "
        f"({'passed' if passed else 'NOT passed'}, threshold {min_agreement:g})"
    )
    return entry


def drop_unused_initializers(path: Path) -> int:
    """Removes the constants (initializers and Constant nodes) no node reads, which onnxruntime warns about
    at every load; returns how many."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    constants = [n for n in graph.node if n.op_type == "Constant" and not set(n.output) & used]
    for node in constants:
        graph.node.remove(node)
    unused += constants
    if unused:
        onnx.save(model, str(path))
    return len(unused)


def quiet_quantizer() -> None:
    """onnxruntime.quantization's advice to pre-process (its optimisations gave the same figures on the demo
    model) and onnxruntime's notes about unused initializers of the calibration model stay off the output."""
    import logging

    import onnxruntime as ort

    logging.getLogger().setLevel(logging.ERROR)
    ort.set_default_logger_severity(3)


def _short(text: str) -> str:
    return repr(text if len(text) <= 30 else text[:27] + "...")
