"""The checks scripts/update_model.sh runs on what it downloaded, before anything is converted or installed.

    check_files.py class-mapping FILE   class_mapping.json: prints "N classes: a, b, c, ..."
    check_files.py vocab FILE           vocab.txt: prints "N tokens; [PAD]=0, [UNK]=..."
    check_files.py model-format FILE    best_model.pth: prints torchscript, checkpoint or legacy-checkpoint

Each exits with status 1 and a one-line reason on stderr when the file is not what it should be. Python's
standard library only, and Python 3.7 syntax: the Python that runs it (update_model.sh --python) need not
have torch, and may be old.
"""

import json
import sys
import zipfile


def check_class_mapping(path):
    """A JSON object of class name -> index, each index 0..N-1 exactly once."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        sys.exit(f"class_mapping.json is not valid JSON: {e}")
    if not isinstance(data, dict) or not data:
        sys.exit(
            f"class_mapping.json must be a non-empty JSON object of class name -> index, not {type(data).__name__}"
            + (" (empty)" if isinstance(data, (dict, list)) and not data else "")
        )
    bad = [k for k, v in data.items() if not isinstance(v, int) or isinstance(v, bool)]
    if bad:
        sys.exit(f"class_mapping.json: the index of {bad[0]!r} is {data[bad[0]]!r}, not an integer")
    empty = [k for k in data if not k.strip()]
    if empty:
        sys.exit("class_mapping.json has an empty class name")
    n = len(data)
    seen = {}
    for k, v in data.items():
        if v in seen:
            sys.exit(f"class_mapping.json: index {v} is used twice ({seen[v]!r} and {k!r})")
        seen[v] = k
    out_of_range = sorted(v for v in seen if v < 0 or v >= n)
    if out_of_range:
        missing = sorted(set(range(n)) - set(seen))
        sys.exit(
            f"class_mapping.json: {n} classes must have the indices 0..{n - 1} exactly once; "
            f"found {out_of_range[:5]} out of range, missing {missing[:5]}"
        )
    names = [seen[i] for i in range(n)]
    shown = ", ".join(names[:5]) + (", ..." if n > 5 else "")
    print(f"{n} classes: {shown}")


def check_vocab(path):
    """A BERT vocabulary: UTF-8 lines, among them [PAD] [UNK] [CLS] [SEP]."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\r\n") for line in f]
    except UnicodeDecodeError as e:
        sys.exit(f"vocab.txt is not UTF-8 text: {e}")
    missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]") if t not in lines]
    if missing:
        sys.exit(
            f"vocab.txt lacks the line(s) {' '.join(missing)}: it is not a BERT vocabulary "
            f"({len(lines)} lines, the first is {lines[0][:60]!r})"
            if lines
            else "vocab.txt is empty"
        )
    ids = {t: lines.index(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]")}
    print(f"{len(lines)} tokens; " + ", ".join(f"{t}={i}" for t, i in ids.items()))


def model_format(path):
    """torchscript, checkpoint (a torch.save zip) or legacy-checkpoint (a pre-zip pickle)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if zipfile.is_zipfile(path):
        try:
            names = zipfile.ZipFile(path).namelist()
        except zipfile.BadZipFile as e:
            sys.exit(f"best_model.pth is a broken zip file: {e}")
        if any(n.endswith("/constants.pkl") for n in names):
            print("torchscript")
        elif any(n.endswith("/data.pkl") for n in names):
            print("checkpoint")
        else:
            sys.exit("best_model.pth is a zip file but not a PyTorch file (it has no */data.pkl)")
    elif head[:1] == b"\x80":
        print("legacy-checkpoint")
    else:
        text = head.decode("latin-1")
        sys.exit(
            f"best_model.pth is not a PyTorch file: it starts with {text[:40]!r}"
            + (" (an HTML page: an error page or a captive portal?)" if "<" in text[:20] else "")
        )


CHECKS = {"class-mapping": check_class_mapping, "vocab": check_vocab, "model-format": model_format}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in CHECKS:
        sys.exit("usage: check_files.py {" + "|".join(CHECKS) + "} FILE")
    CHECKS[sys.argv[1]](sys.argv[2])
