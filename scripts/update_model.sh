#!/usr/bin/env bash
# Downloads the workshop's latest food-classifier model into a model folder the service can serve.
# Run `scripts/update_model.sh --help` for the options.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

DEFAULT_BASE_URL="https://cdn.bridgelabs.tech/ghana-ai-hackathon/food-classifier"
DEFAULT_VOCAB_URL="https://huggingface.co/bert-base-uncased/resolve/main/vocab.txt"

usage() {
  cat <<EOF
Usage: scripts/update_model.sh [options]

Downloads the latest best_model.pth and class_mapping.json of the workshop's food classifier and the
bert-base-uncased vocabulary (vocab.txt), checks them, converts a training checkpoint to TorchScript
with scripts/export_model.py, and installs the result as a model folder for the service.

Everything is downloaded and converted in a temporary folder beside the target folder first. The
target folder is replaced only when every step succeeded; the folder it replaces is kept as
DIR.previous (an older DIR.previous is deleted). When anything fails, the target folder is left as it
was and the temporary folder is removed.

Options:
  -d, --dir DIR        model folder to install into
                       (default: \$MODEL_DIR, else models/workshop in this repository)
      --base-url URL   folder URL holding best_model.pth and class_mapping.json
                       (default: \$MODEL_BASE_URL, else $DEFAULT_BASE_URL)
      --vocab-url URL  URL of the BERT vocabulary vocab.txt
                       (default: \$BERT_VOCAB_URL, else $DEFAULT_VOCAB_URL)
      --python PATH    Python that checks the files and runs the exporter (needs torch to convert)
                       (default: \$PYTHON, else .venv/bin/python in this repository, else python3)
      --keep-checkpoint
                       when best_model.pth is a training checkpoint, keep it in the installed folder as
                       checkpoints/best_model.pth (the path the workshop's Python API reads)
      --no-convert     install the files as downloaded, without converting a checkpoint: the folder's
                       best_model.pth then is the training checkpoint (what the workshop's Python API
                       reads as checkpoints/best_model.pth), which this project's service cannot load
      --timeout SEC    give up on a file after SEC seconds (default: no limit; a transfer that stalls
                       below 1 KB/s for 60 s, or a connection that takes over 20 s, fails anyway)
      --retries N      curl retries on transient errors (timeouts, HTTP 408 429 500 502 503 504)
                       (default: 2)
  -h, --help           show this help

What the folder gets:
  a checkpoint, converted: best_model.pth (TorchScript), best_model.onnx, class_mapping.json,
                           vocab.txt, text_encoder.pth, head.pth, model.json (written by export_model.py)
  a TorchScript file:      best_model.pth as downloaded, class_mapping.json, vocab.txt
  with --no-convert:       best_model.pth, class_mapping.json, vocab.txt as downloaded

Checks: every file is non-empty; class_mapping.json is a JSON object of class name -> index with each
index 0..N-1 exactly once; vocab.txt has the lines [PAD] [UNK] [CLS] [SEP]; best_model.pth is a
PyTorch file (a TorchScript archive, a checkpoint zip, or a legacy pickle).

Exit status: 0 installed; 2 wrong usage or missing tools; 3 a download failed; 4 a file failed its
check; 5 the conversion failed; 6 the folder could not be installed.

Example (a local mirror):
  MODEL_BASE_URL=http://127.0.0.1:8080/food-classifier scripts/update_model.sh --dir models/workshop
EOF
}

# The helpers live in scripts/lib/update_model/: output.sh (step, info, warn, die, sizes and hashes),
# cleanup.sh (run_child, and the cleanup on exit), download.sh (curl with reasons and hints), and
# check_files.py (the checks of the downloaded files, run with --python).
# shellcheck source=lib/update_model/output.sh
source "$SCRIPT_DIR/lib/update_model/output.sh"
# shellcheck source=lib/update_model/cleanup.sh
source "$SCRIPT_DIR/lib/update_model/cleanup.sh"
# shellcheck source=lib/update_model/download.sh
source "$SCRIPT_DIR/lib/update_model/download.sh"

# Checks a downloaded file with Python's standard library: check_file class-mapping|vocab|model-format FILE
# prints a summary (model-format: torchscript, checkpoint or legacy-checkpoint), or fails with a reason.
check_file() { "$python" "$SCRIPT_DIR/lib/update_model/check_files.py" "$@"; }

# ---------------------------------------------------------------------------------------------------
# options

target="${MODEL_DIR:-}"
base_url="${MODEL_BASE_URL:-$DEFAULT_BASE_URL}"
vocab_url="${BERT_VOCAB_URL:-$DEFAULT_VOCAB_URL}"
python="${PYTHON:-}"
keep_checkpoint=0
convert=1
max_time=""
retries=2

need_value() { [[ $# -ge 2 && -n "$2" ]] || die 2 "$1 needs a value (see --help)"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    -d|--dir) need_value "$@"; target="$2"; shift 2 ;;
    --dir=*) target="${1#*=}"; shift ;;
    --base-url) need_value "$@"; base_url="$2"; shift 2 ;;
    --base-url=*) base_url="${1#*=}"; shift ;;
    --vocab-url) need_value "$@"; vocab_url="$2"; shift 2 ;;
    --vocab-url=*) vocab_url="${1#*=}"; shift ;;
    --python) need_value "$@"; python="$2"; shift 2 ;;
    --python=*) python="${1#*=}"; shift ;;
    --keep-checkpoint) keep_checkpoint=1; shift ;;
    --no-convert) convert=0; shift ;;
    --timeout) need_value "$@"; max_time="$2"; shift 2 ;;
    --timeout=*) max_time="${1#*=}"; shift ;;
    --retries) need_value "$@"; retries="$2"; shift 2 ;;
    --retries=*) retries="${1#*=}"; shift ;;
    *) die 2 "unknown argument: $1 (see --help)" ;;
  esac
