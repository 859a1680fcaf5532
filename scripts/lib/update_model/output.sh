# Output helpers of scripts/update_model.sh (sourced by it): numbered steps, indented details, warnings, and
# die, which prints an error (with indented detail lines) and exits with the given status.
# shellcheck shell=bash

step_no=0
step() { step_no=$((step_no + 1)); printf '[%d] %s\n' "$step_no" "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { # die STATUS MESSAGE...
  local status="$1"; shift
  printf 'error: %s\n' "$1" >&2; shift
  local line
  for line in "$@"; do printf '       %s\n' "$line" >&2; done
  exit "$status"
}

file_size() { wc -c <"$1" | tr -d ' '; }

human_size() {
  awk -v b="$1" 'BEGIN {
    split("B KB MB GB TB", u, " "); i = 1
    while (b >= 1000 && i < 5) { b /= 1000; i++ }
    if (i == 1) printf "%d %s", b, u[i]; else printf "%.1f %s", b, u[i]
  }'
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else echo "(no sha256sum)"; fi
}
