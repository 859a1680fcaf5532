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
difference above the tolerance fails the export and model.json is not written.

--precision int8 also makes the int8 variant beside the fp32 files (never replacing them), or, with
--from-folder DIR, makes only the variant from a folder exported earlier (its fp32 files are not touched):
text_encoder.int8.onnx (dynamic quantisation of the BERT's MatMuls and embeddings, per channel) and
head.int8.onnx (static QDQ quantisation of the head's convolutions and projections, per channel, calibrated
on photos of --calibration). It is measured against fp32 on the photos of --validation (other photos;
ImageFolder layout <dir>/<class>/<file>.jpg gives accuracies too) with the default text "Image of food" and
other texts: top-1 agreement, top-5 overlap, max |delta p|, accuracy. A variant whose top-1 agreement is
under --min-agreement (default 0.99) for any text is refused unless --allow-disagreement; an accepted one
is listed in model.json's files (sha256) and described in its variants.int8 (how it was made, the figures)."""

EPILOG = """\
examples:
  .venv/bin/python scripts/export_model.py --checkpoint best_model.pth --class-mapping class_mapping.json \\
      --vocab vocab.txt --out models/workshop
  .venv/bin/python scripts/export_model.py --random small --vocab vocab.txt --out /tmp/food-small
  .venv/bin/python scripts/export_model.py --from-folder models --precision int8 \\
      --calibration ../shared/data/food/train --validation ../shared/data/food/val

exit status: 0 exported and checked; 1 an input file is wrong (not a checkpoint, the class mapping does not
fit, ...); 2 wrong usage; 3 an exported file failed its check against the eager model; 4 the int8
variant's agreement with fp32 is under the threshold (the variant is not written; an fp32 export is)."""


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
        "--from-folder",
        metavar="DIR",
        type=Path,
        help="with --precision int8: make only the variant, from the model folder DIR exported earlier "
        "(its fp32 files and their model.json entries stay as they are)",
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
        help="the BERT vocabulary (bert-base-uncased's vocab.txt for the workshop's model)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
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
    variant = parser.add_argument_group("reduced precision (--precision int8)")
    variant.add_argument(
        "--precision",
        choices=["fp32", "int8"],
        default="fp32",
        help="fp32 (default): the export only; int8: also the int8 variant text_encoder.int8.onnx and "
        "head.int8.onnx beside the fp32 files",
    )
    variant.add_argument(
        "--calibration", metavar="DIR", type=Path, help="photos to calibrate the head's int8 ranges on (required)"
    )
    variant.add_argument(
        "--validation",
        metavar="DIR",
        type=Path,
        help="other photos to measure int8 against fp32 on (required); <dir>/<class>/<file>.jpg gives accuracies",
    )
    variant.add_argument(
        "--calibration-photos",
        type=int,
        default=96,
        metavar="N",
        help="how many calibration photos, a seeded choice (default 96)",
    )
    variant.add_argument(
        "--calibration-seed", type=int, default=0, metavar="S", help="the seed of that choice (default 0)"
    )
    variant.add_argument(
        "--calibration-method",
        choices=["minmax", "entropy", "percentile"],
        default="minmax",
        help="how the activations' ranges are calibrated (default minmax)",
    )
    variant.add_argument(
        "--keep-fp32",
        action="append",
        default=[],
        metavar="NODE",
        help="a head.onnx node name (or a prefix of names, e.g. /classifier/) left unquantised; repeatable",
    )
    variant.add_argument(
        "--text",
        action="append",
        metavar="TEXT",
        help='a text to measure agreement with, repeatable (default: "Image of food", "Image of pizza", '
        '"Image of steak", "Image of sushi", "" and three others; "Image of food" is always among them)',
    )
    variant.add_argument(
        "--min-agreement",
        type=float,
        default=0.99,
        metavar="F",
        help="the lowest top-1 agreement with fp32 (of any text) a variant may have (default 0.99)",
    )
    variant.add_argument(
        "--allow-disagreement",
        action="store_true",
        help="write a variant under --min-agreement all the same (model.json says passed: false)",
    )
    variant.add_argument(
        "--timing-runs",
        type=int,
        default=20,
        metavar="N",
        help="time each part fp32 and int8 (batch 1, 2 threads, median of N; 0: no timing; default 20)",
    )
    args = parser.parse_args(argv)
    if args.checkpoint is None and args.random is None and args.from_folder is None:
        parser.error("one of the arguments --checkpoint --random --from-folder is required")
    if args.from_folder is not None:
        if args.precision != "int8":
            parser.error("--from-folder makes a reduced-precision variant: it needs --precision int8")
        if args.out is not None or args.vocab is not None:
            parser.error("--from-folder writes into that folder: no --out or --vocab")
    else:
        if args.vocab is None or args.out is None:
            parser.error("the arguments --vocab and --out are required (unless --from-folder)")
    if args.precision == "int8":
        if args.calibration is None or args.validation is None:
            parser.error("--precision int8 needs --calibration DIR and --validation DIR (other photos)")
        if not 0 <= args.min_agreement <= 1.01:
            parser.error("--min-agreement is a share of the photos, between 0 and 1")
        if args.calibration_photos < 1:
            parser.error("--calibration-photos must be at least 1")
    if args.timing_runs < 0:
        parser.error("--timing-runs must be 0 or more")
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


def make_variant(args: argparse.Namespace, folder: Path, argv: list[str] | None) -> None:
    from foodmodel.export_inputs import ExportError
    from foodmodel.quantize import AGREEMENT_TEXTS, VariantRefused, make_int8_variant

    command = " ".join(["scripts/export_model.py", *(sys.argv[1:] if argv is None else argv)])
    try:
        make_int8_variant(
            folder,
            args.calibration,
            args.validation,
            calibration_photos=args.calibration_photos,
            calibration_seed=args.calibration_seed,
            calibration_method=args.calibration_method,
            texts=args.text if args.text else AGREEMENT_TEXTS,
            min_agreement=args.min_agreement,
            allow_disagreement=args.allow_disagreement,
            exclude_nodes=args.keep_fp32,
            timing_runs=args.timing_runs,
            command=command,
            log=log,
        )
    except VariantRefused as e:
        fail(str(e), 4)
    except ExportError as e:
        fail(str(e))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    if args.from_folder is not None:
        log("Loading torch and onnxruntime ...")
        make_variant(args, args.from_folder, argv)
        log(f"Done in {time.perf_counter() - start:.1f} s: {args.from_folder}")
        return 0
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
    if args.precision == "int8":
        make_variant(args, args.out, argv)
    log(f"Done in {time.perf_counter() - start:.1f} s: {args.out} (largest difference from eager {worst:.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
