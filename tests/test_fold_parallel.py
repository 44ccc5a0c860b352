"""Folds trained at once (protocol.parallel_folds) match folds trained one after the other."""

import json

import jax
import numpy as np
import pytest

from conftest import assert_records_match, read_records, tiny_config
from rsrl_jax import workdir_files
from rsrl_jax.data import splits
from rsrl_jax.engine import fold_axis, rsrl
from rsrl_jax.run import checkpoints

# Two folds of the tiny run, in batches of 8 (so that every epoch has several steps). SGD:
# Adam magnifies float rounding (see test_distributed).
OVERRIDES = {
    "protocol.folds": 2,
    "train.batch_size": 8,
    "train.optimizer": "'sgd'",
    "train.learning_rate": 0.01,
    "log.progress": False,
}


def key(record):
    return record["fold"], record["round"]


def round_params(workdir, fold, round_):
    mngr = checkpoints.manager(str(workdir), fold, read_only=True)
    return checkpoints.restore_round(mngr, round_)[0]


@pytest.fixture(scope="module")
def parallel_run(tmp_path_factory):
    """(workdir, experiment) of all rounds of both folds trained at once."""
    workdir = tmp_path_factory.mktemp("parallel")
    config = tiny_config({**OVERRIDES, "protocol.parallel_folds": True})
    experiment = rsrl.Experiment.build(config, str(workdir))
    experiment.run_folds(
        splits.protocol_splits(experiment.data.labels, config.protocol, config.seed), parallel=True
    )
    return workdir, experiment


def test_parallel_folds_give_the_sequential_records_and_parameters(parallel_run, tmp_path):
    workdir, runner = parallel_run
    config = tiny_config(OVERRIDES)
    experiment = rsrl.Experiment.build(config, str(tmp_path))
    fold_splits = splits.protocol_splits(experiment.data.labels, config.protocol, config.seed)
    sequential = [
        r for f, split in enumerate(fold_splits) for r in experiment.run_folds({f: split})
    ]
    parallel = read_records(workdir)
    # metrics.jsonl of a parallel run goes round by round.
    assert [key(r) for r in parallel] == [(0, 1), (1, 1), (0, 2), (1, 2)]
    # Each fold and round trained on a set of its own size, with one compiled step.
    assert len({r["train_size"] for r in parallel}) == 4
    assert runner.fold_step(2)._cache_size() == 1
    for seq, par in zip(sorted(sequential, key=key), sorted(parallel, key=key), strict=True):
        assert_records_match(seq, par)  # the loss and aesthetic figures to float rounding
        mine = jax.tree.leaves(round_params(tmp_path, *key(seq)))
        theirs = jax.tree.leaves(round_params(workdir, *key(par)))
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


class Killed(Exception):
    """Stands for a SIGKILL: the run stops where it is, with what it has saved."""


def kill_at(monkeypatch, name, at_round, nth):
    """Makes the `nth` call of checkpoints.`name` for round `at_round` raise Killed, before
    it saves anything (`save_progress` reads the round from its meta, `save_round` from its
    round argument)."""
    original, calls = getattr(checkpoints, name), []

    def wrapper(mngr, step, tree, meta, **kw):  # save_round's `wait`
        round_ = meta["round"] if name == "save_progress" else step
        calls.append(round_)
        if calls.count(at_round) == nth:
            raise Killed(f"{name} #{nth} of round {at_round}")
        return original(mngr, step, tree, meta, **kw)

    monkeypatch.setattr(checkpoints, name, wrapper)


def test_a_parallel_run_killed_mid_round_and_between_fold_saves_resumes_identically(
    parallel_run, tmp_path, monkeypatch, caplog
):
    workdir = str(tmp_path)
    config = tiny_config(  # keep='needed' drops rounds only once every fold has saved one
        {
            **OVERRIDES,
            "protocol.parallel_folds": True,
            "checkpoint.every_steps": 1,
            "checkpoint.keep": "'needed'",
        }
    )
    kill_at(monkeypatch, "save_progress", at_round=2, nth=2)  # after round 2's first step
    with pytest.raises(Killed):
        rsrl.run(config, workdir)
    monkeypatch.undo()
    assert [key(r) for r in read_records(tmp_path)] == [(0, 1), (1, 1)]
    # Then killed after fold 0 saved round 2, before fold 1 did.
    kill_at(monkeypatch, "save_round", at_round=2, nth=2)
    caplog.set_level("INFO")
    caplog.set_level("INFO", logger="absl")  # whatever an earlier test left absl's level at
    with pytest.raises(Killed):
        rsrl.run(config, workdir)
    monkeypatch.undo()
    assert "folds round 2: resuming at epoch 1 batch 1" in caplog.text
    assert checkpoints.saved_rounds(workdir, 0) == [1, 2]
    assert checkpoints.saved_rounds(workdir, 1) == [1]
    rsrl.run(config, workdir)
    reference = parallel_run[0]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert sorted(lines) == sorted((reference / "metrics.jsonl").read_text().splitlines())
    # A resume rebuilds metrics.jsonl round by round, as the parallel run writes it.
    assert [key(r) for r in read_records(tmp_path)] == [(0, 1), (1, 1), (0, 2), (1, 2)]
    for fold in (0, 1):
        mine = jax.tree.leaves(round_params(tmp_path, fold, 2))
        theirs = jax.tree.leaves(round_params(reference, fold, 2))
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not (tmp_path / workdir_files.FOLDS_IN_PROGRESS).exists()  # cleared, then removed
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [s["fold"] for s in summary["folds"]] == [0, 1]
    assert (tmp_path / "report" / "report.md").is_file()


def test_a_conv_step_runs_its_lanes_in_turn_on_one_cpu_device_and_a_dense_one_vmapped():
    from rsrl_jax.engine import placement

    def conv_step(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME").sum()

    def dense_step(x, w):
        return (x.reshape(-1)[: w.shape[0]] @ w).sum()

    lanes_of = lambda *shapes: [np.ones((3, *s), np.float32) for s in shapes]  # noqa: E731
    one_device = placement.make_mesh(jax.devices()[:1])
    grad = jax.grad(conv_step, argnums=1)  # nested: the conv sits in the gradient's jaxpr
    assert fold_axis.runs_lanes_in_turn(
        jax.jit(grad), lanes_of((1, 2, 5, 5), (4, 2, 3, 3)), one_device
    )
    assert not fold_axis.runs_lanes_in_turn(dense_step, lanes_of((1, 2, 5, 5), (8, 4)), one_device)
    # a study's group on one device (a lane axis of length 1) runs in turn as well
    lanes = placement.lane_mesh(one_device, 3)
    assert fold_axis.runs_lanes_in_turn(jax.jit(grad), lanes_of((1, 2, 5, 5), (4, 2, 3, 3)), lanes)
