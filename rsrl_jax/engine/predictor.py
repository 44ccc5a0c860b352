"""A finished run's network loaded once, scoring any number of batches: the one path of the
Python API (`rsrl_jax.load`) and of `python -m rsrl_jax.predict`.

`Predictor(workdir, fold, round_)` reads one round (default: the one chosen on validation,
`run.checkpoints.chosen_round`) and compiles its evaluation step once per padded batch size:
a batch of n inputs is padded to the next power of two up to `batch_size` (a photo alone
costs a batch of 1, not 32), so a few sizes ever compile. Nothing is written into the
workdir. Inputs are what the run's network read: photos cut as the run cut them
(`data.user_photos.network_view`: a path, a PIL image or a uint8 [H, W, 3] array) or, for a
run on embeddings, float vectors [D].
"""

import dataclasses

import jax
import numpy as np

from rsrl_jax import errors
from rsrl_jax.data import inputs, preprocess
from rsrl_jax.engine import placement, train
from rsrl_jax.metrics import aesthetic
from rsrl_jax.run import checkpoints, completeness


def using(fold: int, round_: int, chosen: bool) -> str:
    """What a command reads of a partial run, for its warning."""
    how = ", the best on validation among the rounds that ran" if chosen else ""
    return f"using round {round_} of fold {fold}{how}"


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Scores of N inputs (numpy arrays; row i is input i).

    score: int [N], the aesthetic score of the most probable class (the argmax logit).
    probabilities: float64 [N, C], softmax of the logits; column c is `class_scores[c]`.
    expected_score: float64 [N], the probability-weighted mean score (score units), as the
        run's metrics measure it (`metrics.aesthetic.expected_scores`).
    class_scores: int [C], the score of each class, ascending.
    """

    score: np.ndarray
    probabilities: np.ndarray
    expected_score: np.ndarray
    class_scores: np.ndarray

    def __len__(self) -> int:
        return len(self.score)


def prediction_of(logits: np.ndarray, class_scores) -> Prediction:
    """The `Prediction` of `logits` [N, C] for classes of `class_scores` [C]."""
    scores = np.asarray(class_scores, np.int64)
    logits = np.asarray(logits, np.float64).reshape(-1, len(scores))
    return Prediction(
        score=scores[np.argmax(logits, axis=-1)],
        probabilities=aesthetic.probabilities(logits),
        expected_score=aesthetic.expected_scores(logits, scores),
        class_scores=scores,
    )


def padded_size(n: int, batch_size: int) -> int:
    """The batch that n inputs are padded to: the next power of two, at most `batch_size`."""
    return min(batch_size, 1 << max(n - 1, 0).bit_length())


class Predictor:
    """Round `round_` of fold `fold` of the finished run in `workdir`, ready to score.

    Attributes: workdir, fold, round, chosen (whether the round is the default), config (the
    round's model contract's), model, params, class_scores, reads_features (a run on
    embeddings: inputs are vectors [dim]), dim (their length, or None), options (how photos
    are cut: `preprocess.PhotoOptions`, or None). errors.DataError naming the workdir when it
    holds no finished run, or the fold or round cannot be used (`checkpoints.load_network`).
    """

    def __init__(self, workdir: str, fold: int = 0, round_: int | None = None, batch_size=32):
        if batch_size < 1:
            raise errors.ConfigError(f"batch_size={batch_size}: must be >= 1")
        self.workdir, self.fold, self.batch_size = str(workdir), fold, batch_size
        self.chosen = round_ is None
        self.round = checkpoints.chosen_round(self.workdir, fold) if self.chosen else round_
        loaded = checkpoints.load_network(self.workdir, fold, self.round)
        self.config, self.model, self.params, self.class_scores = loaded
        completeness.warn_if_partial(self.workdir, using(fold, self.round, self.chosen))
        self.view = inputs.network_input_from_params(self.config, self.params)
        self.reads_features = inputs.reads_features(self.config)
        self.dim = self.view.dim if self.reads_features else None
        self.options = None if self.reads_features else preprocess.photo_options(self.config)
        self._step = train.make_eval_step(self.model, self.view)
        self._placer = placement.BatchPlacer(placement.make_mesh(jax.devices()[:1]))

    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input: (dim,) for vectors, (S, S, 3) uint8 for photos."""
        if self.reads_features:
            return (self.dim,)
        return (self.options.image_size, self.options.image_size, 3)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 [N, C] of `batch`, N network inputs of `input_shape()` (photos as
        `data.user_photos.network_view` cuts them); one compiled step per padded size."""
        batch = np.asarray(batch)
        if batch.shape[1:] != self.input_shape():
            raise errors.DataError(
                f"inputs of shape {batch.shape[1:]}: this network reads {self.input_shape()}"
            )
        if len(batch) == 0:
            return np.zeros((0, len(self.class_scores)), np.float32)
        size = padded_size(len(batch), self.batch_size)
        indices = np.arange(len(batch))
        return placement.predict_logits(self._step, self.params, batch, indices, size, self._placer)

    def predict(self, batch: np.ndarray) -> Prediction:
        """The `Prediction` of `batch` (as `logits` takes it)."""
        return prediction_of(self.logits(batch), self.class_scores)