done

[[ -z "$max_time" || "$max_time" =~ ^[0-9]+$ ]] || die 2 "--timeout needs a whole number of seconds, not '$max_time'"
[[ "$retries" =~ ^[0-9]+$ ]] || die 2 "--retries needs a whole number, not '$retries'"
[[ "$keep_checkpoint" == 1 && "$convert" == 0 ]] \
  && warn "--keep-checkpoint does nothing with --no-convert: best_model.pth stays the checkpoint itself"
[[ -n "$base_url" ]] || die 2 "the base URL is empty (MODEL_BASE_URL or --base-url)"
[[ -n "$vocab_url" ]] || die 2 "the vocabulary URL is empty (BERT_VOCAB_URL or --vocab-url)"
base_url="${base_url%/}"
while [[ "$base_url" == */ ]]; do base_url="${base_url%/}"; done

if [[ -z "$target" ]]; then
  target="$REPO_ROOT/models/workshop"
  target_shown="models/workshop"
else
  target="${target%/}"
  [[ -n "$target" ]] || die 2 "the target folder cannot be /"
  target_shown="$target"
fi
case "$(basename -- "$target")" in
  .|..) die 2 "give the target folder by its name, not '$target'" ;;
esac
if [[ -e "$target" && ! -d "$target" ]]; then
  die 2 "the target $target exists and is not a folder"
fi

command -v curl >/dev/null 2>&1 || die 2 "curl is not installed (Debian/Ubuntu: sudo apt-get install curl)"

if [[ -z "$python" ]]; then
  if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then python="$REPO_ROOT/.venv/bin/python"
  elif command -v python3 >/dev/null 2>&1; then python="python3"
  else die 2 "no Python found to check the files: run scripts/setup.sh, or give --python PATH"; fi
fi
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 7) else 1)' 2>/dev/null \
  || die 2 "'$python' is not a working Python 3.7+ (give --python PATH or set PYTHON)"

exporter="$SCRIPT_DIR/export_model.py"
if [[ "$convert" == 1 ]]; then
  # Warn now rather than after a long download; it only matters when the file is a checkpoint.
  if [[ ! -f "$exporter" ]]; then
    warn "$exporter is missing: a training checkpoint could not be converted (TorchScript would still install)"
  elif ! "$python" -c 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("torch") else 1)' 2>/dev/null; then
    warn "'$python' has no torch: a training checkpoint could not be converted (run scripts/setup.sh, or give --python)"
  fi
fi

case "$base_url" in
  http://127.0.0.1*|http://localhost*|http://\[::1\]*|https://*|file://*) ;;
  http://*) warn "$base_url is plain HTTP: the download is not protected against tampering" ;;
esac

# ---------------------------------------------------------------------------------------------------
# temporary folder beside the target, so that the final rename stays on one file system

parent="$(dirname -- "$target")"
name="$(basename -- "$target")"
created_parent=0
if [[ ! -d "$parent" ]]; then
  mkdir -p -- "$parent" || die 6 "cannot create the folder $parent"
  created_parent=1
fi
work="$(mktemp -d "$parent/.$name.update.XXXXXX")" || die 6 "cannot create a temporary folder in $parent"
installed=0
exec 9>&2 # the script's stderr, for the traps: they can run inside a function whose stderr is redirected
trap cleanup EXIT
trap 'echo "interrupted: nothing was installed" >&9; exit 130' INT
trap 'echo "terminated: nothing was installed" >&9; exit 143' TERM
download_dir="$work/download"
stage="$work/stage"
mkdir -p "$download_dir"

# ---------------------------------------------------------------------------------------------------
# 1-3: download and check, small files first so that a wrong address fails before the big download

start_time=$SECONDS
echo "Updating the food-classifier model in $target_shown"

download "$base_url/class_mapping.json" "$download_dir/class_mapping.json" class_mapping.json
summary="$(check_file class-mapping "$download_dir/class_mapping.json" 2>&1)" \
  || die 4 "$summary" "from $base_url/class_mapping.json" "Nothing was changed in $target_shown."
info "$summary"

