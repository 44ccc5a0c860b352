"""Highlight regions of photos (paper section IV), run and drawn for a finished run.

* `highlight_photos`: a user's photos through net_I and net_{I-k} of a run's fold: one PNG
  per photo (the photo, both conv1 maps of channel J, the difference over the photo: the
  paper's Fig. 4) and one JSON-ready line per path (`python -m rsrl_jax.highlight`);
  `summarize` and `format_summary` say how often one channel J was chosen and how many
  maps were negligible.
* `write_highlight_panels`: the end of a run: `report/highlights_fold{F}.png`, a few test
  photos per true score with their highlight over them (the paper's Fig. 10).

The two rounds come from `run.round_pairs.pair_rounds`, the maths from `highlight_maps`, the
photos through the one evaluation view (`data.preprocess`: a user's file as the run decoded
its photos, a stored photo centre-cropped to `data.image_size`). The drawing module
(`highlight_draw`) is imported only when something is drawn, so importing this module (as
the training engine does) loads no matplotlib.
"""

import os
from collections.abc import Sequence

import numpy as np
from absl import logging

from rsrl_jax import workdir_files
from rsrl_jax.analysis.highlight_maps import (
    channel_share,
    conv1_geometry,
    format_channel_share,
    make_highlight_fn,
    negligible_reason,
    run_highlights,
    sizes_of,
)
from rsrl_jax.data import preprocess, user_photos
from rsrl_jax.run import checkpoints, completeness
from rsrl_jax.run.round_pairs import DEFAULT_K, pair_rounds, pair_used


def _load_pair(workdir: str, fold: int, rounds: tuple[int, int]):
    """(config, model, params of net_I, params of net_{I-k}, class scores) of `rounds`."""
    config, model, params_i, scores = checkpoints.load_network(workdir, fold, rounds[0])
    params_prev = checkpoints.load_network(workdir, fold, rounds[1])[2]
    return config, model, params_i, params_prev, scores


def highlight_photos(
    workdir: str,
    paths: Sequence,
    out_dir: str,
    fold: int = 0,
    round_: int | None = None,
    k: int = 1,
    batch_size: int = 16,
) -> list[dict]:
    """Draws `out_dir/<photo name>.png` for each photo; returns one line per path, in order.

    `paths`: `user_photos.Found` entries (from `user_photos.expand_paths`) or plain file
    paths. A drawn photo's line has path, png, round_I, round_I_minus_k, J, min_corr, corr
    (every channel's), net_I's predicted score, and the map's absolute size
    (`highlight_maps.difference_size`): max_abs_difference (conv1 units), activation_scale
    (max |conv1| of both nets), relative_difference (their ratio), negligible (bool) and
    negligible_reason (None unless negligible). One that cannot be read has
    {"path", "error"}, a file that is no photo {"path", "skipped"} (`user_photos.read_photo`).
    The rounds are `pair_rounds(workdir, fold, round_, k)`; errors.ConfigError or DataError
    (before anything is drawn) when they cannot be used.
    """
    rounds = pair_rounds(workdir, fold, round_, k)
    config, model, params_i, params_prev, scores = _load_pair(workdir, fold, rounds)
    completeness.warn_if_partial(workdir, pair_used(fold, rounds, round_ is None))
    os.makedirs(out_dir, exist_ok=True)
    options = preprocess.photo_options(config)
    preprocess.log_photo_options(workdir, options)
    found = [p if isinstance(p, user_photos.Found) else user_photos.Found(p) for p in paths]
    decoded, lines = [], [None] * len(found)
    for i, entry in enumerate(found):
        photo, lines[i] = user_photos.read_photo(entry, options)
        if photo is not None:
            decoded.append((i, photo))
    if decoded:
        from rsrl_jax.analysis.highlight_draw import draw_highlight  # matplotlib: only to draw

        images = np.stack([photo for _, photo in decoded])
        highlight_fn = make_highlight_fn(model, preprocess.normalisation(config.model.name))
        maps = run_highlights(highlight_fn, params_i, params_prev, images, batch_size)
        sizes = sizes_of(maps)
        names = unique_png_names([f.path for f in found])
        for row, (i, photo) in enumerate(decoded):
            one = {key: value[row] for key, value in maps.items()}
            size = {key: value[row].item() for key, value in sizes.items()}
            J, score = int(one["J"]), scores[int(np.argmax(one["logits"]))]
            png = os.path.join(out_dir, names[i])
            caption = f"{os.path.basename(found[i].path)}: net_{rounds[0]} scores {score}"
            draw_highlight(png, photo, one, rounds, size, caption, conv1_geometry(model))
            lines[i] = {
                "path": found[i].path,
                "png": png,
                "round_I": rounds[0],
                "round_I_minus_k": rounds[1],
                "J": J,
                "min_corr": float(one["corr"][J]),
                "corr": [round(float(c), 6) for c in one["corr"]],
                "score": score,
                "max_abs_difference": size["max_abs_difference"],
                "activation_scale": size["activation_scale"],
                "relative_difference": size["relative_difference"],
                "negligible": size["negligible"],
                "negligible_reason": negligible_reason(
                    size["max_abs_difference"], size["relative_difference"], size["min_corr"]
                ),
            }
    logging.info("%d of %d files drawn into %s", len(decoded), len(found), out_dir)
    return lines


