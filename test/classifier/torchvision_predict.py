"""The workshop's reference pipeline end to end, for the top-1 parity test of the FoodClassifier
(test/classifier/parity.test.ts): torchvision + PIL preprocessing, then the TorchScript model run by
Python's torch on the token ids the test gives (the project's own tokenizer made them, so that what
differs is only the image preprocessing and the runtime).

    python3 torchvision_predict.py REQUEST.json OUT_DIR

REQUEST.json: {"model": path of a TorchScript model, "input_ids": [...], "attention_mask": [...],
"files": [image paths], "resize": 256, "crop": 224, "threads": 2}. Writes OUT_DIR/logits.json: a list
with, for the i-th file, {"file": path, "logits": [...]} (the model's float32 logits as Python floats,
exactly), or {"file": path, "error": "..."} when PIL cannot open it. Each photo is its own batch of one,
as the classifier runs it. The transform is torchvision_preprocess.py's, which is the workshop's:
Image.open(path).convert('RGB'), Resize, CenterCrop, ToTensor, Normalize(ImageNet mean and std).
"""

import json
import sys
from pathlib import Path

from PIL import Image
from torchvision import transforms
from torchvision_preprocess import MEAN, STD

import torch


def main() -> None:
    request = json.loads(Path(sys.argv[1]).read_text())
    out_dir = Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    # The machine's other work shares the cores; the Node side runs LibTorch on 2 threads too.
    torch.set_num_threads(int(request.get("threads", 2)))
    transform = transforms.Compose(
        [
            transforms.Resize(int(request.get("resize", 256))),
            transforms.CenterCrop(int(request.get("crop", 224))),
            transforms.ToTensor(),
            transforms.Normalize(mean=MEAN, std=STD),
        ]
    )
    model = torch.jit.load(request["model"], map_location="cpu").eval()
    input_ids = torch.tensor([request["input_ids"]], dtype=torch.long)
    attention_mask = torch.tensor([request["attention_mask"]], dtype=torch.long)
    results = []
    with torch.inference_mode():
        for path in request["files"]:
            try:
                with Image.open(path) as opened:
                    image = opened.convert("RGB")
            except Exception as error:  # noqa: BLE001 - reported to the test, which decides
                results.append({"file": path, "error": f"{type(error).__name__}: {error}"})
                continue
            logits = model(transform(image).unsqueeze(0), input_ids, attention_mask)
            results.append({"file": path, "logits": logits[0].tolist()})
    (out_dir / "logits.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main()
