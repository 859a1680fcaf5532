"""The demo model's texts: a small English corpus about food, the WordPiece vocabulary trained on it, and
the training texts, none of which depends on the photo's class (see scripts/train_demo.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Sequence, Tuple

import torch
from torch import Tensor

MAX_LENGTH = 128
EVAL_PROMPT = "Image of food"  # the workshop's default text

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
    """The prompts used in training (with random token sequences, see training_texts). None depends on the
    photo: a generic prompt, or a template with a Food-101 dish name; half of the texts drawn in training
    are generic prompts, half the others."""
    return GENERIC_PROMPTS + [template.format(name) for template in NAMED_TEMPLATES for name in FOOD_NAMES]


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


@dataclass
class TrainingTexts:
    """The texts drawn in training, tokenised: prompts (sorted) then random token sequences."""

    vocab: List[str]
    tokenizer: Any
    prompts: List[str]
    n_generic: int  # prompts that name no food
    ids: Tensor  # [texts, MAX_LENGTH]
    mask: Tensor
    weights: Tensor  # draw weights: half for the generic prompts, half for the others


def training_texts(vocab_path: Path, vocab_size: int, random_texts: int, seed: int) -> TrainingTexts:
    """Builds the vocabulary into vocab_path, tokenises the prompts and adds `random_texts` random token
    sequences; prints a summary."""
    vocab = build_vocab(vocab_path, vocab_size)
    tokenizer = make_tokenizer(vocab_path)
    prompts = sorted(set(training_prompts()))
    prompt_ids, prompt_mask = encode(tokenizer, prompts)
    random_ids, random_mask = random_token_texts(random_texts, vocab, seed + 2)
    text_ids = torch.cat([prompt_ids, random_ids])
    text_mask = torch.cat([prompt_mask, random_mask])
    # Draw weights: half generic prompts, half named prompts and random token sequences.
    generic = set(GENERIC_PROMPTS)
    n_generic = sum(1 for p in prompts if p in generic)
    weights = torch.tensor(
        [0.5 / n_generic if p in generic else 0.0 for p in prompts] + [0.0] * random_texts, dtype=torch.float64
    )
    weights[weights == 0] = 0.5 / int((weights == 0).sum())
    unk = int((prompt_ids == vocab.index("[UNK]")).sum())
    print(
        f"vocabulary: {len(vocab)} WordPiece tokens; training texts: {len(prompts)} prompts "
        f"({n_generic} generic, the others name a random Food-101 dish; [UNK] pieces: {unk}) and "
        f"{random_texts} random token sequences, none tied to the label; "
        f"'{EVAL_PROMPT}' -> {tokenizer.encode(EVAL_PROMPT).tokens[:5]}",
        flush=True,
    )
    return TrainingTexts(vocab, tokenizer, prompts, n_generic, text_ids, text_mask, weights)
