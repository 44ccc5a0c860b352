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
    """The groups of lanes ((run, fold)) to train, each one compiled program, of at most
    `lanes` (None or 0: `lanes_that_fit`). Lanes of one seed and fold on the same labels sit
    side by side, so that those that train alike (`rounds.round_signature`) share a group;
    on one CPU device the groups are of sizes as equal as the count allows (`even_cuts`),
    elsewhere full groups and the rest."""
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
        exp = prepared[members[0][0]].exp
        units = [order(lane)[:3] for lane in members]  # seed and fold on the same labels
        unit = max(units.count(u) for u in set(units))  # lanes that may train alike
        size = lanes or lanes_that_fit(exp, least=unit)
        if jax.devices()[0].platform == "cpu" and exp.mesh.size == 1:
            groups += [members[a:b] for a, b in even_cuts(units, size)]
        else:  # groups of whole shares of the lane axis (`placement.lane_mesh`)
            groups += [members[i : i + size] for i in range(0, len(members), size)]
    return groups


def even_cuts(units: list, size: int) -> list[tuple[int, int]]:
    """[start, end) of groups of at most `size` of the lanes whose units (lanes that may
    train alike, side by side) are `units`: the fewest groups of sizes as equal as the count
    allows (150 at 40: 4 groups of 37 or 38, not 40, 40, 40, 30), cut where one unit ends
    and the next begins, so that no unit is split; one group more where the units' borders
    need it, and equal cuts through the units where their borders cannot hold `size`."""
    total = len(units)
    borders = [i for i in range(1, total) if units[i] != units[i - 1]] + [total]
    fewest = -(-total // size)
    for n in range(fewest, min(total, 2 * fewest) + 1):
        cuts = [0]
        for i in range(1, n + 1):  # the border nearest an equal share, within `size`
            target = round(i * total / n)
            fits = [b for b in borders if cuts[-1] < b <= cuts[-1] + size]
            if not fits:
                break
            cuts.append(min(fits, key=lambda b, t=target: (abs(b - t), b)))
            if cuts[-1] == total:
                return list(zip(cuts, cuts[1:], strict=False))
    even = [round(i * total / fewest) for i in range(fewest + 1)]
    return list(zip(even, even[1:], strict=False))


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
    """Memory a lane of `exp`'s group takes in a step (an estimate: `network_lane_bytes`)."""
    return network_lane_bytes(exp.config, exp.model, exp.view)


def network_lane_bytes(config: ml_collections.ConfigDict, model, view) -> int:
    """Memory a lane of `model` on the input `view` takes in a step (an estimate): its
    parameters, their gradients and the optimizer's moments (Adam 2, SGD 1), and the
    activations of its batch (the network's layer outputs for one input, times the batch,
    kept for the backward pass and their gradients: x 2)."""
    params = train.abstract_params(model, view, None)
    param_bytes = sum(p.size * p.dtype.itemsize for p in jax.tree.leaves(params))
    moments = 2 if config.train.optimizer == "adam" else 1
    example = inputs.as_input(view).example()

    def forward(params, x):
        _, state = model.apply(
            train.variables(params), x, capture_intermediates=True, mutable=["intermediates"]
        )
        return state

    try:
        shapes = jax.eval_shape(forward, params, example)
        act = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(shapes))
    except Exception:  # noqa: BLE001 an estimate: a network that cannot say counts its input
        act = example.size * 4
    return int(param_bytes * (2 + moments) + 2 * act * config.train.batch_size)


def memory_budget() -> int:
    """Bytes the lanes of a group may take: half of the first device's memory where it says
    (GPU, TPU), else a quarter of the host's RAM (CPU)."""
    stats = jax.devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"]) // 2
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


# The CPU's last-level cache where the OS does not say (a server core's L3 share).
FALLBACK_CACHE = 32 * 2**20
# On a CPU a group's working set stays within this many last-level caches: a lane-step costs
# more beyond (tools/lane_size_curve.py; docs/speed.md, "A lane costs more in a large group").
CACHE_MULTIPLE = 1
CPU_CACHE_DIR = "/sys/devices/system/cpu/cpu0/cache"


def last_level_cache(cache_dir: str = CPU_CACHE_DIR) -> int:
    """Bytes of the largest cache CPU 0 reaches: the highest level's `size` under
    `cache_dir` (Linux's sysfs; it says the cache one CPU sees, where glibc's
    `SC_LEVEL3_CACHE_SIZE` may say another figure on a virtual machine), else
    `os.sysconf('SC_LEVEL3_CACHE_SIZE')` where positive, else `FALLBACK_CACHE`."""
    caches = []
    try:
        for entry in os.listdir(cache_dir):
            folder = os.path.join(cache_dir, entry)
            try:
                with open(os.path.join(folder, "level")) as f:
                    level = int(f.read())
                with open(os.path.join(folder, "size")) as f:
                    caches.append((level, _bytes(f.read().strip())))
            except (OSError, ValueError):
                continue
    except OSError:
        pass
    if caches:
        return max(caches)[1]
    try:
        size = os.sysconf("SC_LEVEL3_CACHE_SIZE")
    except (ValueError, OSError):
        size = 0
    return size if size and size > 0 else FALLBACK_CACHE


def _bytes(text: str) -> int:
    """sysfs's cache size ('32768K', '1M', '512') in bytes; ValueError otherwise."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    if text[-1:].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def cpu_lane_cap(each: int, cache: int, least: int = 1) -> int:
    """The most lanes of `each` bytes a group on a CPU takes: those whose working set fits
    `CACHE_MULTIPLE` x `cache` bytes, and never fewer than `least` (one run's folds)."""
    return max(least, CACHE_MULTIPLE * cache // max(1, each), 1)


def lanes_that_fit(exp: Experiment, least: int = 1) -> int:
    """How many lanes of `exp`'s group one step holds: `memory_budget` / `lane_bytes`, at
    least 1, and a multiple of the mesh's lane axis when more than it. On a CPU, also no more
    than `cpu_lane_cap` of the last-level cache (a lane-step costs more in a larger group),
    but never fewer than one run's folds or `least` (lanes that may train alike: a seed's
    and fold's methods) where memory holds them."""
    each = lane_bytes(exp)
    fit = max(1, memory_budget() // max(1, each))
    if jax.devices()[0].platform == "cpu":
        folds = exp.config.protocol.folds
        if exp.config.protocol.max_folds:
            folds = min(folds, exp.config.protocol.max_folds)
        floor = min(fit, max(folds, least))
        fit = min(fit, cpu_lane_cap(each, last_level_cache(), least=floor))
    devices = exp.mesh.size
    if fit > devices:  # whole shares of the lane axis (`placement.lane_mesh`)
        fit -= fit % devices
    logging.info("lanes: up to %d a group (%d bytes a lane, estimated)", fit, each)
    return fit
