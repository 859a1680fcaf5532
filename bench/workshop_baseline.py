"""The benchmark's baseline: the workshop's app's forward, as it runs it.

  /usr/bin/python3 bench/workshop_baseline.py [--threads default|N] [--warmup 2] [--iters 10] [--classes 101]

The workshop's FastAPI app builds its FoodClassifier in Python, loads the weights, and calls the eager model
under torch.no_grad() for every request, one at a time: torchvision's ResNet18, BERT-base, and the fusion as a
stock nn.TransformerEncoder (with its fast path in eval mode). This does the same with random weights (the
time of a forward does not depend on the values) on Debian's python3-torch, in the environment the user has
(OPENBLAS_CORETYPE and the rest as they are). --threads default leaves torch's own thread count, as the app
does; a number calls torch.set_num_threads. The inputs: a 224x224 image and "Image of food" padded to 128
tokens (the text's length does not change the work: BERT computes all 128 positions).

stdout gets one JSON line: {"times_ms": [...], "threads": N, "torch": "1.13.1", "parameters": ...}; progress
goes to stderr.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from foodmodel.architecture import FoodClassifier, FoodClassifierConfig  # noqa: E402


def workshop_forward(model, image, input_ids, attention_mask):
    """FoodClassifier.forward as the workshop wrote it: the fusion is the stock nn.TransformerEncoder."""
    features = model.encode_text(input_ids, attention_mask)
    image_token = model.img_proj(model.img_encoder(image)).unsqueeze(1)
    fused = model.fusion(torch.cat([image_token, features], dim=1))
    return model.classifier(fused[:, 0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="default")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--classes", type=int, default=101)
    args = parser.parse_args()
    if args.threads != "default":
        torch.set_num_threads(int(args.threads))
    torch.manual_seed(0)
    model = FoodClassifier(FoodClassifierConfig.full(num_classes=args.classes), bert="plain").eval()
    image = torch.randn(1, 3, 224, 224)
    input_ids = torch.zeros(1, 128, dtype=torch.long)
    input_ids[0, :5] = torch.tensor([101, 3746, 1997, 2833, 102])  # [CLS] image of food [SEP]
    attention_mask = (input_ids != 0).long()
    print(
        f"workshop_baseline: torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.warmup} warm-up + {args.iters} timed forwards",
        file=sys.stderr,
        flush=True,
    )
    times = []
    with torch.no_grad():
        for i in range(args.warmup + args.iters):
            start = time.perf_counter()
            logits = workshop_forward(model, image, input_ids, attention_mask)
            elapsed = (time.perf_counter() - start) * 1000
            if i >= args.warmup:
                times.append(elapsed)
    print(
        json.dumps(
            {
                "times_ms": times,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "parameters": sum(p.numel() for p in model.parameters()),
                "output_sum": float(logits.sum()),
            }
        )
    )


if __name__ == "__main__":
    main()
