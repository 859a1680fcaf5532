"""Measuring the demo model: accuracy, per class, confusion matrix and confidence with the workshop's
preprocessing and text, and its robustness to changed photos and to other texts."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from PIL import Image

import torch
from torch import Tensor

from .images import eval_transform, load_rgb
from .texts import EVAL_PROMPT, encode


def logits_of(model, images: Tensor, features: Tensor, batch_size: int = 25) -> Tensor:
    """Logits of model.classify for images [N,3,224,224] with the text features of one text [1, L, H]."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]
            out.append(model.classify(x, features.expand(len(x), -1, -1)))
    return torch.cat(out)


def confusion_matrix(labels: Tensor, predicted: Tensor, num_classes: int) -> List[List[int]]:
    """Rows: true class, columns: predicted class."""
    confusion = [[0] * num_classes for _ in range(num_classes)]
    for t, p in zip(labels.tolist(), predicted.tolist(), strict=True):
        confusion[t][p] += 1
    return confusion


def per_class(confusion: List[List[int]], classes: List[str]) -> Dict[str, float]:
    return {name: (confusion[i][i] / max(1, sum(confusion[i]))) for i, name in enumerate(classes)}


def format_confusion(confusion: List[List[int]], classes: List[str]) -> str:
    width = max(len(c) for c in classes) + 2
    lines = ["true \\ predicted".ljust(18) + "".join(c.rjust(width) for c in classes)]
    for name, row in zip(classes, confusion, strict=True):
        lines.append(name.ljust(18) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


# The photo changes of the robustness measurements, on the decoded PIL image before the preprocessing.
def jpeg_q30(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=30)
    buffer.seek(0)
    with Image.open(buffer) as im:
        return im.convert("RGB")


PHOTO_CHANGES = {
    "jpeg_quality_30": ("re-encoded as JPEG at quality 30", jpeg_q30),
    "half_size": (
        "scaled to half its width and height (bilinear, antialiased)",
        lambda im: im.resize((max(1, im.width // 2), max(1, im.height // 2)), Image.BILINEAR),
    ),
    "rotated_10_degrees": (
        "rotated 10 degrees anticlockwise (bilinear, same size, black corners)",
        lambda im: im.rotate(10, resample=Image.BILINEAR, expand=False),
    ),
    "mirrored": ("mirrored left to right", lambda im: im.transpose(Image.FLIP_LEFT_RIGHT)),
}
LONG_TEXT = (
    "I took this picture last night at a small family restaurant near the station, the waiter said it "
    "was the chef's favourite and I still wonder what exactly was on my plate, can you tell me?"
)
OTHER_TEXTS = [
    "",
    "Image of pizza",
    "Image of steak",
    "Image of sushi",
    "a photo of a hamburger",
    "what is this?",
    LONG_TEXT,
]


def evaluate(
    model, tokenizer, images: Sequence[Image.Image], labels: Tensor, classes: List[str], robustness: bool
) -> Dict:
    """Accuracy, per class, confusion matrix and confidence with the text EVAL_PROMPT; with `robustness`,
    also with every PHOTO_CHANGES change and every OTHER_TEXTS text."""
    to_eval = eval_transform()
    x = torch.stack([to_eval(im) for im in images])
    features = model.encode_text(*encode(tokenizer, [EVAL_PROMPT]))
    probs = torch.softmax(logits_of(model, x, features), dim=1)
    confidence, predicted = probs.max(1)
    right = predicted == labels
    confusion = confusion_matrix(labels, predicted, len(classes))
    result = {
        "photos": len(labels),
        "text": EVAL_PROMPT,
        "accuracy": round(float(right.float().mean()), 4),
        "correct": int(right.sum()),
        "accuracy_by_class": {k: round(v, 4) for k, v in per_class(confusion, classes).items()},
        "confusion_matrix": {
            "rows": "true class",
            "columns": "predicted class",
            "classes": classes,
            "counts": confusion,
        },
        "confidence": {
            "definition": "the softmax probability of the predicted class",
            "mean_right": round(float(confidence[right].mean()), 4) if right.any() else None,
            "mean_wrong": round(float(confidence[~right].mean()), 4) if (~right).any() else None,
            "right": int(right.sum()),
            "wrong": int((~right).sum()),
            "wrong_answers": [
                {"true": classes[int(t)], "predicted": classes[int(p)], "confidence": round(float(c), 4)}
                for t, p, c in zip(labels[~right], predicted[~right], confidence[~right], strict=True)
            ],
        },
    }
    if not robustness:
        return result
    changed = {}
    for key, (description, change) in PHOTO_CHANGES.items():
        other = logits_of(model, torch.stack([to_eval(change(im)) for im in images]), features).argmax(1)
        changed[key] = {
            "change": description,
            "accuracy": round(float((other == labels).float().mean()), 4),
            "correct": int((other == labels).sum()),
            "same_prediction": round(float((other == predicted).float().mean()), 4),
        }
    result["photo_changes"] = changed
    texts = {}
    for text in OTHER_TEXTS:
        other = logits_of(model, x, model.encode_text(*encode(tokenizer, [text]))).argmax(1)
        entry = {
            "accuracy": round(float((other == labels).float().mean()), 4),
            "correct": int((other == labels).sum()),
            "same_prediction": round(float((other == predicted).float().mean()), 4),
        }
        if text == LONG_TEXT:
            entry["tokens"] = sum(tokenizer.encode(text).attention_mask)  # [CLS] ... [SEP], no padding
        texts[text] = entry
    result["other_texts"] = texts
    if "steak" in classes and "pizza" in classes:
        steak = labels == classes.index("steak")
        other = logits_of(model, x[steak], model.encode_text(*encode(tokenizer, ["Image of pizza"]))).argmax(1)
        result["steak_photos_with_text_image_of_pizza"] = {
            "photos": int(steak.sum()),
            "steak": int((other == classes.index("steak")).sum()),
            "pizza": int((other == classes.index("pizza")).sum()),
        }
    return result


def outside_classes(model, tokenizer, folder: Path, classes: List[str]) -> Dict:
    """What the model answers (text EVAL_PROMPT) for the photos of `folder` (../shared/data/samples: no pizza,
    steak or sushi in any of them)."""
    to_eval = eval_transform()
    features = model.encode_text(*encode(tokenizer, [EVAL_PROMPT]))
    out = {}
    for path in sorted(folder.glob("*.jpg")):
        x = to_eval(load_rgb(path)).unsqueeze(0)
        probs = torch.softmax(logits_of(model, x, features), dim=1)[0]
        top = int(probs.argmax())
        out[path.name] = {"predicted": classes[top], "probability": round(float(probs[top]), 4)}
    return out


def print_evaluation(name: str, result: Dict, classes: List[str]) -> None:
    print(
        f"\n{name} ({result['photos']} photos, text '{result['text']}'): accuracy {result['accuracy']:.4f} "
        f"({result['correct']})"
    )
    for cls, acc in result["accuracy_by_class"].items():
        print(f"  {cls:8s} {acc:.4f}")
    print(format_confusion(result["confusion_matrix"]["counts"], classes))
    c = result["confidence"]
    print(
        f"mean confidence: right answers {c['mean_right']}, wrong answers {c['mean_wrong']} "
        f"({c['right']} right, {c['wrong']} wrong)"
    )
    for key, r in result.get("photo_changes", {}).items():
        print(f"  photo {key:20s} accuracy {r['accuracy']:.4f}  same prediction {r['same_prediction']:.4f}")
    for text, r in result.get("other_texts", {}).items():
        print(f"  text {text[:40]!r:44s} accuracy {r['accuracy']:.4f}  same prediction {r['same_prediction']:.4f}")
    if "steak_photos_with_text_image_of_pizza" in result:
        print(f"  steak photos with text 'Image of pizza': {result['steak_photos_with_text_image_of_pizza']}")


def evaluate_on_val(model, tokenizer, val_items: List[Tuple[Path, int]], classes: List[str], samples: Path) -> Dict:
    """The last epoch's weights measured on the validation photos, once (nothing is chosen on them), with
    robustness; and the answers for the photos of `samples` (none of the classes) when that folder exists."""
    val_images = [load_rgb(path) for path, _ in val_items]
    val_labels = torch.tensor([y for _, y in val_items], dtype=torch.int64)
    evaluation = {"split": "val", **evaluate(model, tokenizer, val_images, val_labels, classes, robustness=True)}
    print_evaluation("validation", evaluation, classes)
    if samples.is_dir():
        evaluation["outside_classes"] = {
            "photos": "../shared/data/samples (a cheeseburger, a burger with fries, pancakes, a hen, a chick)",
            "text": EVAL_PROMPT,
            "answers": outside_classes(model, tokenizer, samples, classes),
        }
        print("photos of none of the classes:")
        for name, r in evaluation["outside_classes"]["answers"].items():
            print(f"  {name:40s} {r['predicted']} {r['probability']:.4f}")
    return evaluation
