"""Which lanes train together: runs whose config differs only in a lane's own fields and
whose photos are the same share a group (`group_key`), ordered so that lanes training alike
sit side by side, in groups as large as memory holds (`lanes_that_fit`); where each group
keeps its mid-round state (`progress_place`).
"""

import hashlib
import json
import os

import jax
import ml_collections
import numpy as np
from absl import logging

from rsrl_jax import workdir_files
from rsrl_jax.data import inputs
from rsrl_jax.engine import lane_progress, train
from rsrl_jax.engine.experiment import Experiment

# `run_lanes(lanes=PROTOCOL_FOLDS)`: each run's folds as `protocol.parallel_folds` says
PROTOCOL_FOLDS = "protocol.parallel_folds"
# Fields a lane may have of its own (`group_key`): what it trains on and how, not the
# program's shapes or the network's.
LANE_SECTIONS = ("method", "rsrl", "log", "checkpoint", "protocol")
LANE_FIELDS = (
    "seed",
    "resume",
    "data.label_noise",
    "train.epochs_per_round",
    "train.first_round_epochs",
    "train.epoch_samples",
)


def group_key(config: ml_collections.ConfigDict, data) -> str:
    """What the lanes of one group share: the config without the fields a lane has of its
    own (`LANE_SECTIONS`, `LANE_FIELDS`; `rsrl.rounds` is shared) and the photos themselves
    (`images_id`: synthetic photos differ by seed, embeddings do not)."""
    fields = json.loads(config.to_json())
    rounds_ = fields["rsrl"]["rounds"]
    for section in LANE_SECTIONS:
        fields.pop(section, None)
    for name in LANE_FIELDS:
        *path, last = name.split(".")
        node = fields
        for part in path:
            node = node.get(part, {})
        node.pop(last, None)
    fields["rounds"] = rounds_
    return json.dumps(fields, sort_keys=True) + images_id(data)


def images_id(data) -> str:
    """The identity of a data set's photos (or vectors): their content, in order."""
    digest = hashlib.sha256(f"{data.images.shape}{data.images.dtype}".encode())
    if data.fingerprints is not None:
        digest.update("\n".join(map(str, data.fingerprints)).encode())
    else:
        digest.update(np.ascontiguousarray(data.images).tobytes())
    return digest.hexdigest()


def groups(prepared: list, lanes) -> list[list[tuple[int, int]]]:
    """The groups of lanes ((run, fold)) to train, each one compiled program. Lanes of one
    seed and fold on the same labels sit side by side, so that those that train alike
    (`rounds.round_signature`) share a group."""
    if lanes == PROTOCOL_FOLDS:  # rsrl.run: its folds as protocol.parallel_folds says
        (run_,) = prepared
        folds = list(range(len(run_.fold_splits)))
        if run_.exp.config.protocol.parallel_folds:
            return [[(0, f) for f in folds]]
        return [[(0, f)] for f in folds]
    by_key, groups = {}, []
    for r, run_ in enumerate(prepared):
        key = group_key(run_.exp.config, run_.exp.data)
        for f in range(len(run_.fold_splits)):
            if run_.finished:  # alone: only its checkpoints' retention is left to do
                groups.append([(r, f)])
            else:
                by_key.setdefault(key, []).append((r, f))
    for members in by_key.values():

        def order(lane):
            run_ = prepared[lane[0]]
            labels = hashlib.sha256(run_.exp.data.labels.tobytes()).hexdigest()
            return labels, run_.exp.config.seed, lane[1], lane[0]

        members.sort(key=order)
        size = lanes or lanes_that_fit(prepared[members[0][0]].exp)
        groups += [members[i : i + size] for i in range(0, len(members), size)]
    return groups


def progress_place(prepared, group, lanes_) -> tuple[str, str]:
    """(the folder of the group's mid-round state, its name in the log): a lane alone keeps
    its fold's `in_progress/`, all folds of one run `folds_in_progress/` (as a run of
    parallel folds), other groups `lanes_in_progress/<group id>/` in the first lane's run."""
    runs = {r for r, _ in group}
    files = workdir_files.WorkdirFiles(lanes_[0].exp.workdir)
    if len(group) == 1:
        return files.in_progress(lanes_[0].index), f"fold {lanes_[0].index}"
    if len(runs) == 1 and len(group) == len(prepared[group[0][0]].fold_splits):
        return files.folds_in_progress, "folds"
    return lane_progress.group_progress_dir(lanes_), f"{len(group)} lanes of {len(runs)} run(s)"


def lane_bytes(exp: Experiment) -> int:
    """Memory a lane takes in a group's step (an estimate): its parameters, their gradients
    and the optimizer's moments (Adam 2, SGD 1), and the activations of its batch (the
    network's layer outputs for one input, times the batch, kept for the backward pass and
    their gradients: x 2)."""
    params = exp.abstract_params()
    param_bytes = sum(p.size * p.dtype.itemsize for p in jax.tree.leaves(params))
    moments = 2 if exp.config.train.optimizer == "adam" else 1
    example = inputs.as_input(exp.view).example()

    def forward(params, x):
        _, state = exp.model.apply(
            train.variables(params), x, capture_intermediates=True, mutable=["intermediates"]
        )
        return state

    try:
        shapes = jax.eval_shape(forward, params, example)
        act = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(shapes))
    except Exception:  # noqa: BLE001 an estimate: a network that cannot say counts its input
        act = example.size * 4
    return int(param_bytes * (2 + moments) + 2 * act * exp.config.train.batch_size)


def memory_budget() -> int:
    """Bytes the lanes of a group may take: half of the first device's memory where it says
    (GPU, TPU), else a quarter of the host's RAM (CPU)."""
    stats = jax.devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"]) // 2
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


def lanes_that_fit(exp: Experiment) -> int:
    """How many lanes of `exp`'s group one step holds: `memory_budget` / `lane_bytes`, at
    least 1, and a multiple of the mesh's lane axis when more than it."""
    each = lane_bytes(exp)
    fit = max(1, memory_budget() // max(1, each))
    devices = exp.mesh.size
    if fit > devices:  # whole shares of the lane axis (`placement.lane_mesh`)
        fit -= fit % devices
    logging.info("lanes: up to %d a group (%d bytes a lane, estimated)", fit, each)
    return fit
