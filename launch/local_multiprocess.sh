#!/usr/bin/env bash
# Runs one experiment as N JAX processes on this machine, on CPU: the multi-process path
# (jax.distributed, a global batch fed slice by slice, one writer) without a cluster.
#
#   launch/local_multiprocess.sh N --config=configs/demo.py --workdir=runs/demo_mp [--config.a.b=v ...]
#
# Every argument after N goes to `python -m rsrl_jax.main` in each process. Process 0 logs
# to this terminal; process i > 0 logs (warnings only) to WORKDIR_LOGS/process_i.log.
# Environment:
#   PYTHON               interpreter (default: python)
#   PORT                 coordinator port on localhost (default: a free one)
#   DEVICES_PER_PROCESS  CPU devices each process sees (default 1)
#   WORKDIR_LOGS         folder of the other processes' logs (default: a new temporary one)
# The exit status is the first failing process's, or 0.
set -euo pipefail

if [[ $# -lt 1 || ! $1 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 NUM_PROCESSES [rsrl_jax.main flags...]" >&2
  exit 2
fi
num_processes=$1
shift
python=${PYTHON:-python}
devices=${DEVICES_PER_PROCESS:-1}
port=${PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')}
logs=${WORKDIR_LOGS:-$(mktemp -d -t rsrl_jax_processes.XXXXXX)}
mkdir -p "$logs"

pids=()
# Ends the processes of a failed or interrupted run. SIGKILL: a process of a jax.distributed
# run takes SIGTERM as a preemption notice and runs on. Its checkpoints let it resume.
# shellcheck disable=SC2329  # invoked by the trap
cleanup() {
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'echo "interrupted: stopping the processes" >&2; exit 130' INT
trap 'echo "terminated: stopping the processes" >&2; exit 143' TERM

export JAX_PLATFORMS=cpu
export XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=$devices"
for ((i = 0; i < num_processes; i++)); do
  cmd=("$python" -m rsrl_jax.main --distributed=on "--coordinator_address=localhost:$port"
    "--num_processes=$num_processes" "--process_id=$i" "$@")
  if ((i == 0)); then
    "${cmd[@]}" &
  else
    "${cmd[@]}" >"$logs/process_$i.log" 2>&1 &
  fi
  pids+=("$!")
done
echo "$num_processes processes on localhost:$port; logs of processes 1.. in $logs" >&2

# The first process to fail stops the others (they would wait for it until a timeout).
status=0
for ((left = num_processes; left > 0; left--)); do
  code=0
  wait -n || code=$?
  if ((code != 0)); then
    status=$code
    echo "a process failed (exit $code): stopping the others" >&2
    for ((i = 1; i < num_processes; i++)); do
      echo "--- process $i (last lines of $logs/process_$i.log)" >&2
      tail -n 20 "$logs/process_$i.log" >&2
    done
    break
  fi
done
if ((status == 0)); then
  pids=()
fi
exit "$status"
