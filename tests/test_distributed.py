"""Data parallel on a mesh of several devices, and several JAX processes on one machine."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from conftest import TINY_OVERRIDES, assert_records_match, read_records, run_on_cpu_devices
from rsrl_jax.run import checkpoints, distributed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_one_plain_process_runs_without_jax_distributed():
    assert distributed.settings("auto", environ={}, on_tpu_vm=False) is None
    one_task = {"SLURM_STEP_NODELIST": "node1", "SLURM_NTASKS": "1"}
    assert distributed.settings("auto", environ=one_task, on_tpu_vm=False) is None
    coordinator = {
        "JAX_COORDINATOR_ADDRESS": "h:1",
        "JAX_NUM_PROCESSES": "2",
        "JAX_PROCESS_ID": "0",
    }
    assert distributed.settings("off", environ=coordinator, on_tpu_vm=False) is None


def test_processes_are_joined_from_flags_environment_slurm_or_a_tpu_vm():
    env = {"JAX_COORDINATOR_ADDRESS": "h:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
    assert distributed.settings("auto", environ=env, on_tpu_vm=False) == {
        "coordinator_address": "h:1234",
        "num_processes": 4,
        "process_id": 3,
    }
    flags = distributed.settings("auto", "localhost:9", 2, 1, environ={}, on_tpu_vm=False)
    assert flags == {"coordinator_address": "localhost:9", "num_processes": 2, "process_id": 1}
    # SLURM steps and TPU VMs: JAX detects all three itself.
    detected = {"coordinator_address": None, "num_processes": None, "process_id": None}
    slurm = {"SLURM_STEP_NODELIST": "gpu[01-02]", "SLURM_NTASKS": "16"}
    assert distributed.settings("auto", environ=slurm, on_tpu_vm=False) == detected
    assert distributed.settings("auto", environ={}, on_tpu_vm=True) == detected


def test_an_incomplete_or_inconsistent_process_setup_is_refused_by_name():
    with pytest.raises(ValueError, match="--process_id"):
        distributed.settings("auto", "localhost:9", 2, environ={}, on_tpu_vm=False)
    with pytest.raises(ValueError, match="--coordinator_address"):
        distributed.settings("on", environ={}, on_tpu_vm=False)
    with pytest.raises(ValueError, match=r"--process_id=2: must be in \[0, --num_processes=2\)"):
        distributed.settings("auto", "localhost:9", 2, 2, environ={}, on_tpu_vm=False)
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES='two'"):
        distributed.settings("auto", environ={"JAX_NUM_PROCESSES": "two"}, on_tpu_vm=False)
    with pytest.raises(ValueError, match="--distributed='maybe'"):
        distributed.settings("maybe", environ={}, on_tpu_vm=False)


# One RSRL round of the tiny network on a mesh of 4 (fake CPU) devices and on 1 device, in a
# subprocess: XLA fixes the device count when it starts. SGD, because Adam divides by the
# root of tiny second moments and so magnifies float rounding into visible differences.
FOUR_DEVICES = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, "tests")  # before the repository root's own conftest
    import jax, numpy as np
    from conftest import tiny_config
    from rsrl_jax.engine import rsrl
    from rsrl_jax.models import pretrained
    from rsrl_jax.run import checkpoints
    from rsrl_jax.data import splits

    def save(name, params):
        flat = jax.tree_util.tree_flatten_with_path(params)[0]
        leaves = {"/".join(str(k.key) for k in path): np.asarray(v) for path, v in flat}
        np.savez(os.path.join(sys.argv[1], name + ".npz"), **leaves)

    assert jax.device_count() == 4, jax.devices()
    config = tiny_config({"rsrl.rounds": 1, "train.optimizer": "'sgd'",
                          "train.learning_rate": 0.01})
    out = {}
    for name, devices in (("four", jax.devices()), ("one", jax.devices()[:1])):
        workdir = os.path.join(sys.argv[1], name)
        experiment = rsrl.Experiment.build(config, workdir, devices=devices)
        (split,) = splits.protocol_splits(experiment.data.labels, config.protocol, config.seed)
        (record,) = experiment.run_folds({0: split})
        (x,) = experiment.placer.shard(np.zeros(16, np.float32))
        save(name, checkpoints.restore_round(checkpoints.manager(workdir, 0, True), 1)[0])
        out[name] = {"record": record, "mesh": experiment.mesh.size,
                     "batch_devices": len(x.sharding.device_set),
                     "steps_compiled": experiment.fold_step(1)._cache_size()}
    save("init", pretrained.initial_params(config, experiment.model, config.seed))
    print(json.dumps(out))
    """
)


