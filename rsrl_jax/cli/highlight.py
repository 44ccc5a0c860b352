"""Highlight regions of photos (paper section IV), drawn as the paper's Fig. 4.

  python -m rsrl_jax.highlight --workdir=DIR [--fold=F] [--round=I] [--k=1] --out=OUT \\
      [--norecursive] PHOTO_OR_FOLDER...

See `rsrl_jax.analysis.highlight` for the maps and the figure.
"""

import json
import os

import numpy as np
from absl import app, flags, logging

from rsrl_jax import cli
from rsrl_jax.analysis.highlight import (
    draw_highlight,
    make_highlight_fn,
    pair_rounds,
    run_highlights,
    unique_png_names,
)
from rsrl_jax.data import user_photos as inference
from rsrl_jax.run import checkpoints

FLAGS = flags.FLAGS


def define_pair_flags(workdir_help: str, fold_help: str) -> None:
    """--workdir, --fold, --round and --k: which two networks (`pair_rounds`) to compare."""
    flags.DEFINE_string("workdir", None, workdir_help)
    flags.DEFINE_integer("fold", 0, fold_help)
    flags.DEFINE_integer("round", None, "Round I of net_I; default: the round chosen on val.")
    flags.DEFINE_integer("k", 1, "Compare net_I with net_(I-k).")


def define_flags():
    """The CLI's flags; defined only when run as a program (rsrl.run imports this module)."""
    define_pair_flags("Workdir of a finished run.", "Fold whose networks to use.")
    flags.DEFINE_string("out", None, "Folder for the PNG files (created if missing).")
    flags.DEFINE_integer("batch_size", 16, "Photos per jitted call.")
    cli.define_recursive_flag()
    flags.mark_flags_as_required(["workdir", "out"])


def main(argv) -> int:
    paths = argv[1:]
    if not paths:
        raise app.UsageError("give at least one PHOTO or folder of photos")
    cli.quiet_libraries()
    workdir, fold = FLAGS.workdir, FLAGS.fold
    rounds = pair_rounds(workdir, fold, FLAGS.round, FLAGS.k)
    config, model, params_i, scores = checkpoints.load_network(workdir, fold, rounds[0])
    params_prev = checkpoints.load_network(workdir, fold, rounds[1])[2]
    os.makedirs(FLAGS.out, exist_ok=True)
    options = inference.photo_options(config)
    inference.log_photo_options(workdir, options)
    found = inference.expand_paths(paths, FLAGS.recursive)
    paths = [f.path for f in found]
    decoded, lines = [], [None] * len(found)
    for i, entry in enumerate(found):
        photo, lines[i] = inference.read_photo(entry, options)
        if photo is not None:
            decoded.append((i, photo))
    if decoded:
        images = np.stack([photo for _, photo in decoded])
        maps = run_highlights(
            make_highlight_fn(model), params_i, params_prev, images, FLAGS.batch_size
        )
        names = unique_png_names(paths)
        for row, (i, photo) in enumerate(decoded):
            one = {key: value[row] for key, value in maps.items()}
            J, score = int(one["J"]), scores[int(np.argmax(one["logits"]))]
            png = os.path.join(FLAGS.out, names[i])
            caption = f"{os.path.basename(paths[i])}: net_{rounds[0]} scores {score}"
            draw_highlight(png, photo, one, rounds, caption)
            lines[i] = {
                "path": paths[i],
                "png": png,
                "round_I": rounds[0],
                "round_I_minus_k": rounds[1],
                "J": J,
                "min_corr": float(one["corr"][J]),
                "corr": [round(float(c), 6) for c in one["corr"]],
                "score": score,
            }
    for line in lines:
        print(json.dumps(line), flush=True)
    logging.info("%d of %d files drawn into %s", len(decoded), len(paths), FLAGS.out)
    return 0 if decoded else 1


if __name__ == "__main__":
    define_flags()
    cli.run(main)
