# Downloads for scripts/update_model.sh (sourced by it), with curl: a progress bar on a terminal, and
# a reason and a hint in words when a download fails (status 3) or gives an empty file (status 4).
# Uses its variables: work (the temporary folder), retries, max_time, target_shown; and run_child, step,
# info, die, human_size and file_size.
# shellcheck shell=bash
# shellcheck disable=SC2154 # work, retries, max_time and target_shown are update_model.sh's (it sources this file)

curl_reason() { # curl_reason EXIT_CODE HTTP_CODE
  case "$1" in
    5) echo "could not resolve the proxy host" ;;
    6) echo "could not resolve host" ;;
    7) echo "could not connect (connection refused or no route to host)" ;;
    22) echo "HTTP $2" ;;
    23) echo "could not write the file (disk full?)" ;;
    28) echo "timeout" ;;
    35) echo "TLS handshake failed" ;;
    47) echo "too many redirects" ;;
    52) echo "the server sent an empty reply" ;;
    18|56) echo "the connection broke off during the transfer" ;;
    60|77) echo "the server's TLS certificate could not be verified" ;;
    *) echo "curl exit code $1" ;;
  esac
}

download() { # download URL FILE LABEL
  local url="$1" out="$2" label="$3"
  local errfile="$work/curl.err" meta status=0
  local -a opts=(--fail --location --show-error
                 --connect-timeout 20 --speed-limit 1000 --speed-time 60
                 --retry "$retries"
                 --output "$out" --write-out '%{http_code} %{size_download} %{time_total}')
  [[ -n "$max_time" ]] && opts+=(--max-time "$max_time")
  step "downloading $label from $url"
  if [[ -t 2 ]]; then # a terminal: curl's progress bar, and its error message straight to it
    : >"$errfile"
    run_child curl --progress-bar "${opts[@]}" "$url" >"$work/curl.out" || status=$?
  else
    run_child curl --silent "${opts[@]}" "$url" >"$work/curl.out" 2>"$errfile" || status=$?
  fi
  meta="$(cat "$work/curl.out")"
  if [[ "$status" != 0 ]]; then
    local http_code="${meta%% *}" detail hint
    detail="$(grep -v '^[[:space:]]*$' "$errfile" | tail -n 1 || true)"
    case "$status" in
      22) hint="The CDN may have moved the file (or this machine is offline and a proxy answered): set MODEL_BASE_URL (or --base-url) / BERT_VOCAB_URL (or --vocab-url) to where it is now." ;;
      *) hint="This machine may be offline or cannot reach that host, or the CDN moved: check the network (and any proxy), or set MODEL_BASE_URL / BERT_VOCAB_URL to a reachable copy." ;;
    esac
    die 3 "could not download $label from $url: $(curl_reason "$status" "$http_code")" \
      ${detail:+"($detail)"} "$hint" "Nothing was changed in $target_shown."
  fi
  local time
  read -r _ _ time <<<"$meta"
  [[ -s "$out" ]] || die 4 "$label from $url is empty (0 bytes)" "Nothing was changed in $target_shown."
  info "$(human_size "$(file_size "$out")") in $(awk -v t="$time" 'BEGIN { printf "%.2f", t }') s"
}
