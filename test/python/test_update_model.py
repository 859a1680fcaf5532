"""Tests of scripts/update_model.sh against a local HTTP server on 127.0.0.1.

Run: .venv/bin/python -m pytest test/python/test_update_model.py

Each test runs the real script with subprocess into a temporary target folder. The server serves
folders of files made here: a small workshop-style training checkpoint (from
scripts/foodmodel/architecture.py, small preset), a TorchScript module, broken class mappings and
vocabularies. The end-to-end conversion tests need scripts/export_model.py and the architecture; they
are skipped, saying why, when those are missing.
"""

import functools
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

import torch

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "update_model.sh"
EXPORTER = REPO / "scripts" / "export_model.py"
ARCHITECTURE = REPO / "scripts" / "foodmodel" / "architecture.py"

CLASSES = {"pizza": 0, "steak": 1, "sushi": 2}
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB_SIZE = 200


def make_vocab(size):
    words = [f"word{i}" for i in range(size - len(SPECIAL) - 3)]
    return SPECIAL + ["pizza", "steak", "sushi"] + words


# --------------------------------------------------------------------------------------------------
# served files


class TinyClassifier(torch.nn.Module):
    """Stands in for a TorchScript export: forward(image, input_ids, attention_mask) -> logits."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(3, 3)

    def forward(self, image, input_ids, attention_mask):
        pooled = image.mean(dim=(2, 3))
        return self.head(pooled) + (input_ids * attention_mask).sum(dim=1, keepdim=True).float() * 0


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


BAD_MAPPINGS = {
    "not_json": "{'pizza': 0,",
    "a_list": json.dumps(["pizza", "steak"]),
    "empty_object": "{}",
    "duplicate_index": json.dumps({"pizza": 0, "steak": 1, "sushi": 1}),
    "gap": json.dumps({"pizza": 0, "steak": 2}),
    "starts_at_one": json.dumps({"pizza": 1, "steak": 2}),
    "string_index": json.dumps({"pizza": "0", "steak": 1}),
    "bool_index": json.dumps({"pizza": False, "steak": True}),
    "html_page": "<!DOCTYPE html><html><body>Not found</body></html>",
}


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """Folder served over HTTP; returns its path. Each subfolder is one 'CDN'."""
    root = tmp_path_factory.mktemp("cdn")
    mapping = json.dumps(CLASSES)

    write(root / "vocab" / "vocab.txt", "\n".join(make_vocab(VOCAB_SIZE)) + "\n")
    write(root / "badvocab" / "vocab.txt", "\n".join(["[PAD]", "[UNK]", "hello"] * 10) + "\n")
    write(root / "empty" / "vocab.txt", b"")

    # TorchScript, installed as is
    torch.manual_seed(0)
    write(root / "ts" / "class_mapping.json", mapping)
    torch.jit.save(torch.jit.script(TinyClassifier().eval()), str(root / "ts" / "best_model.pth"))

    # checkpoints that are not a FoodClassifier's: installable only with --no-convert
    write(root / "fakeckpt" / "class_mapping.json", mapping)
    torch.save(
        {"epoch": 3, "model_state_dict": {"fc.weight": torch.zeros(3, 4)}}, str(root / "fakeckpt" / "best_model.pth")
    )
    write(root / "legacyckpt" / "class_mapping.json", mapping)
    torch.save(
        {"epoch": 3, "model_state_dict": {"fc.weight": torch.zeros(3, 4)}},
        str(root / "legacyckpt" / "best_model.pth"),
        _use_new_zipfile_serialization=False,
    )

    # a checkpoint that pickles a reference to a function besides its tensors: reading it fully would import
    # and call whatever the file names (here a harmless os.getcwd)
    write(root / "objckpt" / "class_mapping.json", mapping)
    torch.save(
        {"hook": os.getcwd, "model_state_dict": {"fc.weight": torch.zeros(3, 4)}},
        str(root / "objckpt" / "best_model.pth"),
    )

    # best_model.pth missing (HTTP 404), or an HTML page instead
    write(root / "nomodel" / "class_mapping.json", mapping)
    write(root / "html" / "class_mapping.json", mapping)
    write(root / "html" / "best_model.pth", "<!DOCTYPE html><html><body>Welcome to the hotel wifi</body></html>")
    write(root / "emptymodel" / "class_mapping.json", mapping)
    write(root / "emptymodel" / "best_model.pth", b"")

    for name, text in BAD_MAPPINGS.items():
        write(root / f"badmap_{name}" / "class_mapping.json", text)
        shutil.copy(root / "ts" / "best_model.pth", root / f"badmap_{name}" / "best_model.pth")
    return root


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="session")
def server(served):
    """Base URL of the local HTTP server (127.0.0.1, a free port)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# --------------------------------------------------------------------------------------------------
