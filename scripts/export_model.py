#!/usr/bin/env python3
"""Converts the workshop's FoodClassifier checkpoint (or random weights) into a model folder for the service.

Run it with the project's Python, .venv/bin/python (made by scripts/setup.sh): Debian's torch 1.13, whose
files the addon's LibTorch 1.13 can load (files saved by torch 2.x cannot be), plus onnxruntime for the checks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent))

DESCRIPTION = """\
Writes a model folder for the service from the workshop's FoodClassifier: either a training checkpoint
(best_model.pth: a dict with model_state_dict, or a raw state_dict) with its class_mapping.json, or random
weights at the workshop's size (full) or a reduced one (small, for benchmarks).

The folder gets: best_model.pth (TorchScript, traced in eval mode: forward(image, input_ids,
attention_mask) -> logits, dynamic batch), best_model.onnx (opset 14, dynamic batch), text_encoder.pth
(input_ids, attention_mask -> text features) and head.pth (image, text features -> logits), the two halves
of the model (the service computes a text's features once and runs only the head for each photo), the
same two halves as text_encoder.onnx and head.onnx, class_mapping.json, vocab.txt (copied) and model.json
(inputs, outputs, preprocessing, classes, config, versions, check results, sha256 of every file).

The architecture is inferred from the checkpoint's weights (BERT heads = hidden / 64 and 8 fusion heads,
the workshop's, unless the checkpoint holds a 'config' dict). Every file is checked against the eager model
on seeded inputs at batch 1 and 3 (TorchScript, ONNX with onnxruntime, text_encoder then head in both); a
difference above the tolerance fails the export and model.json is not written."""

EPILOG = """\
examples:
  .venv/bin/python scripts/export_model.py --checkpoint best_model.pth --class-mapping class_mapping.json \\
      --vocab vocab.txt --out models/workshop
  .venv/bin/python scripts/export_model.py --random small --vocab vocab.txt --out /tmp/food-small

exit status: 0 exported and checked; 1 an input file is wrong (not a checkpoint, the class mapping does not
fit, ...); 2 wrong usage; 3 an exported file failed its check against the eager model."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="export_model.py",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--checkpoint",
        metavar="FILE",
        type=Path,
        help='the workshop checkpoint (torch.save of {"model_state_dict": ...} or a state_dict); needs --class-mapping',
    )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="read a checkpoint that holds Python objects besides tensors (an argparse Namespace, "
        "numpy scalars) with full unpickling, which runs code named by the file: only for "
        "checkpoints you trust (scripts/update_model.sh never passes it for a download)",
    )
    source.add_argument(
        "--random",
        choices=["full", "small"],
        help="random weights instead: the workshop's size (full) or a reduced one (small)",
    )
    parser.add_argument(
        "--class-mapping",
        metavar="FILE",
        type=Path,
        help="class_mapping.json: class name -> index (required with --checkpoint; with --random "
        "it names the classes, which are class_0, class_1, ... otherwise)",
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        metavar="N",
        help="with --random: the number of classes (default: those of --class-mapping, else 101)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="with --random: the seed of the weights (default 0)"
    )
    parser.add_argument(
        "--vocab",
        metavar="FILE",
        type=Path,
        required=True,
        help="the BERT vocabulary (bert-base-uncased's vocab.txt for the workshop's model)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        required=True,
        help="the model folder to write (created if needed; files of an earlier export are replaced)",
    )
    parser.add_argument(
        "--bert",
        choices=["plain", "transformers", "auto"],
        default="plain",
        help="the BERT implementation to trace: plain (default: plain torch, traceable and "
        "ONNX-exportable with torch 1.13, same parameters and outputs as transformers.BertModel), "
        "transformers (transformers.BertModel), auto (transformers if importable)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        metavar="T",
        help="the largest max abs difference from the eager model the checks accept (default 1e-4)",
    )
    args = parser.parse_args(argv)
    if args.checkpoint is not None:
        if args.class_mapping is None:
            parser.error("--checkpoint needs --class-mapping (the class_mapping.json that goes with it)")
        if args.num_classes is not None:
            parser.error("--num-classes is for --random; with --checkpoint the classes come from the checkpoint")
    if args.num_classes is not None and args.num_classes < 1:
        parser.error("--num-classes must be at least 1")
    if not args.tolerance > 0:
        parser.error("--tolerance must be positive")
    return args


