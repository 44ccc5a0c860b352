"""How well the highlight regions find the subject: measured on synthetic photos' masks.

The paper shows highlight maps but never measures them. The synthetic data knows each photo's
subject (`Dataset.masks`), so for the test photos of a finished run this compares

* |diff| = |conv1_I^J - conv1_{I-k}^J| (the highlight map of `analysis.highlight_maps`),
* |diff - mean(diff)|: the same without its spatially constant part (a change of conv1's
  bias shifts the whole map and spreads energy evenly, whatever the subject),
* mean over channels of |conv1_I| (what a single network's first layer responds to), and
* chance: a map spread evenly over the photo,

by two figures per photo, averaged over the test photos:

* energy in mask: the share of the map's energy (its square, after bilinear upsampling to the
  photo's pixels with conv1's geometry, as drawn) that falls inside the subject mask; chance
  is the mask's share of the area;
* pointing game: whether the map's maximum (the centre of the winning conv1 cell) lies in the
  mask; chance is again the mask's share of the area.

  python -m rsrl_jax.highlight_eval --workdir=DIR [--fold=F] [--round=I] [--k=1]

prints the table (`format_table`) and writes the figures (`evaluate`) as JSON to
DIR/report/highlight_eval_fold{F}.json (`write_evaluation`), with how often one channel J was
chosen and how many maps were negligible (`highlight_maps.difference_size`): a map of two
networks that barely differ is noise, and so are its figures.
"""

import json
import os

import numpy as np
from absl import logging

from rsrl_jax import errors, workdir_files
from rsrl_jax.analysis.highlight_maps import (
    ALEXNET_CONV1,
    channel_share,
    conv1_cell_centre,
    conv1_geometry,
    conv1_to_photo,
    format_channel_share,
    make_highlight_fn,
    run_highlights,
    sizes_of,
)
from rsrl_jax.data import datasets, identity, splits
from rsrl_jax.data.preprocess import center_crops, normalisation
from rsrl_jax.run import checkpoints, completeness
from rsrl_jax.run.round_pairs import pair_rounds, pair_used

MAPS = {
    "diff": "|diff| of net_I vs net_(I-k), channel J",
    "diff_centred": "|diff - its spatial mean| (no offset)",
    "activation": "mean |conv1_I| over channels",
}


def mask_scores(saliency: np.ndarray, masks: np.ndarray, geometry=ALEXNET_CONV1) -> dict:
    """Per photo: energy share inside the mask and pointing-game hit of maps [N,h,w] >= 0
    (conv1 maps of a network of `geometry`, `highlight_maps.conv1_geometry`).

    `masks` are bool [N,S,S] at the photo's size. A map that is zero everywhere points nowhere
    in particular: its energy counts as spread evenly (share = mask area).
    """
    size = masks.shape[-1]
    energy = conv1_to_photo(saliency, size, geometry) ** 2
    total = energy.sum(axis=(1, 2))
    area = masks.mean(axis=(1, 2))
    inside = (energy * masks).sum(axis=(1, 2))
    share = np.where(total > 0, inside / np.where(total > 0, total, 1.0), area)
    flat = saliency.reshape(len(saliency), -1).argmax(axis=1)
    rows, cols = np.unravel_index(flat, saliency.shape[1:])
    y, x = conv1_cell_centre(rows, geometry), conv1_cell_centre(cols, geometry)
    hit = masks[np.arange(len(masks)), y, x]
    return {"energy_share": share, "pointing_hit": hit.astype(np.float64)}