# a small workshop-style checkpoint, from the project's FoodClassifier architecture


def load_architecture():
    if not ARCHITECTURE.exists():
        pytest.skip(f"{ARCHITECTURE.relative_to(REPO)} is missing: cannot make a workshop checkpoint")
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from foodmodel.architecture import FoodClassifier, FoodClassifierConfig
    finally:
        sys.path.remove(str(REPO / "scripts"))
    return FoodClassifier, FoodClassifierConfig


@pytest.fixture(scope="session")
def checkpoint_url(served, server):
    """Base URL of a folder with a small FoodClassifier training checkpoint (vocabulary: vocab_url)."""
    FoodClassifier, FoodClassifierConfig = load_architecture()
    # small preset with a 200-token vocabulary: a checkpoint of a few MB that converts in seconds
    config = FoodClassifierConfig.small(num_classes=len(CLASSES), vocab_size=VOCAB_SIZE)
    torch.manual_seed(0)
    model = FoodClassifier(config).eval()
    folder = served / "ckpt"
    write(folder / "class_mapping.json", json.dumps(CLASSES))
    write(folder / "vocab.txt", "\n".join(make_vocab(VOCAB_SIZE)) + "\n")
    torch.save({"epoch": 7, "model_state_dict": model.state_dict(), "val_acc": 0.5}, str(folder / "best_model.pth"))
    return f"{server}/ckpt"


def need_exporter():
    if not EXPORTER.exists():
        pytest.skip(f"{EXPORTER.relative_to(REPO)} is missing: cannot test the conversion")


# --------------------------------------------------------------------------------------------------
# helpers


