"""The Python API: `import rsrl_jax` (its names import this module on first use).

    model = rsrl_jax.load("runs/demo")           # the round chosen on validation, loaded once
    result = model.predict("photo.jpg")           # or a PIL image, a uint8 array, a list
    result.score, result.probabilities, result.expected_score

    config = rsrl_jax.get_config("demo", {"rsrl.rounds": 2})
    rsrl_jax.train(config, "runs/mine")

A loaded model keeps its parameters and compiled step: calls after the first neither read the
workdir nor compile again (one compile per padded batch size, `engine.predictor`), and nothing
is written there. Mistakes a user can fix raise `rsrl_jax.errors.UserError` (ConfigError,
DataError) with one line naming the culprit.
"""

import os

import ml_collections
import numpy as np
from absl import logging

from rsrl_jax import configs, errors
from rsrl_jax import overrides as override_lib
from rsrl_jax.analysis.highlight_arrays import Highlights, highlight_arrays
from rsrl_jax.analysis.highlight_maps import make_highlight_fn
from rsrl_jax.data import embeddings, user_photos
from rsrl_jax.engine.predictor import Prediction, Predictor
from rsrl_jax.run import checkpoints, completeness
from rsrl_jax.run.round_pairs import DEFAULT_K, pair_rounds

__all__ = ["Highlights", "Model", "Prediction", "compare", "get_config", "load", "study", "train"]


class Model:
    """A finished run's round, loaded once (`load`). `workdir`, `fold`, `round` (the round
    used), `class_scores` (the score of each class) and `config` (the round's model contract)
    say what it is."""

    def __init__(self, predictor: Predictor):
        self._predictor = predictor
        self.workdir, self.fold, self.round = predictor.workdir, predictor.fold, predictor.round
        self.class_scores = tuple(predictor.class_scores)
        self.config = predictor.config
        self._pairs = {}  # k -> (rounds, params of net_I, of net_(I-k)): highlight's networks
        self._highlight_fn = None  # compiled on the first highlight

    def __repr__(self) -> str:
        return f"Model({self.workdir!r}, fold={self.fold}, round={self.round})"

    def predict(self, x) -> Prediction:
        """The `Prediction` (score [N], probabilities [N, C], expected_score [N]) of `x`.

        `x`: a photo (a path, a PIL image, a uint8 array [H, W, 3]) or several (a list of
        them, a uint8 array [N, H, W, 3]); read as the run read its photos (its stored size,
        central crop and pixel limit). A run on embeddings takes vectors: float [D] or
        [N, D], or the path of an embeddings .npz. N = 1 for a single input. DataError naming
        the input that cannot be used (a missing or corrupt file, a wrong shape or dtype).
        """
        return self._predictor.predict(self._batch(x))

    def highlight(self, x, k: int = DEFAULT_K) -> Highlights:
        """Highlight regions (paper section IV) of the photos `x` (as `predict` takes them):
        net_I against net_(I-k), I this model's round (a default round too early for net_(I-k)
        becomes 1 + k, as `python -m rsrl_jax.highlight` does). Arrays, nothing drawn or
        written: see `Highlights`. DataError for a run on embeddings (no conv1)."""
        if k not in self._pairs:
            fixed = None if self._predictor.chosen else self.round
            rounds = pair_rounds(self.workdir, self.fold, fixed, k)
            nets = [
                self._predictor.params
                if r == self.round
                else checkpoints.load_network(self.workdir, self.fold, r)[2]
                for r in rounds
            ]
            self._pairs[k] = (rounds, *nets)
        if self._highlight_fn is None:
            self._highlight_fn = make_highlight_fn(self._predictor.model)
        rounds, params_i, params_prev = self._pairs[k]
        photos = self._batch(x)
        if len(photos) == 0:
            raise errors.DataError("highlight: no photo given")
        scores, size = self._predictor.class_scores, self._predictor.batch_size
        return highlight_arrays(
            self._highlight_fn,
            self._predictor.model,
            params_i,
            params_prev,
            photos,
            rounds,
            scores,
            size,
        )

    def _batch(self, x) -> np.ndarray:
        """`x` as the network's inputs: uint8 [N, S, S, 3] photos or float32 [N, D] vectors."""
        if self._predictor.reads_features:
            return _vectors(x, self._predictor.dim)
        if isinstance(x, np.ndarray) and x.ndim == 4:
            items = list(x)
        elif isinstance(x, list | tuple):
            items = list(x)
        else:
            items = [x]
        options = self._predictor.options
        views = [user_photos.network_view(p, options, _name(p, i)) for i, p in enumerate(items)]
        if not views:
            return np.zeros((0, *self._predictor.input_shape()), np.uint8)
        return np.stack(views)


def _name(item, i: int) -> str:
    """How a message names input `i`: its path, else its place."""
    return os.fspath(item) if isinstance(item, str | os.PathLike) else f"input {i}"


def _vectors(x, dim: int) -> np.ndarray:
    """Feature vectors float32 [N, dim] from `x` (see `Model.predict`); DataError if not."""
    if isinstance(x, str | os.PathLike):
        path = os.fspath(x)
        file = os.path.join(path, embeddings.FILE) if os.path.isdir(path) else path
        table = embeddings.read(file)
        if table.problems:
            first = table.problems[0]
            raise errors.DataError(f"{file}: row {table.rows[0]}: {first.reason}")
        x = table.embeddings
    given = np.asarray(x)
    x = given[None] if given.ndim == 1 else given
    if x.ndim != 2 or x.shape[1] != dim or not np.issubdtype(x.dtype, np.number):
        raise errors.DataError(
            f"vectors of {given.dtype} {list(given.shape)}: this network reads float [{dim}] or "
            f"[N, {dim}] (the run's embeddings)"
        )
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if len(bad):
        raise errors.DataError(f"vector {bad[0]} holds NaN or infinite values")
    return x.astype(np.float32)


