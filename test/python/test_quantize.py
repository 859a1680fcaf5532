"""The int8 variant (scripts/foodmodel/quantize.py, scripts/export_model.py --precision int8): files beside the
fp32 ones, model.json's entries, the agreement gate and its overrides, and the variant shipped in models/.

    .venv/bin/python -m pytest test/python/test_quantize.py

A small random model and synthetic photos (written into temporary folders) for the exporter; the shipped
variant's recorded figures and hashes need only the repository, and measuring it again needs
../shared/data/food/val (skipped, saying so, where it is absent).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_export import explain, run_cli, write_vocab  # noqa: E402

MODELS = REPO / "models"
VAL = REPO.parent / "shared" / "data" / "food" / "val"
CLASSES = ["pizza", "steak", "sushi"]
INT8_FILES = ("text_encoder.int8.onnx", "head.int8.onnx")
FP32_FILES = ("best_model.pth", "best_model.onnx", "text_encoder.pth", "head.pth", "text_encoder.onnx", "head.onnx")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_photos(folder: Path, count: int, seed: int, classes: list[str] | None = None) -> Path:
    """Seeded synthetic JPEGs (smooth colour fields with noise, 300 x 260): in class folders when `classes`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(count):
        sub = folder / classes[i % len(classes)] if classes else folder
        sub.mkdir(parents=True, exist_ok=True)
        y, x = np.mgrid[0:260, 0:300] / 300.0
        base = rng.uniform(0, 255, 3)
        slope = rng.uniform(-200, 200, (2, 3))
        rgb = base + x[..., None] * slope[0] + y[..., None] * slope[1] + rng.normal(0, 20, (260, 300, 3))
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(sub / f"photo{seed}_{i}.jpg", quality=90)
    return folder