def evaluate(workdir: str, fold: int = 0, round_: int | None = None, k: int = 1) -> dict:
    """The table's figures for the test photos of `fold` of the finished run in `workdir`."""
    rounds = pair_rounds(workdir, fold, round_, k)
    _, model, params_i, _ = checkpoints.load_network(workdir, fold, rounds[0])
    params_prev = checkpoints.load_network(workdir, fold, rounds[1])[2]
    completeness.warn_if_partial(workdir, pair_used(fold, rounds, round_ is None))
    config = checkpoints.run_config(workdir)  # the run's data, splits and batch size
    logging.info("regenerating the run's data set (%s)", config.data.name)
    data = datasets.load(config)
    if data.masks is None:
        raise errors.DataError(
            f"config.data.name={config.data.name!r}: the data set has no subject masks; "
            "the highlight evaluation needs synthetic data"
        )
    fold_splits = identity.recorded_splits(workdir, data)  # the run's own test photos
    if fold_splits is None:  # a run of an older version: drawn from the seed as it did
        fold_splits = splits.protocol_splits(
            data.labels, config.protocol, config.seed, data.official_test
        )
    if not 0 <= fold < len(fold_splits):
        raise errors.DataError(f"fold={fold}: the run has folds 0..{len(fold_splits) - 1}")
    test = fold_splits[fold].test
    size = config.data.image_size
    images = center_crops(data.images[test], size)  # the evaluation view, masks alike
    masks = center_crops(data.masks[test], size)
    maps = run_highlights(
        make_highlight_fn(model, normalisation(config.model.name)),
        params_i,
        params_prev,
        images,
        config.train.eval_batch_size,
    )
    diff, sizes = maps["diff"], sizes_of(maps)
    geometry = conv1_geometry(model)
    scores = {
        "diff": mask_scores(np.abs(diff), masks, geometry),
        "diff_centred": mask_scores(
            np.abs(diff - diff.mean(axis=(1, 2), keepdims=True)), masks, geometry
        ),
        "activation": mask_scores(maps["activation"], masks, geometry),
    }
    area = masks.mean(axis=(1, 2))
    summary = {
        name: {
            "energy_share": float(s["energy_share"].mean()),
            "energy_share_std": float(s["energy_share"].std()),
            "pointing_hit_rate": float(s["pointing_hit"].mean()),
        }
        for name, s in scores.items()
    }
    summary["chance"] = {
        "energy_share": float(area.mean()),
        "energy_share_std": float(area.std()),
        "pointing_hit_rate": float(area.mean()),
    }
    return {
        "workdir": workdir,
        "fold": fold,
        "round_I": rounds[0],
        "round_I_minus_k": rounds[1],
        "num_photos": int(len(test)),
        "image_size": size,
        "conv1_grid": int(maps["diff"].shape[-1]),
        "maps": summary,
        "channel_J": channel_share(maps["J"]),
        "negligible_maps": int(sizes["negligible"].sum()),
        "relative_difference_median": float(np.median(sizes["relative_difference"])),
        "diff_beats_activation": float(
            np.mean(scores["diff"]["energy_share"] > scores["activation"]["energy_share"])
        ),
    }


def write_evaluation(result: dict, out: str | None = None) -> str:
    """Writes `evaluate`'s figures to <workdir>/report/highlight_eval_fold<fold>.json (the
    result's own workdir and fold), or into `out` (a read-only workdir is only read); returns
    the path."""
    files = workdir_files.WorkdirFiles(result["workdir"])
    path = files.highlight_eval(result["fold"], out)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    return path


def format_table(result: dict) -> str:
    """The figures of `evaluate` as a plain-text table."""
    names = dict(MAPS, chance="chance (mask share of the area)")
    lines = [
        f"highlight vs subject mask: {result['workdir']} fold {result['fold']}, "
        f"net_{result['round_I']} vs net_{result['round_I_minus_k']}, "
        f"{result['num_photos']} test photos at {result['image_size']}px "
        f"(conv1 {result['conv1_grid']}x{result['conv1_grid']})",
        f"{'map':<42} {'energy in mask':>16} {'pointing hit':>13}",
    ]
    for key, label in names.items():
        m = result["maps"][key]
        share = f"{m['energy_share']:.3f} ± {m['energy_share_std']:.3f}"
        lines.append(f"{label:<42} {share:>16} {m['pointing_hit_rate']:>13.3f}")
    lines.append(
        f"|diff| puts more energy in the mask than mean |conv1_I| on "
        f"{result['diff_beats_activation']:.1%} of the photos"
    )
    negligible = (
        f"{result['negligible_maps']} of {result['num_photos']} maps negligible"
        f" (median max |diff| {result['relative_difference_median']:.1e} of the activation scale)"
    )
    if result["negligible_maps"]:
        negligible += ": the networks barely differ there, those maps are noise"
    lines.append(f"{format_channel_share(result['channel_J'])}; {negligible}")
    return "\n".join(lines)
