"""A run's context (`Experiment`): its config, workdir, data and recorder, with what the lanes
of its group share (mesh, network, optimizer, the compiled steps, built once per group).
"""

import dataclasses
import functools

import jax
import ml_collections

from rsrl_jax import compiler
from rsrl_jax.config import check_classes
from rsrl_jax.data import datasets, inputs
from rsrl_jax.engine import fold_axis, placement, rounds, train
from rsrl_jax.run import contract, resume
from rsrl_jax.run.recorder import Recorder


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A run's config, data, recorder and contract, and what the lanes of its group share:
    the mesh, the network and its input, the optimizer and the compiled steps. Build it with
    `Experiment.build` (`shared=`: another run of the group's compiled parts)."""

    config: ml_collections.ConfigDict
    workdir: str
    recorder: Recorder
    data: datasets.Dataset
    mesh: jax.sharding.Mesh
    placer: placement.BatchPlacer  # batches [B, ...] (evaluation)
    model: object
    view: object  # the network's input: photos or feature vectors (`data.inputs.network_input`)
    tx: object
    train_step: object
    eval_step: object
    train_options: dict | None  # the train steps' XLA options (None: the backend's default)
    contract: contract.Contract  # saved with every round: the network's use without the run

    @classmethod
    def build(
        cls, config: ml_collections.ConfigDict, workdir: str, devices=None, data=None, shared=None
    ):
        """Loads the data (unless given) and compiles nothing yet; `devices`: the mesh's,
        default all. `shared`: an Experiment of the same group (`group_key`) whose mesh,
        network, optimizer and steps this one reuses (lanes of one compiled program).

        A resumed run's list of photos is checked against its record before any photo is
        decoded; skipped.jsonl is written by `run` once the workdir is known to be its own.
        """
        recorder = Recorder(workdir)
        if data is None:
            data = datasets.load(config, check_listing=resume.listing_check(config, workdir))
        check_classes(data, config)
        if shared is not None:
            return dataclasses.replace(
                shared,
                config=config,
                workdir=workdir,
                recorder=recorder,
                data=data,
                contract=contract.model_contract(config, data.class_scores),
            )
        mesh = placement.make_mesh(devices)
        model = train.make_model(config, data.num_classes)
        view = inputs.network_input(config, data.images.shape[-1])  # D, for feature vectors
        tx = train.make_optimizer(config)
        dense = config.model.name in train.FEATURE_MODELS  # a head of dense layers only
        train_options = compiler.default_compiler_options("dense_train" if dense else "train")
        train_step, eval_step = train.make_steps(
            config, model, tx, mesh, view=view, train_options=train_options
        )
        return cls(
            config=config,
            workdir=workdir,
            recorder=recorder,
            data=data,
            mesh=mesh,
            placer=placement.BatchPlacer(mesh),
            model=model,
            view=view,
            tx=tx,
            train_step=train_step,
            eval_step=eval_step,
            train_options=train_options,
            contract=contract.model_contract(config, data.class_scores),
        )

    def in_workdir(self, workdir: str) -> "Experiment":
        """The same data and compiled steps, writing into another workdir."""
        return dataclasses.replace(self, workdir=workdir, recorder=Recorder(workdir))

    def fold_step(self, k: int):
        """The train step over a lane axis of length `k` (`fold_axis.make_fold_step`), on the
        group's `placement.lane_mesh`."""
        mesh = placement.lane_mesh(self.mesh, k)
        return _fold_step(self.train_step, mesh, k, _frozen(self.train_options))

    def lane_placer(self, k: int) -> placement.LanePlacer:
        """Places the batches and stacked trees of a group of `k` lanes (`fold_step(k)`'s)."""
        return placement.LanePlacer(placement.lane_mesh(self.mesh, k))

    def abstract_params(self):
        """Shapes, dtypes and (replicated) shardings of the parameters, for restoring."""
        return train.abstract_params(self.model, self.view, self.placer.replicated)

    def run_folds(self, fold_splits, parallel: bool | None = None) -> list[dict]:
        """All rounds of the folds `fold_splits` (a list, fold i = entry i, or {fold: split});
        one after the other, or all at once when `parallel` (default
        `protocol.parallel_folds`). Returns the records, fold by fold."""
        if not isinstance(fold_splits, dict):
            fold_splits = dict(enumerate(fold_splits))
        if self.config.protocol.parallel_folds if parallel is None else parallel:
            return rounds.run_group(self, fold_splits, parallel=True)
        return [
            r
            for fold, split in fold_splits.items()
            for r in rounds.run_group(self, {fold: split}, parallel=False)
        ]


def _frozen(options: dict | None):
    return None if options is None else tuple(sorted(options.items()))


@functools.cache
def _fold_step(train_step, mesh, k: int, options: tuple | None):
    """One compiled fold step per (train step, k) for the whole process (cached)."""
    return fold_axis.make_fold_step(train_step, mesh, k, {} if options is None else dict(options))
