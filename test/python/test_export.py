"""The exporter (scripts/foodmodel/export.py and the CLI scripts/export_model.py): model folders that pass their
own checks, model.json, and the CLI's errors. Everything is written into temporary folders.

    .venv/bin/python -m pytest test/python/test_export.py               # all, with the full-size export (~1.5 min)
    .venv/bin/python -m pytest test/python/test_export.py -m "not slow" # without it
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from foodmodel.architecture import FoodClassifier, FoodClassifierConfig  # noqa: E402
from foodmodel.export import FILES, ExportError, export_model_folder  # noqa: E402
from foodmodel.export_inputs import normalize_class_mapping  # noqa: E402

EXPORTER = REPO / "scripts" / "export_model.py"

# `-m "not slow"` deselects the full-size export (the marker is registered in pytest.ini).
slow = pytest.mark.slow
SPECIAL = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # BERT's ids


def write_vocab(path: Path, words: int = 400) -> Path:
    path.write_text("\n".join(SPECIAL + [f"word{i}" for i in range(words)]) + "\n", encoding="utf-8")
    return path


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXPORTER), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_folder(folder: Path, config: FoodClassifierConfig, classes: list[str]) -> dict:
    """The folder has every file, model.json describes them (sha256, bytes) and the model."""
    info = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, "model.json"])
    assert sorted(info["files"]) == sorted(FILES)
    for name, entry in info["files"].items():
        assert entry == {"sha256": sha256(folder / name), "bytes": (folder / name).stat().st_size}, name
    H, L, C = config.hidden_size, config.max_length, config.num_classes
    assert info["name"] == "FoodClassifier"
    assert info["inputs"] == [
        {"name": "image", "dtype": "float32", "shape": [-1, 3, 224, 224]},
        {"name": "input_ids", "dtype": "int64", "shape": [-1, L]},
        {"name": "attention_mask", "dtype": "int64", "shape": [-1, L]},
    ]
    assert info["outputs"] == [{"name": "logits", "dtype": "float32", "shape": [-1, C]}]
    assert info["text_encoder"]["file"] == "text_encoder.pth"
    assert info["text_encoder"]["inputs"] == info["inputs"][1:]
    assert info["text_encoder"]["outputs"] == [{"name": "text_features", "dtype": "float32", "shape": [-1, L, H]}]
    assert info["head"]["inputs"] == [info["inputs"][0], info["text_encoder"]["outputs"][0]]
    assert info["head"]["outputs"] == info["outputs"]
    assert info["preprocessing"] == {
        "resize": 256,
        "crop": 224,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "interpolation": "bilinear",
        "antialias": True,
    }
    assert info["max_length"] == L == 128
    assert info["num_classes"] == C
    assert info["classes"] == classes
    assert FoodClassifierConfig.from_dict(info["config"]) == config
    assert set(info["versions"]) >= {"torch", "torchvision", "onnxruntime", "python"}
    assert info["versions"]["torch"] == torch.__version__
    assert time.time() - time.mktime(time.strptime(info["created"][:19], "%Y-%m-%dT%H:%M:%S")) < 86400 * 2
    diffs = info["checks"]["max_abs_diff"]
    assert sorted(diffs) == sorted(
        f"{kind}_batch{b}"
        for b in (1, 3)
        for kind in (
            "torchscript",
            "onnx",
            "text_encoder",
            "text_encoder_then_head",
            "onnx_text_encoder",
            "onnx_text_encoder_then_head",
        )
    )
    assert all(0 <= d <= 1e-4 for d in diffs.values()), diffs
    assert json.loads((folder / "class_mapping.json").read_text()) == {n: i for i, n in enumerate(classes)}
    assert info["tokenizer"]["cls_id"] == 101 and info["tokenizer"]["pad_id"] == 0
    return info


def check_dynamic_batch(folder: Path, model: FoodClassifier, batch: int = 4) -> None:
    """The saved files at a batch size none of the export's own checks used, against the eager model."""
    config = model.config
    g = torch.Generator().manual_seed(99)
    image = torch.randn(batch, 3, 224, 224, generator=g)
    ids = torch.randint(200, min(config.vocab_size, 504), (batch, 128), generator=g)
    mask = (torch.arange(128)[None, :] < torch.tensor([[5], [128], [40], [77]])[:batch]).long()
    ids = ids * mask
    with torch.no_grad():
        want = model(image, ids, mask)
        full = torch.jit.load(str(folder / "best_model.pth"))
        assert (full(image, ids, mask) - want).abs().max() <= 1e-4
        features = torch.jit.load(str(folder / "text_encoder.pth"))(ids, mask)
        assert (torch.jit.load(str(folder / "head.pth"))(image, features) - want).abs().max() <= 1e-4
    import onnxruntime as ort

    session = ort.InferenceSession(str(folder / "best_model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "input_ids", "attention_mask"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    (got,) = session.run(None, {"image": image.numpy(), "input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    assert (torch.from_numpy(got) - want).abs().max() <= 1e-4
    text = ort.InferenceSession(str(folder / "text_encoder.onnx"), providers=["CPUExecutionProvider"])
    head = ort.InferenceSession(str(folder / "head.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in head.get_inputs()] == ["image", "text_features"]
    (onnx_features,) = text.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    (got,) = head.run(None, {"image": image.numpy(), "text_features": onnx_features})
    assert (torch.from_numpy(got) - want).abs().max() <= 1e-4


# ------------------------------------------------------------------------------------------------------
# the small export, through the CLI


@pytest.fixture(scope="module")
def small_export(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    vocab = write_vocab(tmp / "vocab.txt")
    out = tmp / "out"
    start = time.perf_counter()
    result = run_cli("--random", "small", "--num-classes", "7", "--seed", "3", "--vocab", vocab, "--out", out)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, explain(result)
    print(f"small export through the CLI: {seconds:.1f} s")
    return out, result


def test_the_small_random_export_passes_its_checks_and_describes_every_file(small_export):
    out, result = small_export
    torch.manual_seed(3)
    model = FoodClassifier(FoodClassifierConfig.small(num_classes=7), bert="plain").eval()
    info = check_folder(out, model.config, [f"class_{i}" for i in range(7)])
    assert info["source"] == {"kind": "random", "preset": "small", "seed": 3}
    # the same seed gives the same weights: the files compute what this model computes
    check_dynamic_batch(out, model)


def test_the_cli_reports_progress_with_timings(small_export):
    _, result = small_export
    lines = result.stdout.splitlines()
    for n in range(1, 8):
        assert any(line.startswith(f"[{n}/7] ") for line in lines), n
    assert sum(1 for line in lines if line.strip().startswith("done in ") and line.strip().endswith(" s")) >= 7
    assert any("onnx_batch3" in line and line.rstrip().endswith("ok") for line in lines)
    assert lines[-1].startswith("Done in ")
    assert result.stderr.strip() == ""  # no warnings from tracing or the ONNX export


def test_help_describes_the_options():
    result = run_cli("--help")
    assert result.returncode == 0
    for option in (
        "--checkpoint",
        "--class-mapping",
        "--vocab",
        "--out",
        "--random",
        "--num-classes",
        "--seed",
        "--tolerance",
        "best_model.onnx",
        "text_encoder.pth",
        "head.pth",
        "model.json",
    ):
        assert option in result.stdout, option


# ------------------------------------------------------------------------------------------------------
# a workshop-style checkpoint, through the CLI


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ckpt")
    config = FoodClassifierConfig.small(num_classes=3, vocab_size=600)
    torch.manual_seed(11)
    model = FoodClassifier(config, bert="plain").eval()
    state = dict(model.state_dict())
    state["text_encoder.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)
    torch.save({"epoch": 9, "model_state_dict": state, "val_acc": 0.9}, str(tmp / "best_model.pth"))
    (tmp / "class_mapping.json").write_text(json.dumps({"pizza": 0, "steak": 1, "sushi": 2}))
    write_vocab(tmp / "vocab.txt")
    return tmp, model


def test_a_checkpoint_converts_and_the_files_compute_the_checkpoints_logits(small_checkpoint, tmp_path):
    folder, model = small_checkpoint
    out = tmp_path / "model"
    result = run_cli(
        "--checkpoint",
        folder / "best_model.pth",
        "--class-mapping",
        folder / "class_mapping.json",
        "--vocab",
        folder / "vocab.txt",
        "--out",
        out,
    )
    assert result.returncode == 0, explain(result)
    info = check_folder(out, model.config, ["pizza", "steak", "sushi"])
    assert info["source"]["kind"] == "checkpoint"
    assert info["source"]["sha256"] == sha256(folder / "best_model.pth")
    check_dynamic_batch(out, model)


def test_cli_errors_are_clear(small_checkpoint, tmp_path):
    folder, _ = small_checkpoint
    vocab = folder / "vocab.txt"
    mapping = folder / "class_mapping.json"
    out = tmp_path / "out"
    not_a_checkpoint = tmp_path / "notes.pth"
    not_a_checkpoint.write_text("these are my notes, not a checkpoint\n")
    torchscript = tmp_path / "script.pth"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(torchscript))
    four = tmp_path / "four.json"
    four.write_text(json.dumps({"a": 0, "b": 1, "c": 2, "d": 3}))
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": 0,')
    cases = [
        (("--checkpoint", tmp_path / "missing.pth", "--class-mapping", mapping), 1, "no such checkpoint file"),
        (("--checkpoint", not_a_checkpoint, "--class-mapping", mapping), 1, "is not a PyTorch checkpoint"),
        (("--checkpoint", torchscript, "--class-mapping", mapping), 1, "is a TorchScript model"),
        (
            ("--checkpoint", folder / "best_model.pth", "--class-mapping", four),
            1,
            "has 4 classes but the checkpoint's classifier has 3 outputs",
        ),
        (("--checkpoint", folder / "best_model.pth", "--class-mapping", broken), 1, "is not valid JSON"),
        (("--checkpoint", folder / "best_model.pth"), 2, "--checkpoint needs --class-mapping"),
        (("--random", "small", "--class-mapping", four, "--num-classes", "5"), 1, "has 4 classes"),
    ]
    for args, status, message in cases:
        result = run_cli(*args, "--vocab", vocab, "--out", out)
        assert result.returncode == status, explain(result)
        assert message in result.stderr, explain(result)
        assert "Traceback" not in result.stderr, explain(result)
    result = run_cli("--random", "small", "--vocab", tmp_path / "nope.txt", "--out", out)
    assert result.returncode == 1 and "no such vocabulary file" in result.stderr, explain(result)
    assert not (out / "model.json").exists()


def test_a_failed_check_exits_3_and_writes_no_model_json(small_checkpoint, tmp_path):
    folder, _ = small_checkpoint
    out = tmp_path / "out"
    result = run_cli(
        "--checkpoint",
        folder / "best_model.pth",
        "--class-mapping",
        folder / "class_mapping.json",
        "--vocab",
        folder / "vocab.txt",
        "--out",
        out,
        "--tolerance",
        "1e-12",
    )
    assert result.returncode == 3, explain(result)
    assert "onnx_batch1 differs by" in result.stderr and "model.json was not written" in result.stderr
    assert "TOO LARGE" in result.stdout
    assert not (out / "model.json").exists()


# ------------------------------------------------------------------------------------------------------
# export_model_folder's own checks of its inputs


def test_export_model_folder_refuses_inputs_that_do_not_fit(tmp_path):
    config = FoodClassifierConfig.small(num_classes=3, vocab_size=300)
    torch.manual_seed(0)
    model = FoodClassifier(config, bert="plain")
    vocab = write_vocab(tmp_path / "vocab.txt", words=100)
    mapping = {"a": 0, "b": 1, "c": 2}
    cases = [
        (dict(class_mapping={"a": 0, "b": 1}), "has 2 classes but the model has 3"),
        (dict(vocab_path=write_vocab(tmp_path / "big.txt", words=400)), "has 504 tokens but"),
        (dict(vocab_path=tmp_path / "none.txt"), "no such vocabulary file"),
        (dict(extra={"classes": []}), "may not replace model.json's own key(s) classes"),
        (dict(config=FoodClassifierConfig.small(num_classes=4, vocab_size=300)), "another config"),
    ]
    for change, message in cases:
        args = dict(model=model, config=config, out_dir=tmp_path / "out", class_mapping=mapping, vocab_path=vocab)
        args.update(change)
        with pytest.raises(ExportError, match=message.replace("(", r"\(").replace(")", r"\)")):
            export_model_folder(log=lambda _: None, **args)
    (tmp_path / "bad.txt").write_text("hello\nworld\n")
    with pytest.raises(ExportError, match=r"lacks the token\(s\) \[PAD\] \[UNK\] \[CLS\] \[SEP\]"):
        export_model_folder(model, config, tmp_path / "out", mapping, tmp_path / "bad.txt", log=lambda _: None)


def test_class_mappings_in_both_directions():
    assert normalize_class_mapping({"pizza": 1, "steak": 0}) == ["steak", "pizza"]
    assert normalize_class_mapping({"1": "pizza", "0": "steak"}) == ["steak", "pizza"]
    for bad, message in [
        ({}, "non-empty"),
        ({"a": 0, "b": 0}, "index 0 twice"),
        ({"a": 0, "b": 2}, "missing [1]"),
        ({"a": "x"}, "integer indices"),
        ({"a": True}, "integer indices"),
    ]:
        with pytest.raises(ExportError) as e:
            normalize_class_mapping(bad)
        assert message in str(e.value)


# ------------------------------------------------------------------------------------------------------
# the full size (the workshop's model: ~1.6 GB of files, about 1.5 min on 2 CPUs)


@slow
def test_the_full_size_random_export_passes_its_checks():
    # its own temporary folder, removed at the end: pytest keeps its tmp_path folders of the last 3 runs
    with tempfile.TemporaryDirectory(prefix="food-export-full-") as tmp:
        folder = Path(tmp) / "model"
        vocab = write_vocab(Path(tmp) / "vocab.txt")
        torch.manual_seed(0)
        config = FoodClassifierConfig.full()
        model = FoodClassifier(config, bert="plain").eval()
        mapping = {f"food_{i}": i for i in range(101)}
        lines: list[str] = []
        start = time.perf_counter()
        info = export_model_folder(
            model,
            config,
            folder,
            mapping,
            vocab,
            log=lines.append,
            extra={"source": {"kind": "random", "preset": "full", "seed": 0}},
        )
        print(
            f"full-size export: {time.perf_counter() - start:.1f} s; "
            f"max abs differences {info['checks']['max_abs_diff']}"
        )
        check_folder(folder, config, [f"food_{i}" for i in range(101)])
        assert info == json.loads((folder / "model.json").read_text())
        assert info["files"]["best_model.pth"]["bytes"] > 500e6  # the weights of ResNet18 + BERT-base are in it
        assert not any("warning" in line for line in lines), lines
