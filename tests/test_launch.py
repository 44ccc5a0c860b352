"""The launch scripts call gcloud and srun as documented (both faked here: they log calls)."""

import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRICKY = "--config.rsrl.thresholds=(0.6, 0.6,0.6)"  # parentheses and a space

FAKE_GCLOUD = """#!/usr/bin/env bash
line="$*"
printf '%s\\n' "${line//$'\\n'/ }" >> "$FAKE_LOG"  # one line per call
if [[ $4 == describe && -z ${FAKE_EXISTS:-} ]]; then exit 1; fi
if [[ $4 == scp ]]; then tar -tzf "$5" > "$FAKE_LOG.files"; fi
"""

FAKE_SRUN = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$FAKE_LOG"
"""


def fake_command(bin_dir, name, text):
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(text)
    path.chmod(0o755)


def run_script(args, tmp_path, cwd=ROOT, **env):
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", **env}
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


def test_tpu_vm_creates_copies_installs_on_every_worker_and_runs_there(tmp_path):
    fake_command(tmp_path / "bin", "gcloud", FAKE_GCLOUD)
    log = tmp_path / "gcloud.log"
    script = os.path.join(ROOT, "launch", "tpu_vm.sh")
    args = ["bash", script, "--name=rsrl", "--zone=z1", "--accelerator=v4-32", "--project=p"]
    args += ["--", "--config=configs/demo.py", TRICKY]
    result = run_script(args, tmp_path, FAKE_LOG=str(log))
    assert result.returncode == 0, result.stderr
    describe, create, scp, setup, run = log.read_text().split("\n", 4)
    where = "--zone=z1 --project=p"
    assert describe == f"compute tpus tpu-vm describe rsrl {where}"
    assert create == (
        f"compute tpus tpu-vm create rsrl {where} --accelerator-type=v4-32 "
        "--version=tpu-ubuntu2204-base"
    )
    assert scp.startswith("compute tpus tpu-vm scp ") and scp.endswith("--worker=all")
    assert setup.startswith(f"compute tpus tpu-vm ssh rsrl {where} --worker=all --command=")
    assert "pip install --quiet -c constraints.txt -e . 'jax[tpu]'" in setup
    files = (tmp_path / "gcloud.log.files").read_text().split()
    assert {"rsrl_jax/main.py", "launch/tpu_vm.sh", "pyproject.toml"} <= set(files)
    assert not any(f.startswith(".venv") for f in files)
    prefix = (
        f"compute tpus tpu-vm ssh rsrl {where} --worker=all --command=cd rsrl-jax && "
        ".venv/bin/python -m rsrl_jax.main --distributed=on "
    )
    assert run.startswith(prefix)
    # The remote shell gets the run's flags back unchanged.
    echoed = subprocess.run(
        ["bash", "-c", "printf '%s\\n' " + run[len(prefix) :].strip()],
        capture_output=True,
        text=True,
    )
    assert echoed.stdout.splitlines() == ["--config=configs/demo.py", TRICKY]

    # An existing VM is reused; --skip-setup goes straight to the run.
    log.unlink()
    again = run_script(
        args[:2] + ["--name=rsrl", "--zone=z1", "--skip-setup", "--", "--config=c.py"],
        tmp_path,
        FAKE_LOG=str(log),
        FAKE_EXISTS="1",
    )
    assert again.returncode == 0, again.stderr
    assert [line.split()[3] for line in log.read_text().splitlines()] == ["describe", "ssh"]


def test_tpu_vm_refuses_missing_options(tmp_path):
    fake_command(tmp_path / "bin", "gcloud", FAKE_GCLOUD)
    script = os.path.join(ROOT, "launch", "tpu_vm.sh")
    result = run_script(["bash", script, "--zone=z", "--", "--config=c.py"], tmp_path)
    assert result.returncode == 2 and "usage:" in result.stderr
    result = run_script(["bash", script, "--name=n", "--zone=z", "--config=c.py"], tmp_path)
    assert result.returncode == 2 and "go after --" in result.stderr


def test_slurm_starts_one_srun_step_of_the_run(tmp_path):
    fake_command(tmp_path / "bin", "srun", FAKE_SRUN)
    fake_command(tmp_path / "job" / ".venv" / "bin", "python", "#!/bin/sh\n")
    log = tmp_path / "srun.log"
    script = os.path.join(ROOT, "launch", "slurm_gpu.sbatch")
    job = str(tmp_path / "job")
    result = run_script(
        ["bash", script, "--config=configs/xiheaa.py", TRICKY],
        tmp_path,
        FAKE_LOG=str(log),
        SLURM_SUBMIT_DIR=job,
    )
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [
        "--kill-on-bad-exit=1",
        ".venv/bin/python",
        "-m",
        "rsrl_jax.main",
        "--distributed=on",
        "--config=configs/xiheaa.py",
        TRICKY,
    ]
    with open(script) as f:
        directives = [line for line in f if line.startswith("#SBATCH")]
    tasks = next(d for d in directives if "--ntasks-per-node" in d).split("=")[1]
    gpus = next(d for d in directives if "--gpus-per-node" in d).split("=")[1]
    assert tasks == gpus  # one process per GPU
    missing = run_script(["bash", script], tmp_path, SLURM_SUBMIT_DIR=str(tmp_path))
    assert missing.returncode == 2 and "create the virtual environment" in missing.stderr


def test_local_multiprocess_wants_a_process_count(tmp_path):
    script = os.path.join(ROOT, "launch", "local_multiprocess.sh")
    result = run_script(["bash", script, "--config=configs/demo.py"], tmp_path)
    assert result.returncode == 2 and "usage:" in result.stderr