def run_script(target, base_url, vocab_url, *args, timeout=600):
    env = {
        k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "model_dir")
    }
    env.update(
        {
            "MODEL_BASE_URL": base_url,
            "BERT_VOCAB_URL": vocab_url,
            "PYTHON": sys.executable,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return subprocess.run(
        ["bash", str(SCRIPT), "--dir", str(target), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def explain(result):
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def snapshot(folder):
    """Every file under folder with its bytes (None when the folder is absent)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def existing_target(tmp_path):
    """A target folder with an installed model in it, as a user would have."""
    target = tmp_path / "models" / "workshop"
    write(target / "best_model.pth", b"old model")
    write(target / "class_mapping.json", json.dumps({"old": 0}))
    write(target / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n")
    return target


def assert_untouched(target, before):
    assert snapshot(target) == before, "the target folder changed"
    parent = target.parent
    if parent.exists():
        leftovers = sorted(p.name for p in parent.iterdir() if p.name != target.name)
        assert leftovers == [], f"left behind beside the target: {leftovers}"


def is_torchscript(path):
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") for n in z.namelist())


# --------------------------------------------------------------------------------------------------
# tests


def test_help_and_usage_errors():
    result = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert result.returncode == 0, explain(result)
    for word in (
        "--dir",
        "MODEL_DIR",
        "models/workshop",
        "MODEL_BASE_URL",
        "BERT_VOCAB_URL",
        "--keep-checkpoint",
        "--no-convert",
        "--timeout",
        "--retries",
        "--python",
        "export_model.py",
        ".previous",
        "https://cdn.bridgelabs.tech/ghana-ai-hackathon/food-classifier",
        "https://huggingface.co/bert-base-uncased/resolve/main/vocab.txt",
    ):
        assert word in result.stdout, word

    result = subprocess.run(["bash", str(SCRIPT), "--frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown argument: --frobnicate" in result.stderr

    result = subprocess.run(["bash", str(SCRIPT), "--timeout", "soon"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--timeout" in result.stderr


def test_checkpoint_is_converted_end_to_end(tmp_path, server, checkpoint_url, served):
    need_exporter()
    target = tmp_path / "models" / "workshop"
    result = run_script(target, checkpoint_url, f"{checkpoint_url}/vocab.txt")
    assert result.returncode == 0, explain(result)

    for name in (
        "best_model.pth",
        "best_model.onnx",
        "class_mapping.json",
        "vocab.txt",
        "text_encoder.pth",
        "head.pth",
        "model.json",
    ):
        assert (target / name).is_file() and (target / name).stat().st_size > 0, name
    assert is_torchscript(target / "best_model.pth")
    model = torch.jit.load(str(target / "best_model.pth"))
    ids = torch.zeros(1, 128, dtype=torch.long)
    ids[0, :3] = torch.tensor([2, 5, 3])  # [CLS] pizza [SEP]
    mask = (torch.arange(128) < 3).long().unsqueeze(0)
    assert model(torch.rand(1, 3, 224, 224), ids, mask).shape == (1, len(CLASSES))
    info = json.loads((target / "model.json").read_text())
    assert [i["name"] for i in info["inputs"]] == ["image", "input_ids", "attention_mask"]
    assert json.loads((target / "class_mapping.json").read_text()) == CLASSES
    assert (target / "vocab.txt").read_text().split() == (served / "ckpt" / "vocab.txt").read_text().split()
    assert not (target / "checkpoints").exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["workshop"]

    assert "a training checkpoint: it is converted to TorchScript" in result.stdout
    assert "converting the checkpoint" in result.stdout
    assert f"MODEL_DIR={target} npm start" in result.stdout

    # again with --keep-checkpoint: replaces the folder, keeps the first one as workshop.previous
    first = snapshot(target)
    result = run_script(target, checkpoint_url, f"{checkpoint_url}/vocab.txt", "--keep-checkpoint")
    assert result.returncode == 0, explain(result)
    assert snapshot(target.parent / "workshop.previous") == first
    kept = target / "checkpoints" / "best_model.pth"
    assert kept.read_bytes() == (served / "ckpt" / "best_model.pth").read_bytes()
    assert is_torchscript(target / "best_model.pth")
    assert sorted(p.name for p in target.parent.iterdir()) == ["workshop", "workshop.previous"]


def test_torchscript_is_installed_as_is(tmp_path, server, served):
    target = existing_target(tmp_path)
    old = snapshot(target)
    result = run_script(target, f"{server}/ts", f"{server}/vocab/vocab.txt")
    assert result.returncode == 0, explain(result)

    assert (target / "best_model.pth").read_bytes() == (served / "ts" / "best_model.pth").read_bytes()
    assert json.loads((target / "class_mapping.json").read_text()) == CLASSES
    assert (target / "vocab.txt").read_bytes() == (served / "vocab" / "vocab.txt").read_bytes()
    assert sorted(p.name for p in target.iterdir()) == ["best_model.pth", "class_mapping.json", "vocab.txt"]
    assert snapshot(target.parent / "workshop.previous") == old
    assert sorted(p.name for p in target.parent.iterdir()) == ["workshop", "workshop.previous"]

    model = torch.jit.load(str(target / "best_model.pth"))
    logits = model(torch.rand(1, 3, 8, 8), torch.ones(1, 4, dtype=torch.long), torch.ones(1, 4, dtype=torch.long))
    assert logits.shape == (1, 3)

    out = result.stdout
    assert "TorchScript archive: it is installed as is" in out
    assert "converting" not in out
    assert "3 classes: pizza, steak, sushi" in out
    assert "200 tokens" in out
    assert f"MODEL_DIR={target} npm start" in out
    assert "workshop.previous" in out


@pytest.mark.parametrize("folder", ["fakeckpt", "legacyckpt"])
def test_no_convert_installs_the_checkpoint_as_is(tmp_path, server, served, folder):
    target = tmp_path / "models" / "workshop"
    result = run_script(target, f"{server}/{folder}", f"{server}/vocab/vocab.txt", "--no-convert")
    assert result.returncode == 0, explain(result)
    assert (target / "best_model.pth").read_bytes() == (served / folder / "best_model.pth").read_bytes()
    assert sorted(p.name for p in target.iterdir()) == ["best_model.pth", "class_mapping.json", "vocab.txt"]
    assert ("legacy (pre-zip) format" in result.stdout) == (folder == "legacyckpt")
    assert "cannot load it" in result.stdout and "export_model.py" in result.stdout


@pytest.mark.parametrize("missing", ["best_model.pth", "class_mapping.json", "vocab.txt"])
def test_a_404_leaves_the_target_untouched(tmp_path, server, missing):
    target = existing_target(tmp_path)
    before = snapshot(target)
    base = (
        f"{server}/nomodel"
        if missing == "best_model.pth"
        else f"{server}/{'vocab' if missing == 'class_mapping.json' else 'ts'}"
    )
    vocab = f"{server}/ts/vocab.txt" if missing == "vocab.txt" else f"{server}/vocab/vocab.txt"
    result = run_script(target, base, vocab)
    assert result.returncode == 3, explain(result)
    url = vocab if missing == "vocab.txt" else f"{base}/{missing}"
    assert f"could not download {missing} from {url}: HTTP 404" in result.stderr
    assert "moved" in result.stderr
    assert "Nothing was changed" in result.stderr
    assert_untouched(target, before)


def test_an_unreachable_host_says_offline(tmp_path, server):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = existing_target(tmp_path)
    before = snapshot(target)
    base = f"http://127.0.0.1:{port}/food-classifier"
    result = run_script(target, base, f"{server}/vocab/vocab.txt")
    assert result.returncode == 3, explain(result)
    err = result.stderr
    assert f"could not download class_mapping.json from {base}/class_mapping.json" in err
    assert "could not connect (connection refused" in err
    assert "offline" in err and "CDN moved" in err
    assert_untouched(target, before)

    # a target whose folder does not exist yet: nothing is created
    fresh = tmp_path / "absent" / "workshop"
    result = run_script(fresh, base, f"{server}/vocab/vocab.txt")
    assert result.returncode == 3, explain(result)
    assert not (tmp_path / "absent").exists()


def test_a_server_that_never_answers_times_out(tmp_path, server):
    with socket.socket() as s:  # accepts connections (the kernel's backlog) but never replies
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        base = f"http://127.0.0.1:{s.getsockname()[1]}"
        target = existing_target(tmp_path)
        before = snapshot(target)
        result = run_script(target, base, f"{server}/vocab/vocab.txt", "--timeout", "1", "--retries", "0")
    assert result.returncode == 3, explain(result)
    assert f"{base}/class_mapping.json: timeout" in result.stderr
    assert "offline" in result.stderr
    assert_untouched(target, before)


@pytest.mark.parametrize("name", sorted(BAD_MAPPINGS))
def test_a_corrupt_class_mapping_is_refused(tmp_path, server, name):
    target = existing_target(tmp_path)
    before = snapshot(target)
    result = run_script(target, f"{server}/badmap_{name}", f"{server}/vocab/vocab.txt")
    assert result.returncode == 4, explain(result)
    assert "error: class_mapping.json" in result.stderr
    assert f"/badmap_{name}/class_mapping.json" in result.stderr
    assert "downloading best_model.pth" not in result.stdout  # refused before the big download
    assert_untouched(target, before)


@pytest.mark.parametrize(
    "folder,message",
    [
        ("badvocab", "vocab.txt lacks the line(s) [CLS] [SEP]"),
        ("empty", "vocab.txt from"),
    ],
)
def test_a_bad_vocabulary_is_refused(tmp_path, server, folder, message):
    target = existing_target(tmp_path)
    before = snapshot(target)
    result = run_script(target, f"{server}/ts", f"{server}/{folder}/vocab.txt")
    assert result.returncode == 4, explain(result)
    assert message in result.stderr
    assert_untouched(target, before)


@pytest.mark.parametrize(
    "folder,message",
    [
        ("html", "not a PyTorch file: it starts with '<!DOCTYPE html"),
        ("emptymodel", "best_model.pth from"),
    ],
)
def test_a_model_that_is_not_a_pytorch_file_is_refused(tmp_path, server, folder, message):
    target = existing_target(tmp_path)
    before = snapshot(target)
    result = run_script(target, f"{server}/{folder}", f"{server}/vocab/vocab.txt")
    assert result.returncode == 4, explain(result)
    assert message in result.stderr
    assert_untouched(target, before)


def test_a_failed_conversion_leaves_the_target_untouched(tmp_path, server):
    need_exporter()
    target = existing_target(tmp_path)
    before = snapshot(target)
    result = run_script(target, f"{server}/fakeckpt", f"{server}/vocab/vocab.txt")
    assert result.returncode == 5, explain(result)
    assert "the conversion failed (scripts/export_model.py exited with 1" in result.stderr
    assert "fc.weight" in result.stderr  # the exporter's reason, shown
    assert_untouched(target, before)


def test_a_downloaded_checkpoint_is_never_unpickled_beyond_its_tensors(tmp_path, server):
    need_exporter()
    target = existing_target(tmp_path)
    before = snapshot(target)
    result = run_script(target, f"{server}/objckpt", f"{server}/vocab/vocab.txt")
    assert result.returncode == 5, explain(result)
    assert "(posix.getcwd), and reading those would run code from the file" in result.stderr
    assert "full unpickling" not in result.stdout + result.stderr
    assert_untouched(target, before)


def test_a_stopped_update_leaves_nothing_behind(tmp_path, server):
    with socket.socket() as s:  # a download that hangs until the script is stopped
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        base = f"http://127.0.0.1:{s.getsockname()[1]}"
        target = existing_target(tmp_path)
        before = snapshot(target)
        env = dict(os.environ, MODEL_BASE_URL=base, PYTHON=sys.executable, NO_PROXY="127.0.0.1")
        proc = subprocess.Popen(
            ["bash", str(SCRIPT), "--dir", str(target)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while not list(target.parent.glob(".workshop.update.*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # curl is connected and waiting
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err
    assert "terminated" in err
    assert_untouched(target, before)
