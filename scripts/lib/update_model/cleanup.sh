# The temporary folder's cleanup for scripts/update_model.sh (sourced by it, which sets the trap on EXIT).
# Uses its variables: work (the temporary folder), installed (1 once the new folder is in place), parent and
# created_parent (the target's parent folder, and whether this run made it), child_pid (set by run_child).
# shellcheck shell=bash
# shellcheck disable=SC2154 # work, installed, parent and created_parent are update_model.sh's (it sources this file)

child_pid=""
# Runs a command in the background and waits for it, so that a signal reaches update_model.sh's traps at once
# (bash runs a trap only after a foreground command ends); the cleanup then stops the command.
run_child() {
  local status=0
  "$@" &
  child_pid=$!
  wait "$child_pid" || status=$?
  child_pid=""
  return "$status"
}
cleanup() {
  if [[ -n "$child_pid" ]]; then
    kill "$child_pid" 2>/dev/null || true
    wait "$child_pid" 2>/dev/null || true
  fi
  rm -rf -- "$work"
  if [[ "$installed" == 0 && "$created_parent" == 1 ]]; then rmdir -- "$parent" 2>/dev/null || true; fi
}
