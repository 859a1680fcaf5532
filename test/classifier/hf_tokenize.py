#!/usr/bin/env python3
"""The reference for src/classifier/tokenizer.ts: Hugging Face's own BERT tokenizers, run on a corpus.

The workshop built the model's text input with `BertTokenizer.from_pretrained('bert-base-uncased')` and
`max_length=128` (padding to 128, truncation). This script tokenises texts the same way with the Python
`transformers` package, twice: with the slow, pure-Python BertTokenizer of transformers 4 (the one the
workshop used; transformers 5 keeps it as BertTokenizerLegacy, run here with 4's lower-casing restored:
see load_tokenizers) and with BertTokenizerFast (Rust; in transformers 5 plain BertTokenizer is the fast
one, and so what the workshop's code gets there), both loaded with from_pretrained from a folder holding the given
vocab.txt and bert-base-uncased's tokenizer_config.json ({"do_lower_case": true, "model_max_length": 512}).

    python hf_tokenize.py --vocab VOCAB --corpus            the built-in corpus (CORPUS below)
    python hf_tokenize.py --vocab VOCAB --fuzz N --seed S   N random texts (fuzz below; with --corpus: both)
    python hf_tokenize.py --vocab VOCAB < texts.json        a JSON array of strings on stdin

prints one JSON object: the versions, the vocabulary's sha256, and for each text its input_ids from the
slow tokenizer without the trailing [PAD]s (`input_ids`; attention_mask is 1 for exactly those), plus
`fast_input_ids` only where the fast tokenizer disagrees (`fast_error` where it fails: it takes no lone
surrogates). test/classifier/fixtures/tokenizer_corpus.json is this script's output for the corpus and
bert-base-uncased's vocab.txt, made with transformers 4.57 (the slow BertTokenizer the workshop used):

    python test/classifier/hf_tokenize.py --corpus \\
        --vocab ../shared/data/bert-base-uncased/vocab.txt > test/classifier/fixtures/tokenizer_corpus.json

Needs `transformers` (4.x or 5.x) and `tokenizers`; torch is not needed. Exits with status 3 and a line
on stderr when transformers cannot be imported, so that the caller can skip rather than fail.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import unicodedata
import warnings

MAX_LENGTH = 128


def _corpus() -> list[list[str]]:
    """[name, text] pairs: food prompts first, then the edge cases of BERT's basic tokenizer."""
    food = [
        "Image of food",
        "Image of pizza",
        "Image of steak",
        "Image of sushi",
        "Image of hamburger",
        "image of PIZZA",
        "A photo of a cheeseburger",
        "pizza",
        "steak",
        "sushi",
        "baby back ribs",
        "beef_carpaccio",
        "chicken_quesadilla",
        "Eggs Benedict",
        "French fries with ketchup",
        "Spaghetti carbonara",
        "Pho",
        "Pad thai",
        "Bibimbap",
        "Takoyaki",
        "Crème brûlée",
        "Crêpes Suzette",
        "Jalapeño poppers",
        "Café au lait",
        "Smörgåsbord",
        "Paella valenciana",
        "Gnocchi",
        "Tiramisù",
        "Açaí bowl",
        "Croque-monsieur",
        "Piña colada",
        "Bœuf bourguignon",
        "Käsespätzle",
        "Phở bò",
        "Bánh mì",
        "Huevos rancheros",
        "Schnitzel",
        "Poutine",
        "Pierogi",
        "Baklava",
        "Beignets",
        "Cannoli",
        "Ceviche",
        "Churros",
        "Dumplings",
        "Edamame",
        "Falafel",
        "Foie gras",
        "Guacamole",
        "Hot and sour soup",
        "Lobster bisque",
        "Macarons",
        "Miso soup",
        "Mussels",
        "Nachos",
        "Oysters",
        "Panna cotta",
        "Peking duck",
        "Ramen",
        "Ravioli",
        "Red velvet cake",
        "Risotto",
        "Samosa",
        "Sashimi",
        "Scallops",
        "Seaweed salad",
        "Shrimp and grits",
        "Spring rolls",
        "Strawberry shortcake",
        "Tacos",
        "Tuna tartare",
        "Waffles",
        "Is this pizza or steak?",
        "what is this?",
        "a close-up of a delicious, cheesy pizza slice!",
        "Sushi platter (salmon & tuna)",
        "Grilled ribeye steak, medium-rare",
        "homemade margherita pizza w/ basil",
        "I'd like the chef's special",
        "It's a pepperoni pizza... isn't it?",
        "mom's apple-pie",
        "gluten-free, dairy-free, sugar-free muffin",
        "T-bone steak",
        "a 12-inch pizza for $9.99",
        "3 pieces of nigiri",
        "100% beef patty",
        "1/2 lb burger",
        "2nd course: soup",
        "pizza @ 7pm #dinner",
        "email me: chef@example.com",
        "https://example.com/menu?item=pizza&size=large",
        "www.sushi-bar.jp/menu",
        "Hello, my dog is cute",
        "My name is John",
        "A, naïve AllenNLP sentence.",
        "Order #12345 — 2× pizza",
        "“Best” pizza in town",
        "‘Quoted’ sushi",
        "pizza…steak",
        "fish & chips",
        "salt+pepper",
        "rock 'n' roll sushi",
        "ThIs Is MiXeD cAsE",
        "PIZZA!!!",
        "Pizza?!",
        "sushi;steak:pizza",
        "(pizza)[steak]{sushi}<burger>",
        "pizza/steak\\sushi|burger",
        "~`^_=*",
        "don't",
        "o'clock",
        "rock’n’roll",
        "well-done",
        "ice—cream",
        "x-ray",
        "co-op",
    ]
    edge = [
        ["empty", ""],
        ["space", " "],
        ["whitespace only", " \t\n\r  \u3000\u00a0"],
        ["tabs and newlines", "pizza\tsteak\nsushi\r\nburger"],
        ["basic tokenizer case", " \tHeLLo!how  \n Are yoU?  "],
        ["accent", "Héllo"],
        ["umlaut", " \tHäLLo!how  \n Are yoU?  "],
        ["apostrophes", "a\n'll !!to?'d of, can't."],
        ["chinese in word", "ah博推zz"],
        ["chinese", "我喜欢吃寿司和披萨"],
        ["japanese", "すしとピザが好きです"],
        ["korean", "김치찌개와 불고기"],
        ["cjk compatibility ideograph", "\uf900\uf901 and \U0002f800"],
        ["cjk extension b", "\U00020000\U0002a6d6 food"],
        ["fullwidth", "ＰＩＺＺＡ　ｐｉｚｚａ １２３"],
        ["emoji", "pizza 🍕 sushi 🍣"],
        ["emoji attached", "pizza🍕 and🍣sushi"],
        ["newer emoji", "🫓 flatbread 🧆 falafel 🥟 dumpling 🫔 tamale 🥯 bagel"],
        ["emoji zwj and skin tone", "👩🏽‍🍳 cooked this 👨‍👩‍👧"],
        ["emoji flags and keycaps", "🇮🇹 pizza 🇯🇵 sushi 1️⃣"],
        ["arabic rtl", "أحب البيتزا والسوشي"],
        ["hebrew rtl", "אני אוהב פיצה"],
        ["rtl marks", "\u200fpizza\u200e \u202bsushi\u202c"],
        ["greek final sigma", "ΟΔΟΣ ΣΟΥΒΛΑΚΙ ΟΣ."],
        ["greek", "σουβλάκι και μουσακάς"],
        ["cyrillic", "Борщ и пельмени"],
        ["turkish dotted i", "İSKENDER KEBAP ıspanak"],
        ["german sharp s", "STRAẞE Straße"],
        ["ligatures", "ﬁsh ﬂour ﬀ"],
        ["vietnamese", "Bún chả Hà Nội"],
        ["decomposed accents", "Cre\u0300me bru\u0302le\u0301e"],
        ["combining marks only", "\u0301\u0308 pizza\u0327"],
        ["thai", "ผัดไทย ต้มยำกุ้ง"],
        ["hindi", "पनीर टिक्का"],
        ["control characters", "pi\x00zz\x01a\x07 st\x1beak\x7f su\x85shi"],
        ["zero width and bom", "pi\u200bzza \ufeffsushi \u200dsteak \u2060x"],
        ["soft hyphen", "piz\u00adza"],
        ["replacement char", "pizza\ufffd steak \ufffd"],
        ["line and paragraph separators", "pizza\u2028steak\u2029sushi\u0085burger"],
        ["vertical tab form feed", "pizza\x0bsteak\x0csushi\x1csushi\x1f"],
        ["private use", "pizza\ue000 \U000f0000"],
        ["unassigned", "pizza\u0378 \U000e0080x"],
        ["lone surrogates", "pizza\ud800steak \udfff sushi"],
        ["tag characters", "pizza\U000e0041\U000e0042"],
        ["math and symbols", "2 + 2 = 4 ≠ 5 ± 1 × 3 ÷ 7 ∞ °C ℃ €5 £3 ¥100"],
        ["superscripts and fractions", "x² ½ cup ¾ tsp ⅓"],
        ["roman numeral and circled", "Ⅻ ① ⓐ"],
        ["numbers", "0 1 12 123 1234 12345 3.14159 1,000,000 -42 +7 1e10"],
        ["mixed alnum", "abc123 123abc a1b2c3 H2O CO2"],
        ["special tokens in text", "[CLS] pizza [SEP] [MASK] [PAD] [UNK]"],
        ["special tokens lower case", "[cls] pizza [sep] [mask]"],
        ["special token glued", "pizza[MASK]steak"],
        ["hash pieces in text", "##ing ## #pizza"],
        ["word of 100 chars", "a" * 100],
        ["word of 101 chars", "b" * 101],
        ["word of 100 chars with accent", "é" * 100],
        ["accented word of 101 chars", "é" * 101],
        ["long unknown word", "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis"],
        ["exactly 126 tokens", " ".join(["pizza"] * 126)],
        ["127 tokens truncated", " ".join(["pizza"] * 127)],
        ["truncation in a split word", " ".join(["pizza"] * 125) + " sushi sushi"],
        ["[MASK] as the last token kept", " ".join(["pizza"] * 125) + " [MASK] steak sushi"],
        ["mark after the 128th word", "pizza " * 128 + "\u0301steak " * 10],
        ["words of removed characters only", "\u200b\u0301 " * 300 + "sushi " * 130],
        ["long text 10000 chars", ("Pizza, steak & sushi! " * 455)[:10000]],
        ["long text 10000 chars non ascii", ("Crème brûlée 寿司 🍕 σουβλάκι ") * 400],
        ["long single word 10000 chars", "x" * 10000],
        ["long whitespace 10000 chars", " " * 9990 + "pizza"],
        ["many punctuation", "!?" * 200],
        ["repeated newlines", "\n" * 50 + "sushi" + "\n" * 50],
    ]
    out = [[f"food {i}: {text}"[:60], text] for i, text in enumerate(food)]
    return out + edge