download "$vocab_url" "$download_dir/vocab.txt" vocab.txt
summary="$(check_file vocab "$download_dir/vocab.txt" 2>&1)" \
  || die 4 "$summary" "from $vocab_url" "Nothing was changed in $target_shown."
info "$summary"

download "$base_url/best_model.pth" "$download_dir/best_model.pth" best_model.pth
format="$(check_file model-format "$download_dir/best_model.pth" 2>&1)" \
  || die 4 "$format" "from $base_url/best_model.pth" "Nothing was changed in $target_shown."
case "$format" in
  torchscript) info "a TorchScript archive: it is installed as is" ;;
  checkpoint|legacy-checkpoint)
    kind="a training checkpoint"
    [[ "$format" == legacy-checkpoint ]] && kind="a training checkpoint in the legacy (pre-zip) format"
    if [[ "$convert" == 1 ]]; then info "$kind: it is converted to TorchScript"
    else info "$kind: installed as is (--no-convert)"; fi ;;
esac

# ---------------------------------------------------------------------------------------------------
# 4: build the folder to install

if [[ "$format" != torchscript && "$convert" == 1 ]]; then
  [[ -f "$exporter" ]] || die 5 "cannot convert the checkpoint: $exporter is missing" "Nothing was changed in $target_shown."
  step "converting the checkpoint with scripts/export_model.py"
  export_log="$work/export.log"
  export_start=$SECONDS
  export_status=0
  run_child "$python" "$exporter" --checkpoint "$download_dir/best_model.pth" \
    --class-mapping "$download_dir/class_mapping.json" --vocab "$download_dir/vocab.txt" \
    --out "$stage" >"$export_log" 2>&1 || export_status=$?
  if [[ "$export_status" != 0 ]]; then
    sed 's/^/    | /' "$export_log" | tail -n 40 >&2
    die 5 "the conversion failed (scripts/export_model.py exited with $export_status, its output above)" \
      "Nothing was changed in $target_shown."
  fi
  sed 's/^/    | /' "$export_log"
  info "converted in $((SECONDS - export_start))s"
  for f in best_model.pth class_mapping.json vocab.txt model.json; do
    [[ -s "$stage/$f" ]] || die 5 "the exporter did not write $f" "Nothing was changed in $target_shown."
  done
  converted_format="$(check_file model-format "$stage/best_model.pth" 2>&1)" || converted_format="not a PyTorch file"
  [[ "$converted_format" == torchscript ]] \
    || die 5 "the exporter's best_model.pth is not TorchScript ($converted_format)" "Nothing was changed in $target_shown."
  if [[ "$keep_checkpoint" == 1 ]]; then
    mkdir -p "$stage/checkpoints"
    mv -- "$download_dir/best_model.pth" "$stage/checkpoints/best_model.pth"
  fi
else
  mkdir -p "$stage"
  mv -- "$download_dir/best_model.pth" "$download_dir/class_mapping.json" "$download_dir/vocab.txt" "$stage/"
fi

# ---------------------------------------------------------------------------------------------------
# 5: install: the old folder becomes DIR.previous, the new one takes its name

step "installing into $target_shown"
previous="$target.previous"
trap '' INT TERM # the two renames below are not to be cut in between
if [[ -e "$target" ]]; then
  if [[ -e "$previous" ]]; then
    rm -rf -- "$previous" || die 6 "cannot remove the old $previous" "Nothing was changed in $target_shown."
  fi
  mv -- "$target" "$previous" || die 6 "cannot move $target aside to $previous" "Nothing was changed in $target_shown."
  if ! mv -- "$stage" "$target"; then
    mv -- "$previous" "$target" || true
    die 6 "cannot move the new folder into $target; the previous folder was put back"
  fi
  info "the folder it replaced is kept as $target_shown.previous"
else
  mv -- "$stage" "$target" || die 6 "cannot move the new folder into $target"
fi
installed=1
trap - INT TERM

echo
echo "Installed in $((SECONDS - start_time))s: $target_shown"
while IFS= read -r f; do
  rel="${f#"$target"/}"
  if [[ "$rel" == best_model.pth || "$rel" == checkpoints/best_model.pth ]]; then
    printf '  %-28s %10s  sha256 %s\n' "$rel" "$(human_size "$(file_size "$f")")" "$(sha256_of "$f")"
  else
    printf '  %-28s %10s\n' "$rel" "$(human_size "$(file_size "$f")")"
  fi
done < <(find "$target" -type f | LC_ALL=C sort)
echo
if [[ "$format" != torchscript && "$convert" == 0 ]]; then
  echo "best_model.pth is the training checkpoint as downloaded (--no-convert): this project's service"
  echo "cannot load it. Convert it with:"
  echo "  .venv/bin/python scripts/export_model.py --checkpoint $target_shown/best_model.pth \\"
  echo "    --class-mapping $target_shown/class_mapping.json --vocab $target_shown/vocab.txt --out DIR"
else
  echo "To serve it:"
  echo "  MODEL_DIR=$target_shown npm start"
  echo "A service already running on this folder picks it up with:"
  echo "  curl -X POST http://localhost:8000/reload_model"
fi
