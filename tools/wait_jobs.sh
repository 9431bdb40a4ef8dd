# Sourced by the training scripts that run two jobs side by side (tools/train_bundled.sh, train_control.sh,
# finetune_regions.sh).
#   wait_jobs MESSAGE PID...
# waits for every job, then, if any failed, prints MESSAGE to stderr and exits with the last failure's status.
# Each job is waited for before judging: `wait A B` returns B's status alone, and exiting at A's failure (set -e)
# would leave B running.
wait_jobs() {
  local message=$1 status=0 pid
  shift
  for pid in "$@"; do
    wait "$pid" || status=$?
  done
  if [ $status -ne 0 ]; then
    echo "$message" >&2
    exit $status
  fi
}