CORPUS = _corpus()

# Code points unassigned in every Unicode version so far (and so for Python's and Node's tables alike).
ALWAYS_UNASSIGNED = [0x0378, 0xE0080, 0xE00FF, 0x40000, 0x9ABCD, 0xDFFFF, 0xFFFE, 0xFFFF, 0xFDD0, 0x10FFFF]


def fuzz(count: int, seed: int) -> list[list[str]]:
    """`count` random texts (the same for the same seed and Python version): ASCII words and punctuation
    mixed with any code point that Python's unicodedata knows (category other than Cn: characters assigned
    after Python's Unicode version are left out, as Node may know them), combining marks after letters,
    special tokens, and some always-unassigned code points."""
    import random

    rng = random.Random(seed)
    assigned = [
        cp for cp in range(0x80, 0x110000) if not 0xD800 <= cp < 0xE000 and unicodedata.category(chr(cp)) != "Cn"
    ]
    marks = [cp for cp in assigned if unicodedata.category(chr(cp)) in ("Mn", "Mc", "Me")]
    words = [
        "pizza",
        "Steak",
        "SUSHI",
        "café",
        "ΟΔΟΣ",
        "İstanbul",
        "straße",
        "[MASK]",
        "[mask]",
        "[SEP]",
        "##ing",
        "don't",
        "e-mail",
        "3.14",
        "寿司",
        "🍕",
        "a" * 101,
    ]

    def piece() -> str:
        r = rng.random()
        if r < 0.25:
            return chr(rng.randrange(0x20, 0x7F))
        if r < 0.35:
            return rng.choice(" \t\n  ")
        if r < 0.45:
            return rng.choice(words)
        if r < 0.55:
            return rng.choice("aeiouAEIOU") + chr(rng.choice(marks))
        if r < 0.57:
            return chr(rng.choice(ALWAYS_UNASSIGNED))
        if r < 0.62:
            return chr(rng.randrange(0x80, 0x250))
        return chr(rng.choice(assigned))

    texts = []
    for i in range(count):
        n = rng.randrange(0, 40) if i % 10 else rng.randrange(400, 2500)  # 1 in 10: mostly over 128 tokens
        texts.append([f"fuzz {seed}/{i}", "".join(piece() for _ in range(n))])
    return texts


