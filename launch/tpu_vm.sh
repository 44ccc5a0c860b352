#!/usr/bin/env bash
# Runs one experiment on a Cloud TPU VM, a single host or a pod slice of several workers:
# creates the VM unless it exists, copies this repository (what git does not ignore) to every
# worker, installs it there, then runs the config on all workers at once, one JAX process
# per worker (jax.distributed reads the slice's layout from the VM; process 0 writes).
#
#   launch/tpu_vm.sh --name=rsrl --zone=us-central2-b [--accelerator=v4-8] \
#       [--version=tpu-ubuntu2204-base] [--project=P] [--skip-setup] \
#       -- --config=configs/xiheaa.py --config.data.dir=/mnt/shared/photos \
#          --config.data.cache_dir=/mnt/shared/prepared --workdir=/mnt/shared/runs/xiheaa
#
# Everything after `--` goes to `python -m rsrl_jax.main` on every worker. On a pod slice
# (e.g. v4-32: 4 workers), data.dir, data.cache_dir and the workdir must be one folder that
# every worker sees under the same path (a Filestore/NFS share or a gcsfuse-mounted bucket):
# process 0 prepares the photos and writes metrics and reports, and every process writes
# its part of each checkpoint. train.batch_size and train.eval_batch_size must be multiples
# of the chip count. --skip-setup reuses the copy and installation of an earlier call.
# Needs: gcloud, authenticated, with the TPU API enabled in the project.
set -euo pipefail

name="" zone="" accelerator="v4-8" version="tpu-ubuntu2204-base" project="" setup=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --name=*) name=${1#*=} ;;
    --zone=*) zone=${1#*=} ;;
    --accelerator=*) accelerator=${1#*=} ;;
    --version=*) version=${1#*=} ;;
    --project=*) project=${1#*=} ;;
    --skip-setup) setup=0 ;;
    --) shift; break ;;
    *) echo "unknown option $1 (the run's own flags go after --)" >&2; exit 2 ;;
  esac
  shift
done
if [[ -z $name || -z $zone || $# -eq 0 ]]; then
  echo "usage: $0 --name=NAME --zone=ZONE [options] -- --config=configs/X.py [flags...]" >&2
  exit 2
fi

tpu=(gcloud compute tpus tpu-vm)
where=(--zone="$zone")
if [[ -n $project ]]; then
  where+=(--project="$project")
fi

if ! "${tpu[@]}" describe "$name" "${where[@]}" >/dev/null 2>&1; then
  echo "creating TPU VM $name ($accelerator, $version) in $zone" >&2
  "${tpu[@]}" create "$name" "${where[@]}" --accelerator-type="$accelerator" --version="$version"
fi

remote_dir=rsrl-jax
if ((setup)); then
  repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
  archive=$(mktemp -t rsrl-jax.XXXXXX.tar.gz)
  trap 'rm -f "$archive"' EXIT
  # The code as it is here: tracked files with their edits, and new files git does not ignore.
  git -C "$repo" ls-files -z --cached --others --exclude-standard | tar -C "$repo" --null -T - -czf "$archive"
  "${tpu[@]}" scp "$archive" "$name:rsrl-jax.tar.gz" "${where[@]}" --worker=all
  "${tpu[@]}" ssh "$name" "${where[@]}" --worker=all --command="set -e
    rm -rf $remote_dir && mkdir $remote_dir && tar -xzf rsrl-jax.tar.gz -C $remote_dir
    cd $remote_dir && python3 -m venv .venv
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet -c constraints.txt -e . 'jax[tpu]'"
fi

# Quote the run's flags for the remote shell, so values with spaces or parentheses survive.
printf -v run_flags '%q ' "$@"
"${tpu[@]}" ssh "$name" "${where[@]}" --worker=all \
  --command="cd $remote_dir && .venv/bin/python -m rsrl_jax.main --distributed=on $run_flags"
