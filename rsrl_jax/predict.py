"""Scores photos with a trained round's network: one JSON line per photo.

  python -m rsrl_jax.predict --workdir=DIR [--fold=0] [--round=I] PHOTO_OR_FOLDER...

Each line: path, the predicted score, the probability of every score (softmax of the
logits, the classification output) and the expected score under those probabilities. The
round defaults to the one the run chose on validation. A photo that cannot be read gets a
line with `error` and the others go on; the exit status is 1 only when no photo could be
scored.
"""

import json
import os
import sys

import jax
import numpy as np
from absl import app, flags

from rsrl_jax import checkpoints, cli, train
from rsrl_jax.data import photos
from rsrl_jax.highlight import network_photo

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif")


def expand_paths(args: list[str]) -> list[str]:
    """Photos named on the command line; a folder stands for its photos (sorted, not nested)."""
    paths = []
    for arg in args:
        if os.path.isdir(arg):
            names = sorted(n for n in os.listdir(arg) if n.lower().endswith(PHOTO_EXTENSIONS))
            paths += [os.path.join(arg, n) for n in names]
        else:
            paths.append(arg)
    return paths


def prediction(path: str, logits: np.ndarray, class_scores) -> dict:
    probs = np.asarray(jax.nn.softmax(logits))
    scores = np.asarray(class_scores, np.float64)
    return {
        "path": path,
        "score": int(class_scores[int(np.argmax(logits))]),
        "probabilities": {str(s): float(p) for s, p in zip(class_scores, probs, strict=True)},
        "expected_score": float(np.dot(probs, scores)),
    }


def predict(
    workdir: str,
    paths: list[str],
    fold: int = 0,
    round_: int | None = None,
    batch_size: int = 32,
    out=sys.stdout,
) -> int:
    """Writes one JSON line per photo to `out`; returns how many photos were scored."""
    round_ = checkpoints.chosen_round(workdir, fold) if round_ is None else round_
    config, model, params, class_scores = checkpoints.load_network(workdir, fold, round_)
    eval_step = train.make_eval_step(model, config.data.image_size)
    placer = train.BatchPlacer(train.make_mesh(jax.devices()[:1]))
    scored = 0
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        images, errors = {}, {}
        for path in chunk:
            try:
                images[path] = network_photo(path, config)
            except photos.BadPhoto as e:
                errors[path] = str(e)
        logits = {}
        if images:
            ok = list(images)
            batch = np.stack([images[p] for p in ok])
            out_logits = train.predict_logits(
                eval_step, params, batch, np.arange(len(ok)), batch_size, placer
            )
            logits = dict(zip(ok, out_logits, strict=True))
        for path in chunk:
            if path in logits:
                line = prediction(path, logits[path], class_scores)
                line.update(fold=fold, round=round_)
                scored += 1
            else:
                line = {"path": path, "error": errors[path]}
            out.write(json.dumps(line) + "\n")
        out.flush()
    return scored


def main(argv):
    cli.quiet_libraries()
    paths = expand_paths(argv[1:])
    if not paths:
        raise app.UsageError("name at least one photo or folder of photos")
    f = flags.FLAGS
    scored = predict(f.workdir, paths, f.fold, f.round, f.batch_size)
    return 0 if scored else 1


if __name__ == "__main__":
    # Flags are defined only when run as a program, so importing this module defines none.
    flags.DEFINE_string("workdir", None, "Workdir of a finished run.")
    flags.DEFINE_integer("fold", 0, "Which fold's networks to use.")
    flags.DEFINE_integer("round", None, "Round to use; default the round chosen on validation.")
    flags.DEFINE_integer("batch_size", 32, "Photos per forward pass.")
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