# bert-base-uncased's tokenizer_config.json on the Hugging Face hub.
TOKENIZER_CONFIG = {"do_lower_case": True, "model_max_length": 512}


def load_tokenizers(vocab: str):
    try:
        import transformers
    except ImportError as e:  # the caller skips on status 3
        print(f"hf_tokenize.py: cannot import transformers ({e})", file=sys.stderr)
        sys.exit(3)
    major = int(transformers.__version__.split(".")[0])
    if major >= 5:
        from transformers.models.bert.tokenization_bert import BertTokenizer as Fast
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

        class Slow(BertTokenizerLegacy):
            """transformers 4's slow BertTokenizer. Its PreTrainedTokenizer.tokenize lower-cased the text one
            character at a time, special tokens excepted, before the BasicTokenizer lower-cased each word
            again; transformers 5 dropped that first step, so that its BertTokenizerLegacy alone gives Greek
            words a final sigma ('ΟΣ' -> 'ος') where 4.x (and the fast tokenizer) give 'οσ'. Restored here."""

            def prepare_for_tokenization(self, text, **kwargs):
                specials = "|".join(re.escape(t) for t in self.all_special_tokens)
                text = re.sub(f"({specials})|(.+?)", lambda m: m.group(1) or m.group(2).lower(), text)
                return super().prepare_for_tokenization(text, **kwargs)

        Slow.__name__ = "BertTokenizerLegacy with transformers 4's lower-casing"
    else:
        from transformers import BertTokenizer as Slow
        from transformers import BertTokenizerFast as Fast
    folder = tempfile.mkdtemp(prefix="hf_tokenize_")
    os.symlink(os.path.abspath(vocab), os.path.join(folder, "vocab.txt"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(TOKENIZER_CONFIG, f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slow = Slow.from_pretrained(folder)
        fast = Fast.from_pretrained(folder)
    assert not getattr(slow, "is_fast", False), f"{type(slow).__name__} is not the slow tokenizer"
    assert getattr(fast, "is_fast", False), f"{type(fast).__name__} is not a fast tokenizer"
    return transformers, slow, fast


def encode(tokenizer, text: str) -> list[int]:
    enc = tokenizer(text, padding="max_length", truncation=True, max_length=MAX_LENGTH)
    ids, mask = list(enc["input_ids"]), list(enc["attention_mask"])
    n = sum(mask)
    assert len(ids) == MAX_LENGTH and mask == [1] * n + [0] * (MAX_LENGTH - n), (text[:40], mask)
    assert all(i == tokenizer.pad_token_id for i in ids[n:])
    return ids[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", required=True, help="the vocab.txt to tokenise with")
    parser.add_argument("--corpus", action="store_true", help="the built-in corpus instead of stdin")
    parser.add_argument("--fuzz", type=int, default=0, metavar="N", help="and N random texts (instead of stdin)")
    parser.add_argument("--seed", type=int, default=1, help="the random texts' seed")
    args = parser.parse_args()

    if args.corpus or args.fuzz:
        named = (CORPUS if args.corpus else []) + fuzz(args.fuzz, args.seed)
        cases = [{"name": name, "text": text} for name, text in named]
    else:
        texts = json.load(sys.stdin)
        assert isinstance(texts, list) and all(isinstance(t, str) for t in texts), "stdin: a JSON array of strings"
        cases = [{"text": text} for text in texts]

    transformers, slow, fast = load_tokenizers(args.vocab)
    import tokenizers

    with open(args.vocab, "rb") as f:
        vocab_sha256 = hashlib.sha256(f.read()).hexdigest()
    disagreements = 0
    for case in cases:
        case["input_ids"] = encode(slow, case["text"])
        try:
            fast_ids = encode(fast, case["text"])
        except Exception as e:  # noqa: BLE001 - the fast tokenizers take only text that UTF-8 can encode (no lone surrogates)
            case["fast_error"] = f"{type(e).__name__}: {e}"
            disagreements += 1
            continue
        if fast_ids != case["input_ids"]:
            case["fast_input_ids"] = fast_ids
            disagreements += 1

    header = {
        "generator": "test/classifier/hf_tokenize.py",
        "note": "input_ids of BertTokenizer (slow) from_pretrained with this vocabulary, padding='max_length', "
        "truncation=True, max_length=128, without the trailing [PAD]s (attention_mask is 1 for exactly "
        "these); fast_input_ids only where BertTokenizerFast disagrees",
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "python": sys.version.split()[0],
        "unicode": unicodedata.unidata_version,
        "slow": type(slow).__name__,
        "fast": type(fast).__name__,
        "vocab_sha256": vocab_sha256,
        "max_length": MAX_LENGTH,
        "disagreements": disagreements,
    }
    out = ["{"] + [f" {dumps(k)}: {dumps(v)}," for k, v in header.items()] + [' "cases": [']
    out += [f"  {dumps(case)}," for case in cases]
    if cases:
        out[-1] = out[-1][:-1]
    out += [" ]", "}"]
    sys.stdout.reconfigure(encoding="utf-8")
    sys.stdout.write("\n".join(out) + "\n")


def dumps(value) -> str:
    """Compact JSON, one case a line; letters, digits, punctuation and symbols outside ASCII as they are
    (readable), every other character outside ASCII (marks, spaces, controls, format, unassigned,
    private use, lone surrogates) as a \\u escape."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def escape(ch: str) -> str:
        if ord(ch) < 0x7F or (ord(ch) > 0x7F and unicodedata.category(ch)[0] in "LNPS"):
            return ch
        if ord(ch) > 0xFFFF:
            v = ord(ch) - 0x10000
            return f"\\u{0xD800 + (v >> 10):04x}\\u{0xDC00 + (v & 0x3FF):04x}"
        return f"\\u{ord(ch):04x}"

    return "".join(escape(ch) for ch in text)


if __name__ == "__main__":
    main()