@pytest.fixture(scope="module")
def variant_export(tmp_path_factory):
    """A small random model exported with its int8 variant in one command (--precision int8)."""
    tmp = tmp_path_factory.mktemp("int8")
    vocab = write_vocab(tmp / "vocab.txt")
    mapping = tmp / "class_mapping.json"
    mapping.write_text(json.dumps({name: i for i, name in enumerate(CLASSES)}))
    calibration = write_photos(tmp / "calibration", 20, seed=1)
    validation = write_photos(tmp / "validation", 12, seed=2, classes=CLASSES)
    out = tmp / "model"
    result = run_cli(
        "--random", "small", "--class-mapping", mapping, "--vocab", vocab, "--out", out,
        "--precision", "int8", "--calibration", calibration, "--validation", validation,
        "--calibration-photos", "8", "--timing-runs", "2", "--min-agreement", "0",
        "--text", "Image of pizza", "--text", "something else",
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    return out, calibration, validation, result


def test_the_variant_is_written_beside_the_fp32_files_and_described_in_model_json(variant_export):
    import onnxruntime as ort

    out, _, validation, result = variant_export
    info = json.loads((out / "model.json").read_text(encoding="utf-8"))
    for name in FP32_FILES + INT8_FILES:
        assert (out / name).is_file(), name
        assert info["files"][name] == {"sha256": sha256(out / name), "bytes": (out / name).stat().st_size}, name
    variant = info["variants"]["int8"]
    assert variant["parts"] == {"text_encoder": "text_encoder.int8.onnx", "head": "head.int8.onnx"}
    assert variant["files"] == {name: info["files"][name] for name in INT8_FILES}
    assert variant["made_from"] == {n: info["files"][n]["sha256"] for n in ("text_encoder.onnx", "head.onnx")}
    q = variant["quantization"]
    assert q["onnxruntime"] == ort.__version__
    assert q["text_encoder"]["kind"] == "dynamic" and set(q["text_encoder"]["ops"]) == {"MatMul", "Gather"}
    assert q["head"]["kind"] == "static" and q["head"]["format"] == "QDQ" and "Conv" in q["head"]["ops"]
    assert "per channel" in q["head"]["weights"] and "per channel" in q["text_encoder"]["weights"]
    assert q["head"]["calibration"]["photos"] == 8 and q["head"]["calibration"]["of"] == 20
    assert variant["validation"]["photos"] == 12 and variant["validation"]["labelled"] is True
    assert variant["validation"]["per_class"] == {"pizza": 4, "steak": 4, "sushi": 4}
    texts = variant["validation"]["texts"]
    assert texts == ["Image of food", "Image of pizza", "something else"]  # the default text always first
    for text in texts:
        figures = variant["agreement"]["by_text"][text]
        for key in ("top1_agreement", "top5_overlap", "max_abs_delta_p", "accuracy_fp32", "accuracy_int8"):
            assert 0 <= figures[key] <= 1, (text, key)
    assert variant["threshold"]["min_top1_agreement"] == 0 and variant["passed"] is True
    assert set(variant["timing"]["ms"]) == {"text_encoder", "head"}
    assert "--precision int8" in variant["command"]
    # the parts run in onnxruntime, and the int8 head is a quantised graph
    text = ort.InferenceSession(str(out / "text_encoder.int8.onnx"), providers=["CPUExecutionProvider"])
    head = ort.InferenceSession(str(out / "head.int8.onnx"), providers=["CPUExecutionProvider"])
    ids = np.zeros((2, 128), dtype=np.int64)
    ids[:, :3] = [101, 2000, 102]
    mask = (ids != 0).astype(np.int64)
    (features,) = text.run(None, {"input_ids": ids, "attention_mask": mask})
    (logits,) = head.run(None, {"image": np.zeros((2, 3, 224, 224), np.float32), "text_features": features})
    assert logits.shape == (2, 3) and np.isfinite(logits).all()
    import onnx

    ops = {n.op_type for n in onnx.load(str(out / "head.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # every convolution runs in int8: once ONNX Runtime has fused the QDQ pairs, no fp32 Conv is left (a Conv
    # whose bias came through an Identity node stayed fp32 before the head was pre-processed)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(out.parent / "head.int8.optimized.onnx")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    ort.InferenceSession(str(out / "head.int8.onnx"), options, providers=["CPUExecutionProvider"])
    fused = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    assert "Conv" not in fused and fused.count("QLinearConv") > 0, sorted(set(fused))
    lines = result.stdout.splitlines()
    for n in range(1, 6):
        assert any(line.startswith(f"[int8 {n}/5] ") for line in lines), n
    assert any("calibration: 8/8 photos through the head" in line for line in lines)
    assert result.stderr.strip() == ""


def test_a_variant_under_the_threshold_is_refused_and_accepted_only_when_told(variant_export, tmp_path):
    out, calibration, validation, _ = variant_export
    folder = tmp_path / "model"
    shutil.copytree(out, folder)
    for name in INT8_FILES:
        (folder / name).unlink()
    info = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    del info["variants"]
    for name in INT8_FILES:
        del info["files"][name]
    (folder / "model.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    before = {p.name: sha256(p) for p in folder.iterdir()}
    common = ("--from-folder", folder, "--precision", "int8", "--calibration", calibration, "--validation", validation)
    common += ("--calibration-photos", "4", "--timing-runs", "0")
    # top-1 agreement is at most 1: 1.01 refuses any variant
    result = run_cli(*common, "--min-agreement", "1.01")
    assert result.returncode == 4, explain(result)
    assert "under the threshold 1.01" in result.stderr and "model.json is unchanged" in result.stderr
    assert "Traceback" not in result.stderr
    assert {p.name: sha256(p) for p in folder.iterdir()} == before  # nothing written, nothing left behind
    # accepted when told, and recorded as not passed
    result = run_cli(*common, "--min-agreement", "1.01", "--allow-disagreement")
    assert result.returncode == 0, explain(result)
    info = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    variant = info["variants"]["int8"]
    assert variant["passed"] is False and variant["accepted_by"] == "--allow-disagreement"
    assert variant["threshold"]["min_top1_agreement"] == 1.01
    assert "timing" not in variant
    for name in FP32_FILES:  # the fp32 files were not touched
        assert sha256(folder / name) == before[name] == info["files"][name]["sha256"], name


def test_variant_errors_are_clear(variant_export, tmp_path):
    out, calibration, validation, _ = variant_export
    folder = tmp_path / "model"
    shutil.copytree(out, folder)
    base = ("--from-folder", folder, "--precision", "int8", "--timing-runs", "0")
    cases = [
        (("--from-folder", folder, "--calibration", calibration, "--validation", validation), 2, "--precision int8"),
        ((*base, "--calibration", calibration), 2, "needs --calibration DIR and --validation DIR"),
        ((*base, "--calibration", validation, "--validation", validation), 1, "also calibration photos"),
        ((*base, "--calibration", tmp_path / "none", "--validation", validation), 1, "no such photo folder"),
        ((*base, "--calibration", calibration, "--validation", validation, "--keep-fp32", "/nope"), 1, "no node"),
        (
            (*base, "--vocab", folder / "vocab.txt", "--calibration", calibration, "--validation", validation),
            2,
            "no --out",
        ),
    ]
    for args, status, message in cases:
        result = run_cli(*args)
        assert result.returncode == status, explain(result)
        assert message in result.stderr, explain(result)
        assert "Traceback" not in result.stderr, explain(result)
    (folder / "head.onnx").write_bytes((folder / "head.onnx").read_bytes() + b"\0")
    result = run_cli(*base, "--calibration", calibration, "--validation", validation)
    assert result.returncode == 1 and "does not match the sha256 in model.json" in result.stderr, explain(result)


# ------------------------------------------------------------------------------------------------------
# the variant shipped in models/


def shipped_variant():
    info = json.loads((MODELS / "model.json").read_text(encoding="utf-8"))
    assert "int8" in info.get("variants", {}), "models/model.json has no int8 variant"
    return info, info["variants"]["int8"]


def test_the_shipped_int8_variant_meets_its_targets_and_matches_its_hashes():
    info, variant = shipped_variant()
    for name in INT8_FILES:
        entry = info["files"][name]
        assert variant["files"][name] == entry
        assert (MODELS / name).stat().st_size == entry["bytes"], name
        assert sha256(MODELS / name) == entry["sha256"], name
    assert variant["made_from"] == {n: info["files"][n]["sha256"] for n in ("text_encoder.onnx", "head.onnx")}
    assert variant["passed"] is True and variant["threshold"]["min_top1_agreement"] >= 0.99
    assert variant["validation"]["photos"] == 75 and variant["validation"]["labelled"]
    assert variant["quantization"]["head"]["calibration"]["photos"] >= 64
    texts = variant["agreement"]["by_text"]
    assert {"Image of food", "Image of pizza", "Image of steak", "Image of sushi"} <= set(texts)
    for text, figures in texts.items():
        assert figures["top1_agreement"] >= 0.99, text
        assert figures["accuracy_int8"] >= figures["accuracy_fp32"] - 0.01, text
    assert texts["Image of food"]["accuracy_fp32"] == info["evaluation"]["accuracy"]
    card = (MODELS / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "text_encoder.int8.onnx" in card and "--precision int8" in card


def test_the_shipped_int8_variant_measures_as_recorded():
    if not VAL.is_dir():
        pytest.skip(f"{VAL} is absent (a fresh clone): the shipped variant's figures cannot be measured again")
    from foodmodel.quantize import compare, list_photos, make_tokenizer, photo_tensor, run_head, session

    info, variant = shipped_variant()
    classes, items = list_photos(VAL)
    labels = np.array([info["classes"].index(classes[y]) for _, y in items])
    images = photo_tensor([p for p, _ in items], info["preprocessing"], lambda _: None, "validation")
    ids, mask = make_tokenizer(MODELS, info)("Image of food")
    logits = {}
    for precision, (text_file, head_file) in {
        "fp32": ("text_encoder.onnx", "head.onnx"),
        "int8": INT8_FILES,
    }.items():
        (features,) = session(MODELS / text_file).run(None, {"input_ids": ids, "attention_mask": mask})
        logits[precision] = run_head(session(MODELS / head_file), images, features)
    figures = compare(logits["fp32"], logits["int8"], labels)
    recorded = variant["agreement"]["by_text"]["Image of food"]
    for key in ("top1_agreement", "top5_overlap", "accuracy_fp32", "accuracy_int8"):
        assert figures[key] == recorded[key], key
    assert figures["max_abs_delta_p"] == pytest.approx(recorded["max_abs_delta_p"], abs=2e-3)