def load(workdir, fold: int | None = None, round: int | None = None, batch_size: int = 32):
    """The `Model` of round `round` (default: the one the run chose on validation) of fold
    `fold` (default 0) of the finished run in `workdir`, as `python -m rsrl_jax.predict`
    loads it. `batch_size`: the most inputs one compiled call takes. errors.DataError naming
    the workdir when it holds no finished run, or the fold or round cannot be used."""
    _console()
    workdir = _path(workdir, "workdir")
    fold = 0 if fold is None else _integer(fold, "fold", 0)
    round = None if round is None else _integer(round, "round", 1)
    _integer(batch_size, "batch_size", 1)
    why = completeness.no_run(workdir)
    if why:
        raise errors.NotFound(why)
    return Model(Predictor(workdir, fold, round, batch_size))


def _console() -> None:
    from rsrl_jax import console  # how the commands' lines read, for Python callers too

    console.for_python()


def _integer(value, name: str, least: int) -> int:
    """`value` as an int >= `least`; ConfigError naming `name=` (the caller's argument)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise errors.ConfigError(
            f"{name}={value!r}: give an integer >= {least}"
            + (" (or None: the default)" if name in ("fold", "round") else "")
        )
    return int(value)


def _path(value, name: str) -> str:
    if not isinstance(value, str | os.PathLike):
        raise errors.ConfigError(f"{name}={value!r}: give a folder's path (str or pathlib.Path)")
    return os.fspath(value)


def get_config(config="demo", overrides: dict | None = None) -> ml_collections.ConfigDict:
    """A config: a shipped one's name ('demo', 'xiheaa', ...: `rsrl_jax.configs.names()`), a
    config file's path, or a ConfigDict (copied), with `overrides` ({'rsrl.rounds': 2};
    values as Python values or as command-line text) set. ConfigError naming a bad name,
    field or value."""
    if overrides is not None and not isinstance(overrides, dict):
        raise errors.ConfigError(
            f"overrides={overrides!r}: give a dict of field -> value, e.g. "
            "{'rsrl.rounds': 2} (not a list of command-line strings)"
        )
    if isinstance(config, ml_collections.ConfigDict):
        config = ml_collections.ConfigDict(config.to_dict())
    elif isinstance(config, str | os.PathLike):
        config = configs.load(os.fspath(config))
    else:
        raise errors.ConfigError(
            f"config={config!r}: give a shipped config's name ({', '.join(configs.names())}), "
            "a config file's path, or a ConfigDict"
        )
    override_lib.apply_values(config, overrides or {})
    return config


def train(config, workdir, overrides: dict | None = None) -> dict:
    """Runs (or resumes) RSRL as `python -m rsrl_jax.main` does; returns the run's summary
    (summary.json). `config` as `get_config` takes it. Logs as the command does: its lines
    (progress with rate and ETA) on stderr unless the caller set up logging, and all of
    them in WORKDIR/log.txt; a finished run says so and trains nothing."""
    from rsrl_jax import console
    from rsrl_jax.engine import rsrl  # the training engine (and TFDS): only to train
    from rsrl_jax.run import resume
    from rsrl_jax.run.progress import rounds_status

    config, workdir = get_config(config, overrides), _path(workdir, "workdir")
    with console.python_run(workdir):
        if resume.finished_run(config, workdir):
            rounds = config.rsrl.rounds
            logging.info("%s: %s", workdir, rounds_status(rounds, rounds))
        return rsrl.run(config, workdir)


def compare(
    config,
    workdir,
    methods=None,
    equal_steps: bool = True,
    lanes: int | None = None,
    overrides: dict | None = None,
) -> dict:
    """`python -m rsrl_jax.compare` from Python: each method a run in `workdir/<method>`,
    the table in workdir/compare.md; returns its record (`experiments.compare.compare`).
    `methods`: None = the command's default (`experiments.compare.DEFAULT_METHODS`)."""
    from rsrl_jax import console
    from rsrl_jax.experiments import compare as compare_lib

    config, workdir = get_config(config, overrides), _path(workdir, "workdir")
    methods = list(compare_lib.DEFAULT_METHODS if methods is None else methods)
    with console.python_run(workdir):
        return compare_lib.compare(config, workdir, methods, equal_steps, lanes)


def study(
    config,
    workdir,
    methods=None,
    seeds=None,
    noise=None,
    folds: int | None = None,
    equal_steps: bool = True,
    lanes: int | None = None,
    overrides: dict | None = None,
) -> dict:
    """`python -m rsrl_jax.study` from Python: methods over seeds x rater-noise levels,
    study.md and study.json in `workdir`; returns its record (`experiments.study.study`).
    `methods`, `seeds`, `noise`: None = the command's defaults for the data."""
    from rsrl_jax import console
    from rsrl_jax.experiments import study as study_lib

    config, workdir = get_config(config, overrides), _path(workdir, "workdir")
    methods = list(study_lib.DEFAULT_METHODS if methods is None else methods)
    with console.python_run(workdir):
        return study_lib.study(config, workdir, methods, seeds, noise, equal_steps, lanes, folds)
