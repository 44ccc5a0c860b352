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

import numpy as np

from rsrl_jax import errors
from rsrl_jax.data import embeddings, preprocess, user_photos
from rsrl_jax.engine.predictor import Predictor, prediction_of, using

__all__ = ["predict", "prediction", "using"]


def prediction(path: str, logits: np.ndarray, class_scores) -> dict:
    """One photo's line from its `logits` [C]: the argmax score, the softmax probabilities and
    the expected score (`engine.predictor.prediction_of`, as the run's metrics measure it)."""
    one = prediction_of(logits[None], class_scores)
    return {
        "path": path,
        "score": int(one.score[0]),
        "probabilities": {
            str(s): float(p) for s, p in zip(class_scores, one.probabilities[0], strict=True)
        },
        "expected_score": float(one.expected_score[0]),
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
    standing for its files (`recursive`: and its subfolders'), or photos in memory (a PIL
    image or a uint8 array [H, W, 3], named `<image i>` by their place in `paths`); for a
    run on embeddings, files of embeddings or folders of an embeddings.npz. The network is
    loaded as `rsrl_jax.load` loads it (`engine.predictor.Predictor`).
    """
    predictor = Predictor(workdir, fold, round_, batch_size)
    if predictor.reads_features:
        files = [p.path if isinstance(p, user_photos.Found) else p for p in paths]
        extra = {"fold": fold, "round": predictor.round}
        return sum(_predict_file(os.fspath(file), predictor, out, **extra) for file in files)
    preprocess.log_photo_options(workdir, predictor.options)
    found = []
    for i, p in enumerate(paths):
        if isinstance(p, user_photos.Found):
            found.append(p)
        elif isinstance(p, str | os.PathLike):
            found += user_photos.expand_paths([os.fspath(p)], recursive)
        else:
            found.append((f"<image {i}>", p))
    scored = 0
    for start in range(0, len(found), batch_size):
        read = [_read(entry, predictor.options) for entry in found[start : start + batch_size]]
        ok = [i for i, (_, photo, _) in enumerate(read) if photo is not None]
        logits = {}
        if ok:
            out_logits = predictor.logits(np.stack([read[i][1] for i in ok]))
            logits = dict(zip(ok, out_logits, strict=True))
        for i, (name, _, why_not) in enumerate(read):
            if i in logits:
                line = prediction(name, logits[i], predictor.class_scores)
                line.update(fold=fold, round=predictor.round)
                scored += 1
            else:
                line = why_not
            out.write(json.dumps(line) + "\n")
        out.flush()
    return scored


def _read(entry, options) -> tuple[str, np.ndarray | None, dict | None]:
    """(name, the network's view of the photo or None, None or the line saying why not)."""
    if isinstance(entry, user_photos.Found):
        return entry.path, *user_photos.read_photo(entry, options)
    name, image = entry
    try:
        return name, user_photos.network_view(image, options, name), None
    except errors.DataError as e:
        return name, None, {"path": name, "error": str(e)}


def _predict_file(path: str, predictor: Predictor, out, **extra) -> int:
    """Writes a line per row of the embeddings file `path` (a folder: its embeddings.npz),
    or one line with its `error`; returns how many rows were scored."""
    class_scores, dim = predictor.class_scores, predictor.dim
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
        logits = predictor.logits(table.embeddings[good])
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
