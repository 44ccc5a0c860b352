"""Scores photos (or embeddings) with a trained round's network: one JSON line per photo.

  python -m rsrl_jax.predict --workdir=DIR [--fold=0] [--round=I] [--norecursive] PHOTO_OR_FOLDER...

Each line: path, the predicted score, the probability of every score (softmax of the
logits, the classification output) and the expected score under those probabilities. The
round defaults to the one the run chose on validation. A folder stands for every file under
it (`rsrl_jax.data.user_photos`); a photo that cannot be read gets a line with `error`, a file that
is not a photo one with `skipped`, and the others go on; the exit status is 1 only when no
photo could be scored. Photos are read with the run's own data options (stored size, crop,
pixel limit), which the log names.

A run on embeddings (`data.name='embeddings'`) scores embeddings files instead: each path is
an .npz of the layout `data.embeddings` reads (a folder: its embeddings.npz; 'scores' are
not needed), one line per row with its `row` and `id`; a file that cannot be used gets one
line with `error`, a row with NaN or infinite values one with its row, id and `error`.
"""

import json
import os
import sys

import jax
import numpy as np

from rsrl_jax.analysis import aesthetic
from rsrl_jax.data import embeddings, inputs, preprocess, user_photos
from rsrl_jax.engine import placement, train
from rsrl_jax.run import checkpoints, completeness


def using(fold: int, round_: int, chosen: bool) -> str:
    """What a command reads of a partial run, for its warning."""
    how = ", the best on validation among the rounds that ran" if chosen else ""
    return f"using round {round_} of fold {fold}{how}"


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
    recursive: bool = True,
) -> int:
    """Writes one JSON line per path (per row of an embeddings file) to `out`; returns how many
    photos (rows) were scored.

    `paths`: `user_photos.Found` entries (from `user_photos.expand_paths`) or paths, a folder
    standing for its files (`recursive`: and its subfolders'); for a run on embeddings, files
    of embeddings or folders of an embeddings.npz.
    """
    chosen = round_ is None
    round_ = checkpoints.chosen_round(workdir, fold) if chosen else round_
    config, model, params, class_scores = checkpoints.load_network(workdir, fold, round_)
    completeness.warn_if_partial(workdir, using(fold, round_, chosen))
    view = inputs.of_network(config, params)
    eval_step = train.make_eval_step(model, view)
    placer = placement.BatchPlacer(placement.make_mesh(jax.devices()[:1]))
    if inputs.reads_features(config):
        files = [p.path if isinstance(p, user_photos.Found) else p for p in paths]
        network = (eval_step, params, placer, class_scores, view.dim)
        scored = 0
        for file in files:
            scored += _predict_file(file, network, batch_size, out, fold=fold, round=round_)
        return scored
    options = preprocess.photo_options(config)
    preprocess.log_photo_options(workdir, options)
    found = []
    for p in paths:
        found += (
            [p] if isinstance(p, user_photos.Found) else user_photos.expand_paths([p], recursive)
        )
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


def _predict_file(path: str, network, batch_size: int, out, **extra) -> int:
    """Writes a line per row of the embeddings file `path` (a folder: its embeddings.npz),
    or one line with its `error`; returns how many rows were scored."""
    eval_step, params, placer, class_scores, dim = network
    file = os.path.join(path, embeddings.FILE) if os.path.isdir(path) else path
    try:
        table = embeddings.read(file)
    except embeddings.BadEmbeddings as e:
        out.write(json.dumps({"path": path, "error": str(e)}) + "\n")
        return 0
    if table.embeddings.shape[1] != dim:
        error = (
            f"{file}: 'embeddings' has {table.embeddings.shape[1]} values a row, but this "
            f"network reads {dim}: embed the photos with the backbone of the run's own "
            "embeddings"
        )
        out.write(json.dumps({"path": path, "error": error}) + "\n")
        return 0
    bad = {row: p for row, p in zip(table.rows, table.problems, strict=True)}
    good = np.array([i for i in range(len(table)) if i not in bad], np.int64)
    by_row = {}
    if len(good):
        logits = placement.predict_logits(
            eval_step, params, table.embeddings, good, batch_size, placer
        )
        by_row = dict(zip(good.tolist(), logits, strict=True))
    for row in range(len(table)):
        where = {"path": path, "row": row, "id": str(table.ids[row])}
        if row in bad:
            line = {**where, "error": bad[row].reason}
        else:
            line = prediction(path, by_row[row], class_scores)
            line = {**where, **line, **extra}
        out.write(json.dumps(line) + "\n")
    out.flush()
    return len(good)
