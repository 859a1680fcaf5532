"""The demo model's photos: reading an ImageFolder split, the evaluation preprocessing (the workshop's) and
the training augmentation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image
from torchvision import transforms

import torch
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def eval_transform() -> transforms.Compose:
    """The workshop's preprocessing, exactly (on the PIL image)."""
    return transforms.Compose(
        [
            transforms.Resize(256, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def list_images(split_dir: Path) -> Tuple[List[str], List[Tuple[Path, int]]]:
    """ImageFolder layout, in a fixed order: classes and files sorted by name."""
    classes = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    items = []
    for index, name in enumerate(classes):
        for file in sorted((split_dir / name).iterdir()):
            if file.suffix.lower() in (".jpg", ".jpeg", ".png"):
                items.append((file, index))
    return classes, items


def load_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def split_holdout(
    items: List[Tuple[Path, int]], fraction: float, seed: int
) -> Tuple[List[Tuple[Path, int]], List[Tuple[Path, int]]]:
    """A seeded, class-stratified split of the training photos: (fit, holdout), each in the original order."""
    g = torch.Generator().manual_seed(seed + 100)
    held = set()
    for label in sorted({y for _, y in items}):
        indices = [i for i, (_, y) in enumerate(items) if y == label]
        order = torch.randperm(len(indices), generator=g).tolist()
        held.update(indices[j] for j in order[: round(fraction * len(indices))])
    return ([it for i, it in enumerate(items) if i not in held], [it for i, it in enumerate(items) if i in held])


class Augment:
    """Training augmentation, seeded by torch's global generator. Per photo, on the PIL image:
    RandomResizedCrop (area min_scale-100 %, aspect 3/4-4/3, bilinear with PIL's antialiasing) to size x size and a
    horizontal flip; then per batch, on tensors: brightness, contrast and saturation jitter (factors in
    [1 - jitter, 1 + jitter]), ImageNet normalisation and random erasing (p 0.25)."""

    def __init__(self, min_scale: float, jitter: float = 0.3, erase_p: float = 0.25):
        self.min_scale = min_scale
        self.jitter = jitter
        self.erase_p = erase_p
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def crop(self, image: Image.Image, size: int) -> Tensor:
        top, left, h, w = transforms.RandomResizedCrop.get_params(image, (self.min_scale, 1.0), (3 / 4, 4 / 3))
        out = image.resize((size, size), Image.BILINEAR, box=(left, top, left + w, top + h))
        if torch.rand(1).item() < 0.5:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
        return torch.from_numpy(np.array(out, dtype=np.uint8))  # [size, size, 3]

    def __call__(self, images: Sequence[Image.Image], size: int) -> Tensor:
        x = torch.stack([self.crop(im, size) for im in images]).permute(0, 3, 1, 2).float().div_(255)
        n = x.shape[0]

        def factors() -> Tensor:
            return 1 + (torch.rand(n, 1, 1, 1) * 2 - 1) * self.jitter

        x = x * factors()  # brightness
        gray = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        x = (x - gray.mean(dim=(2, 3), keepdim=True)) * factors() + gray.mean(dim=(2, 3), keepdim=True)  # contrast
        gray = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        x = (x - gray) * factors() + gray  # saturation
        x = ((x.clamp_(0, 1) - self.mean) / self.std).contiguous()
        for i in range(n):  # random erasing (zeros)
            if torch.rand(1).item() < self.erase_p:
                area = size * size * (0.02 + 0.13 * torch.rand(1).item())
                ratio = math.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * torch.rand(1).item())
                h = min(size, int(round(math.sqrt(area * ratio))))
                w = min(size, int(round(math.sqrt(area / ratio))))
                top = int(torch.randint(0, size - h + 1, (1,)))
                left = int(torch.randint(0, size - w + 1, (1,)))
                x[i, :, top : top + h, left : left + w] = 0
        return x