def log(message: str) -> None:
    print(message, flush=True)


def fail(message: str, status: int = 1) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def read_class_mapping(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        fail(f"{path}: no such class mapping file")
    except (ValueError, UnicodeDecodeError) as e:
        fail(f"{path} is not valid JSON: {e}")
    if not isinstance(data, dict):
        fail(f"{path} must be a JSON object of class name -> index, not a {type(data).__name__}")
    return data


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    log("Loading torch ...")
    from foodmodel.architecture import FoodClassifier, FoodClassifierConfig
    from foodmodel.checkpoint import CheckpointError, load_checkpoint
    from foodmodel.export import ExportCheckError, ExportError, export_model_folder
    from foodmodel.export_inputs import normalize_class_mapping
    from foodmodel.model_json import sha256_file

    import torch

    log(f"  torch {torch.__version__}, {torch.get_num_threads()} threads ({time.perf_counter() - start:.1f} s)")
    if int(torch.__version__.split(".")[0]) >= 2:
        log(
            f"  warning: files saved by torch {torch.__version__} cannot be loaded by the addon's default "
            "LibTorch 1.13 (use .venv/bin/python)"
        )
    if not args.vocab.is_file():
        fail(f"{args.vocab}: no such vocabulary file")

    mapping = read_class_mapping(args.class_mapping) if args.class_mapping is not None else None
    try:
        if args.checkpoint is not None:
            t = time.perf_counter()
            log(f"Reading the checkpoint {args.checkpoint} ...")
            if not args.checkpoint.is_file():
                fail(f"{args.checkpoint}: no such checkpoint file")
            model, config = load_checkpoint(args.checkpoint, bert=args.bert, log=log, trust=args.trust_checkpoint)
            log(
                f"  loaded with strict=True in {time.perf_counter() - t:.1f} s: {config.num_classes} classes, "
                f"{config.image_backbone} image encoder, BERT {config.num_hidden_layers} layers x "
                f"{config.hidden_size} ({config.num_attention_heads} heads), vocabulary {config.vocab_size}"
            )
            source = {
                "kind": "checkpoint",
                "file": args.checkpoint.name,
                "sha256": sha256_file(args.checkpoint),
                "bytes": args.checkpoint.stat().st_size,
            }
            assert mapping is not None
            names = normalize_class_mapping(mapping)
            if len(names) != config.num_classes:
                fail(
                    f"{args.class_mapping} has {len(names)} classes but the checkpoint's classifier has "
                    f"{config.num_classes} outputs: they do not belong together"
                )
        else:
            if mapping is not None:
                names = normalize_class_mapping(mapping)
                if args.num_classes is not None and args.num_classes != len(names):
                    fail(f"--num-classes {args.num_classes} but {args.class_mapping} has {len(names)} classes")
                num_classes = len(names)
            else:
                num_classes = args.num_classes or 101
                mapping = {f"class_{i}": i for i in range(num_classes)}
            config = getattr(FoodClassifierConfig, args.random)(num_classes=num_classes)
            t = time.perf_counter()
            log(f"Building a {args.random} FoodClassifier with random weights (seed {args.seed}) ...")
            torch.manual_seed(args.seed)
            model = FoodClassifier(config, bert=args.bert).eval()
            log(f"  done in {time.perf_counter() - t:.1f} s")
            source = {"kind": "random", "preset": args.random, "seed": args.seed}
        info = export_model_folder(
            model, config, args.out, mapping, args.vocab, log=log, tolerance=args.tolerance, extra={"source": source}
        )
    except CheckpointError as e:
        fail(str(e))
    except ExportCheckError as e:
        fail(str(e), 3)
    except ExportError as e:
        fail(str(e))
    worst = max(info["checks"]["max_abs_diff"].values())
    log(f"Done in {time.perf_counter() - start:.1f} s: {args.out} (largest difference from eager {worst:.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