def test_four_devices_train_the_same_parameters_as_one(tmp_path):
    result = run_on_cpu_devices(4, FOUR_DEVICES, tmp_path)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    four, one = out["four"], out["one"]
    assert (four["mesh"], four["batch_devices"]) == (4, 4)  # the batch is split 4 ways
    assert (one["mesh"], one["batch_devices"]) == (1, 1)
    assert four["steps_compiled"] == one["steps_compiled"] == 1
    p4, p1, init = (np.load(tmp_path / f"{n}.npz") for n in ("four", "one", "init"))
    assert sorted(p4) == sorted(p1) == sorted(init) and len(p4) == 16  # 8 layers' kernel, bias
    gap = max(np.abs(p4[k] - p1[k]).max() for k in p4)
    moved = max(np.abs(p1[k] - init[k]).max() for k in p1)
    assert gap < 1e-5 and moved > 1000 * gap, (gap, moved)
    r4, r1 = four["record"], one["record"]
    assert r4["train_loss"] == pytest.approx(r1["train_loss"], rel=1e-5)
    parts = ("train", "val", "test")  # the sharded likelihood and evaluation passes
    assert_records_match({p: r4[p] for p in parts}, {p: r1[p] for p in parts})


def test_two_processes_write_what_one_process_writes(tiny_run, tmp_path):
    """The tiny run of conftest as 2 processes of 1 CPU device each (launch script), with a
    mid-round checkpoint every 2 steps (saved by both processes; results do not change).

    Compared with the one-process run: every metrics field is equal, except the training
    loss (summed over 2 devices, so to float rounding) and the aesthetic figures (continuous
    in the logits, `assert_records_match`); the parameters agree to 1e-3 (Adam
    magnifies rounding, see above); only process 0 writes files and INFO logs.
    """
    workdir, records, _ = tiny_run
    mp_workdir, logs = tmp_path / "run", tmp_path / "logs"
    overrides = {**TINY_OVERRIDES, "log.progress": False, "checkpoint.every_steps": 2}
    cmd = ["bash", os.path.join(ROOT, "launch", "local_multiprocess.sh"), "2"]
    cmd += ["--config=configs/demo.py", f"--workdir={mp_workdir}"]
    cmd += [f"--config.{k}={v}" for k, v in overrides.items()]
    env = {**os.environ, "PYTHON": sys.executable, "WORKDIR_LOGS": str(logs)}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "process 0 of 2; 1 local and 2 global device(s)" in result.stderr

    mp_records = read_records(mp_workdir)
    assert len(mp_records) == len(records) == 2  # written once, by process 0
    for mine, theirs in zip(mp_records, records, strict=True):
        assert_records_match(mine, theirs)
    assert len((mp_workdir / "timings.jsonl").read_text().splitlines()) == 2
    assert len(list((mp_workdir / "tensorboard" / "fold_0").iterdir())) == 1
    assert (mp_workdir / "report" / "report.md").is_file()
    other = (logs / "process_1.log").read_text()
    assert "process 1 of 2" in other and "round 1/2" not in other  # INFO lines: process 0

    for r in (1, 2):  # saved on a 2-device mesh, restored onto this process's device
        mine = checkpoints.load_network(str(mp_workdir), 0, r)[2]
        theirs = checkpoints.load_network(str(workdir), 0, r)[2]
        for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-3)
