"""The workshop's image preprocessing, run with torchvision and PIL, for the parity tests of
src/classifier/preprocess.ts (test/classifier/preprocess.torchvision.test.ts).

    python3 torchvision_preprocess.py OUT_DIR [--resize 256] [--crop 224] < paths.txt

Reads image paths from stdin, one a line. For the i-th path (counting from 0) it writes OUT_DIR/i.f32: the
normalised tensor [3, crop, crop], float32 little-endian, C-contiguous; and prints one JSON line
{"index": i, "mode": PIL's mode as opened, "size": [w, h]}, or {"index": i, "error": "..."} when PIL
cannot open it. Exactly the workshop's transform: Image.open(path).convert('RGB') (no EXIF rotation,
embedded ICC profiles ignored), Resize(256) (PIL bilinear, antialiased), CenterCrop(224), ToTensor,
Normalize(ImageNet mean and std).
"""

import argparse
import json
import sys
from pathlib import Path

from PIL import Image
from torchvision import transforms

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--resize", type=int, default=256)
    parser.add_argument("--crop", type=int, default=224)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    transform = transforms.Compose(
        [
            transforms.Resize(args.resize),
            transforms.CenterCrop(args.crop),
            transforms.ToTensor(),
            transforms.Normalize(mean=MEAN, std=STD),
        ]
    )
    paths = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for index, path in enumerate(paths):
        try:
            with Image.open(path) as opened:
                mode, size = opened.mode, list(opened.size)
                image = opened.convert("RGB")
        except Exception as error:  # noqa: BLE001 - reported to the test, which decides
            print(json.dumps({"index": index, "error": f"{type(error).__name__}: {error}"}), flush=True)
            continue
        tensor = transform(image).numpy().astype("<f4")
        tensor.tofile(str(args.out_dir / f"{index}.f32"))
        print(json.dumps({"index": index, "mode": mode, "size": size}), flush=True)


if __name__ == "__main__":
    main()
