"""Scores photos with a trained round's network: one JSON line per photo.

  python -m rsrl_jax.predict --workdir=DIR [--fold=0] [--round=I] [--norecursive] PHOTO_OR_FOLDER...

Each line: path, the predicted score, the probability of every score (softmax of the
logits, the classification output) and the expected score under those probabilities. The
round defaults to the one the run chose on validation. A folder stands for every file under
it (`rsrl_jax.data.user_photos`); a photo that cannot be read gets a line with `error`, a file that
is not a photo one with `skipped`, and the others go on; the exit status is 1 only when no
photo could be scored. Photos are read with the run's own data options (stored size, crop,
pixel limit), which the log names.
"""

import json
import sys

import jax
import numpy as np

from rsrl_jax.analysis import aesthetic
from rsrl_jax.data import preprocess, user_photos
from rsrl_jax.engine import placement, train
from rsrl_jax.run import checkpoints


def prediction(path: str, logits: np.ndarray, class_scores) -> dict:
    """One photo's line from its `logits` [C]: the argmax score, the softmax probabilities and
    the expected score (`aesthetic.expected_scores`, as the run's metrics measure it)."""
    probs = aesthetic.probabilities(logits)
    return {
        "path": path,
        "score": int(class_scores[int(np.argmax(logits))]),
        "probabilities": {str(s): float(p) for s, p in zip(class_scores, probs, strict=True)},
        "expected_score": float(aesthetic.expected_scores(logits[None], class_scores)[0]),
    }


def predict(
    workdir: str,
    paths: list,
    fold: int = 0,
    round_: int | None = None,
    batch_size: int = 32,
    out=sys.stdout,
) -> int:
    """Writes one JSON line per path to `out`; returns how many photos were scored.

    `paths`: `user_photos.Found` entries (from `user_photos.expand_paths`) or plain file paths.
    """
    round_ = checkpoints.chosen_round(workdir, fold) if round_ is None else round_
    config, model, params, class_scores = checkpoints.load_network(workdir, fold, round_)
    options = preprocess.photo_options(config)
    preprocess.log_photo_options(workdir, options)
    eval_step = train.make_eval_step(model, config.data.image_size)
    placer = placement.BatchPlacer(placement.make_mesh(jax.devices()[:1]))
    found = [p if isinstance(p, user_photos.Found) else user_photos.Found(p) for p in paths]
    scored = 0
    for start in range(0, len(found), batch_size):
        chunk = found[start : start + batch_size]
        read = [user_photos.read_photo(f, options) for f in chunk]
        ok = [i for i, (photo, _) in enumerate(read) if photo is not None]
        logits = {}
        if ok:
            batch = np.stack([read[i][0] for i in ok])
            out_logits = placement.predict_logits(
                eval_step, params, batch, np.arange(len(ok)), batch_size, placer
            )
            logits = dict(zip(ok, out_logits, strict=True))
        for i, (entry, (_, why_not)) in enumerate(zip(chunk, read, strict=True)):
            if i in logits:
                line = prediction(entry.path, logits[i], class_scores)
                line.update(fold=fold, round=round_)
                scored += 1
            else:
                line = why_not
            out.write(json.dumps(line) + "\n")
        out.flush()
    return scored