def write_highlight_panels(
    workdir: str,
    images: np.ndarray,
    labels: np.ndarray,
    test_indices: Sequence[np.ndarray],
    image_size: int,
    batch_size: int,
    num_rounds: int,
    per_class: int = 3,
    k: int = DEFAULT_K,
) -> list[str]:
    """Writes workdir/report/highlights_fold{F}.png for each fold of a finished run.

    `images` uint8 [N, H, W, 3] and `labels` [N] (class indices) are the run's data set,
    photos at their stored size; `test_indices[F]` indexes fold F's test photos in them.
    Each panel shows the first `per_class` test photos of each true score, centre-cropped
    to `image_size` (as evaluated), with net_I vs net_{I-k} of the round the fold chose;
    `batch_size` photos go through the maps at a time. Skipped (logged, nothing written)
    when the run has no round k + 1 (`num_rounds` <= k); returns the paths written.
    """
    if num_rounds <= k:
        logging.info("highlight panels skipped: %d round(s), no net_(I-%d)", num_rounds, k)
        return []
    from rsrl_jax.analysis.highlight_draw import draw_panel  # matplotlib: only to draw

    files = workdir_files.WorkdirFiles(workdir)
    os.makedirs(files.report_dir, exist_ok=True)
    written = []
    for fold, test in enumerate(test_indices):
        rounds = pair_rounds(workdir, fold, None, k)
        config, model, params_i, params_prev, scores = _load_pair(workdir, fold, rounds)
        picks = [test[labels[test] == c][:per_class] for c in range(len(scores))]
        chosen = np.concatenate(picks)
        if len(chosen) == 0:
            logging.info("fold %d: no test photo, no highlight panel", fold)
            continue
        photos = preprocess.center_crops(images[chosen], image_size)
        highlight_fn = make_highlight_fn(model, preprocess.normalisation(config.model.name))
        maps = run_highlights(highlight_fn, params_i, params_prev, photos, batch_size)
        sizes = sizes_of(maps)
        rows, start = [], 0
        for c, pick in enumerate(picks):
            if len(pick):
                part = slice(start, start + len(pick))
                part_sizes = {key: value[part] for key, value in sizes.items()}
                rows.append((scores[c], photos[part], maps["diff"][part], part_sizes))
                start += len(pick)
        path = files.highlights(fold)
        draw_panel(
            path,
            rows,
            f"fold {fold}: highlight regions diff_{rounds[0]},{rounds[1]} of test photos "
            "by true score (photo | conv1 difference over it)",
            per_class,
            conv1_geometry(model),
        )
        logging.info(
            "fold %d: highlight panel of rounds %d vs %d in %s; %s; %d of %d maps negligible",
            fold,
            *rounds,
            path,
            format_channel_share(channel_share(maps["J"])),
            int(sizes["negligible"].sum()),
            len(chosen),
        )
        written.append(path)
    return written


def summarize(lines: list[dict]) -> dict:
    """What `highlight_photos`' lines say together: {files, drawn, negligible, channel_J,
    relative_difference: [min, max] or None}; channel_J is `highlight_maps.channel_share`."""
    drawn = [line for line in lines if "png" in line]
    relative = [line["relative_difference"] for line in drawn]
    return {
        "files": len(lines),
        "drawn": len(drawn),
        "negligible": sum(bool(line["negligible"]) for line in drawn),
        "channel_J": channel_share([line["J"] for line in drawn]),
        "relative_difference": [min(relative), max(relative)] if relative else None,
    }


def format_summary(summary: dict) -> str:
    """`summarize` as one line, e.g. 'highlight: 40 of 40 files drawn; channel J = 17 for 40
    of 40 photos (100 %), 1 distinct J; max |diff| 1.1e-06 to 3.0e-06 of the activation
    scale; 40 of 40 maps negligible (...)'."""
    drawn = summary["drawn"]
    parts = [f"highlight: {drawn} of {summary['files']} files drawn"]
    if drawn:
        lo, hi = summary["relative_difference"]
        parts.append(format_channel_share(summary["channel_J"]))
        parts.append(f"max |diff| {lo:.1e} to {hi:.1e} of the activation scale")
        text = f"{summary['negligible']} of {drawn} maps negligible"
        if summary["negligible"]:
            text += " (the networks barely differ there: noise, not regions)"
        parts.append(text)
    return "; ".join(parts)


def unique_png_names(paths: list[str]) -> list[str]:
    """One PNG name per photo: its base name, with a counter when two photos share one."""
    used, names = set(), []
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0] or "photo"
        name, n = f"{stem}.png", 1
        while name in used:
            n += 1
            name = f"{stem}_{n}.png"
        used.add(name)
        names.append(name)
    return names
