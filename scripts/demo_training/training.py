"""The demo model's training loop: AdamW with a linear warm-up then a cosine decay, a schedule of crop
sizes, augmented photos, and for each photo a training text drawn at random, independently of its label."""

from __future__ import annotations

import math
import time
from typing import Callable, Optional, Sequence

import torch.nn.functional as F
from PIL import Image

import torch
from torch import Tensor

from .images import Augment
from .model import set_train_mode


def text_features_of(model, ids: Tensor, mask: Tensor) -> Tensor:
    """The text encoder's features of every training text, computed once (it is not trained), 256 at a time."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model.encode_text(ids[i : i + 256], mask[i : i + 256]) for i in range(0, len(ids), 256)])


def train(
    model,
    args,
    train_images: Sequence[Image.Image],
    train_labels: Tensor,
    text_features: Tensor,
    text_weights: Tensor,
    epoch_note: Optional[Callable[[], str]] = None,
) -> None:
    """Trains `model` for the epochs of args.schedule, printing a line an epoch (with `epoch_note()` added).
    text_features: the features of every training text; text_weights: their draw weights."""
    groups = []
    for prefix, lr in (("img_encoder.", args.backbone_lr), ("", args.lr)):
        chosen = [
            (n, p)
            for n, p in model.named_parameters()
            if p.requires_grad and (n.startswith("img_encoder.") == (prefix == "img_encoder."))
        ]
        groups.append(
            {"params": [p for n, p in chosen if p.ndim > 1], "weight_decay": args.weight_decay, "peak_lr": lr}
        )
        groups.append({"params": [p for n, p in chosen if p.ndim <= 1], "weight_decay": 0.0, "peak_lr": lr})
    optimizer = torch.optim.AdamW(groups, lr=args.lr)
    epochs = sum(e for _, e in args.schedule)
    steps_per_epoch = math.ceil(len(train_images) / args.batch_size)
    total_steps = epochs * steps_per_epoch
    warmup = args.warmup_epochs * steps_per_epoch

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))

    sizes = [size for size, n in args.schedule for _ in range(n)]
    augment = Augment(args.min_scale)
    order_gen = torch.Generator().manual_seed(args.seed)
    text_gen = torch.Generator().manual_seed(args.seed + 1)
    step = 0
    print(
        f"training {epochs} epochs (crop sizes {', '.join(f'{s} x {n}' for s, n in args.schedule)}), "
        f"batch {args.batch_size}, {steps_per_epoch} steps an epoch, {args.threads} threads; image encoder: "
        f"stem{' and blocks 0-' + str(args.freeze_blocks - 1) if args.freeze_blocks else ''} frozen, "
        f"BatchNorm statistics {args.bn}",
        flush=True,
    )
    for epoch in range(1, epochs + 1):
        t_epoch = time.monotonic()
        size = sizes[epoch - 1]
        set_train_mode(model, args)
        order = torch.randperm(len(train_images), generator=order_gen).tolist()
        total_loss, correct, seen = 0.0, 0, 0
        for start in range(0, len(order), args.batch_size):
            batch = order[start : start + args.batch_size]
            x = augment([train_images[i] for i in batch], size)
            y = train_labels[batch]
            pick = torch.multinomial(text_weights, len(batch), replacement=True, generator=text_gen)
            for group in optimizer.param_groups:
                group["lr"] = group["peak_lr"] * lr_factor(step)
            logits = model.classify(x, text_features[pick])
            loss = F.cross_entropy(logits, y, label_smoothing=args.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            total_loss += loss.item() * len(batch)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(batch)
        line = (
            f"epoch {epoch:3d}/{epochs}  size {size}  train loss {total_loss / seen:.4f} "
            f"acc {correct / seen:.3f}  lr {args.lr * lr_factor(step - 1):.2e}"
        )
        if epoch_note is not None:
            line += epoch_note()
        print(line + f"  time {time.monotonic() - t_epoch:.1f} s", flush=True)
