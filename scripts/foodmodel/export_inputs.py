"""The inputs of an export, checked before anything is traced: the class mapping and the BERT vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


class ExportError(ValueError):
    """The inputs of an export do not fit together (class mapping, vocabulary, config, model)."""


def normalize_class_mapping(mapping: Mapping[Any, Any]) -> List[str]:
    """The class names in index order, from {name: index} (the workshop's class_mapping.json) or
    {"index": name}; each index 0..N-1 exactly once."""
    if not isinstance(mapping, Mapping) or not mapping:
        raise ExportError("the class mapping must be a non-empty JSON object of class name -> index")
    items = list(mapping.items())
    if all(isinstance(v, int) and not isinstance(v, bool) for _, v in items):
        pairs = [(v, str(k)) for k, v in items]
    elif all(isinstance(v, str) and str(k).isdigit() for k, v in items):
        pairs = [(int(k), v) for k, v in items]
    else:
        raise ExportError('the class mapping must map class names to integer indices, e.g. {"apple_pie": 0, ...}')
    n = len(pairs)
    names: Dict[int, str] = {}
    for index, name in pairs:
        if not name.strip():
            raise ExportError("the class mapping has an empty class name")
        if index in names:
            raise ExportError(f"the class mapping uses index {index} twice ({names[index]!r} and {name!r})")
        names[index] = name
    missing = sorted(set(range(n)) - set(names))
    if missing:
        raise ExportError(
            f"the class mapping's {n} classes must have the indices 0..{n - 1} exactly once; "
            f"missing {missing[:5]}, out of range {sorted(i for i in names if not 0 <= i < n)[:5]}"
        )
    return [names[i] for i in range(n)]


def read_vocab(path: Path) -> List[str]:
    try:
        with open(path, encoding="utf-8") as f:
            tokens = [line.rstrip("\r\n") for line in f]
    except FileNotFoundError:
        raise ExportError(f"{path}: no such vocabulary file") from None
    except UnicodeDecodeError as e:
        raise ExportError(f"{path} is not UTF-8 text: {e}") from None
    missing = [t for t in SPECIAL_TOKENS if t not in tokens]
    if missing:
        raise ExportError(f"{path} lacks the token(s) {' '.join(missing)}: it is not a BERT vocabulary")
    return tokens
