"""A run survives a kill: resume gives identical results; guards stop nonsense early."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from conftest import TINY_OVERRIDES, read_records, run_cli
from rsrl_jax.run import checkpoints

# Longer rounds of tiny batches with a checkpoint after every step, so a kill lands mid-round.
OVERRIDES = {
    **TINY_OVERRIDES,
    "rsrl.rounds": 3,
    "train.epochs_per_round": 4,
    "train.batch_size": 4,
    "checkpoint.every_steps": 1,
}


def round_params(workdir, rounds):
    mngr = checkpoints.manager(str(workdir), 0, read_only=True)
    return [checkpoints.restore_round(mngr, r)[0] for r in rounds]


def assert_same_params(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reference")
    run_cli(workdir, {**OVERRIDES, "checkpoint.every_steps": 0})  # saves change no result
    return workdir


def kill_at(workdir, overrides: dict, log_line: str, config="configs/demo.py") -> None:
    """Starts the run of `config` with `overrides` in `workdir` and SIGKILLs it as soon as
    its log shows `log_line`."""
    cmd = [sys.executable, "-m", "rsrl_jax.main", f"--config={config}"]
    cmd += [f"--workdir={workdir}"] + [f"--config.{k}={v}" for k, v in overrides.items()]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if log_line in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_mid_round_two_then_resume_is_identical(reference, tmp_path):
    workdir = tmp_path / "killed"
    kill_at(workdir, OVERRIDES, "fold 0 round 2 epoch 1/4")  # round 2's first epoch done
    assert len(read_records(workdir)) == 1  # round 1 done, round 2 under way

    resumed = run_cli(workdir, OVERRIDES)
    assert "fold 0 round 2: resuming at epoch" in resumed.stderr
    assert not (workdir / "fold_0" / "in_progress").exists()  # cleared, then removed
    assert (workdir / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()
    assert_same_params(round_params(workdir, [1, 2, 3]), round_params(reference, [1, 2, 3]))


def test_same_seed_same_metrics_and_rerun_of_a_finished_run_changes_nothing(reference, tmp_path):
    again = tmp_path / "again"
    # The reference's own config: mid-round saves change no result (the killed run above
    # proves it), and a run without them trains in a fraction of the time.
    overrides = {**OVERRIDES, "checkpoint.every_steps": 0}
    run_cli(again, overrides)
    assert (again / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()
    # Logging fields may change on resume; a finished run has nothing left to do, and writes
    # nothing (not even config.json: so a read-only workdir reruns too).
    before = (again / "metrics.jsonl").read_bytes()
    written = (again / "report" / "report.md").stat().st_mtime_ns
    # A reader: no lock taken (its .lock.json would change the folder's mtime), no file.
    files = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in [again, *again.rglob("*")]}
    result = run_cli(again, {**overrides, "log.progress": False})
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in [again, *again.rglob("*")]} == files
    assert "rounds 1-3 done" in result.stderr
    assert "nothing to train" in result.stderr and "resuming at round" not in result.stderr
    assert (again / "metrics.jsonl").read_bytes() == before
    # Nor is the report redrawn (no new round), unless it is missing.
    report = again / "report" / "report.md"
    assert "no round left to train: the report in" in result.stderr
    assert report.stat().st_mtime_ns == written
    report.unlink()
    run_cli(again, {**overrides, "log.progress": False})
    assert report.read_text().startswith("# RSRL run report")


def test_resume_with_a_result_changing_config_is_refused_unless_forced(reference, tmp_path):
    workdir = tmp_path / "copy"
    shutil.copytree(reference, workdir)
    # The reference's saves (none mid-round): round 4 trains without a save after each step.
    changed = {**OVERRIDES, "checkpoint.every_steps": 0, "rsrl.rounds": 4}
    changed["train.learning_rate"] = 0.5
    refused = run_cli(workdir, changed, check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr  # a config error
    assert "rsrl.rounds: 3 -> 4" in refused.stderr
    assert "train.learning_rate: 0.001 -> 0.5" in refused.stderr
    assert len(read_records(workdir)) == 3
    forced = run_cli(workdir, {**changed, "resume": "force"}, check=False)
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert [r["round"] for r in read_records(workdir)] == [1, 2, 3, 4]


def test_nan_loss_stops_with_fold_round_step_and_keeps_the_last_good_checkpoint(
    reference, tmp_path
):
    workdir = tmp_path / "blowup"
    shutil.copytree(reference, workdir)
    # One more round at an absurd learning rate: step 1's loss is finite, its update is
    # huge, step 2's loss overflows.
    blowup = {**OVERRIDES, "rsrl.rounds": 4, "train.learning_rate": 1e30, "resume": "force"}
    result = run_cli(workdir, blowup, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr  # a run error, one line
    assert "fold 0 round 4 step 2: the loss or a gradient is NaN or Inf" in result.stderr
    assert len(read_records(workdir)) == 3
    (params3,) = round_params(workdir, [3])
    assert_same_params(params3, round_params(reference, [3])[0])
    mngr = checkpoints.progress_manager(str(workdir), 0)
    assert mngr.all_steps() == [1]  # the state after the last good step, loadable
    meta = mngr.restore(
        1, args=checkpoints.ocp.args.Composite(meta=checkpoints.ocp.args.JsonRestore())
    )["meta"]
    assert meta["round"] == 4


KILL_DURING_SAVE = textwrap.dedent(
    """
    import sys, numpy as np
    from rsrl_jax.run import checkpoints
    mngr = checkpoints.manager(sys.argv[1], 0)
    checkpoints.save_round(mngr, 1, {"w": np.arange(10, dtype=np.float32)}, {"round": 1})
    print("saved", flush=True)
    big = {"w": np.ones((128, 1024, 1024), np.float32)}  # 512 MB: the save takes a while
    checkpoints.save_round(mngr, 2, big, {"round": 2})
    print("finished", flush=True)
    """
)


def test_kill_during_a_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_DURING_SAVE, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout.readline().strip() == "saved"
    fold = tmp_path / "fold_0"
    for _ in range(2000):  # wait until the second save has started writing
        if any("tmp" in name for name in os.listdir(fold)):
            break
        assert proc.poll() is None, "the save finished before it could be killed"
        import time

        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (fold / "round_02").exists()
    mngr = checkpoints.manager(str(tmp_path), 0)
    assert mngr.all_steps() == [1]
    params, meta = checkpoints.restore_round(mngr, 1)
    np.testing.assert_array_equal(params["w"], np.arange(10, dtype=np.float32))
    assert meta == {"round": 1}


# The run, with a SIGTERM sent to itself from inside round 1's training after its 13th batch
# (mid-epoch 2): where the signal lands is then certain, not a race with the log.
SIGTERM_AT_STEP = textwrap.dedent(
    """
    import os, runpy, signal, sys
    from rsrl_jax.run.progress import Progress
    update, calls = Progress.update, []
    def update_and_signal(self, *args, **kwargs):
        update(self, *args, **kwargs)
        if self.desc == "fold 0 round 1 training":
            calls.append(1)
            if len(calls) == 13:
                os.kill(os.getpid(), signal.SIGTERM)
    Progress.update = update_and_signal
    sys.argv = ["rsrl_jax.main"] + sys.argv[1:]
    runpy.run_module("rsrl_jax.main", run_name="__main__")
    """
)


def test_sigterm_mid_round_saves_that_step_and_stops_in_one_line_then_resumes_identically(
    reference, tmp_path
):
    workdir = tmp_path / "terminated"
    overrides = {**OVERRIDES, "checkpoint.every_steps": 0}  # the signal's own save, no other
    cmd = [sys.executable, "-c", SIGTERM_AT_STEP, "--config=configs/demo.py"]
    cmd += [f"--workdir={workdir}"] + [f"--config.{k}={v}" for k, v in overrides.items()]
    stopped = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stderr
    assert stopped.stderr.splitlines()[-1] == (
        "interrupted (SIGTERM) in fold 0 round 1 at step 13: the training state at step 13 "
        f"was saved in {workdir}; run the same command to resume"
    )
    assert checkpoints.progress_manager(str(workdir), 0).all_steps() == [13]
    assert read_records(workdir) == []

    resumed = run_cli(workdir, overrides)
    assert "fold 0 round 1: resuming at epoch 2 batch 4" in resumed.stderr
    assert (workdir / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()
    assert_same_params(round_params(workdir, [1, 2, 3]), round_params(reference, [1, 2, 3]))
