"""A round's model contract: what it takes to use the round's network without its run.

Every round checkpoint's record carries one (`meta["contract"]`, written by
`engine.evaluation.finish_round`), and `run.checkpoints.load_network` rebuilds the network
and reads photos from it alone, so `predict` and `highlight` (and any command that applies
a round to new inputs) need neither the run's config nor its data: a workdir copied to
another machine predicts the same. Fields:

* `class_scores`: the aesthetic score of each output, in output order;
* `model`: the run's `config.model` (architecture fields: widths, dropout, compute dtype,
  the pretrained path), what `models.network.make_model` builds the network from;
* `data_name`, `image_size`, `stored_size`, `max_pixels`: the input: photos decoded to
  upright `stored_size` squares (refused above `max_pixels` pixels), centre-cropped to
  `image_size`; `mean`, `std`: the per-channel normalisation of [0, 1] pixels;
* `pretrained`: the weights round 1 started from, `{"source", "file", "sha256"}` (the
  SHA-256 of the file, `models.pretrained`), or None from scratch.

To extend it (e.g. an embedding model's input), add a field with a default and fill it in
`of`; a record written without the field reads with the default. A record of a newer
version with fields this one does not know still reads; a `model` field this version does
not know is refused (`config`), since the network would be another one.
"""

import dataclasses
import os

import ml_collections

from rsrl_jax import errors
from rsrl_jax.config import base_config
from rsrl_jax.data.preprocess import PhotoOptions, normalisation, photo_options
from rsrl_jax.models import pretrained as pretrained_weights
from rsrl_jax.models.imagenet import IMAGENET_MEAN, IMAGENET_STD

VERSION = 1


def _floats(values) -> tuple[float, ...]:
    """float32 constants as the decimals they were written as (0.485, not 0.48500001...)."""
    return tuple(round(float(v), 7) for v in values)


@dataclasses.dataclass(frozen=True)
class Contract:
    """What a round's network needs to be used (module docstring)."""

    class_scores: tuple[int, ...]
    model: dict
    data_name: str
    image_size: int
    stored_size: int
    max_pixels: int
    mean: tuple[float, ...] = _floats(IMAGENET_MEAN)
    std: tuple[float, ...] = _floats(IMAGENET_STD)
    pretrained: dict | None = None
    version: int = VERSION

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, record: dict) -> "Contract":
        """The contract of a checkpoint record; fields of a newer version are left out."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in record.items() if k in known}
        for name in ("class_scores", "mean", "std"):
            if name in values:
                values[name] = tuple(values[name])
        if "model" in values:  # JSON has no tuples: sequences back as the config holds them
            values["model"] = {
                k: tuple(v) if isinstance(v, list) else v for k, v in values["model"].items()
            }
        return cls(**values)

    def photo_options(self) -> PhotoOptions:
        """How a photo is read for this network (`data.preprocess.network_photo`)."""
        return PhotoOptions(self.stored_size, self.image_size, self.max_pixels)

    def config(self) -> ml_collections.ConfigDict:
        """`base_config()` with this contract's model and input fields: what
        `train.make_model`, `preprocess.photo_options` and the eval step read. Raises
        errors.DataError for a model field this version does not know."""
        config = base_config()
        for key, value in self.model.items():
            if key not in config.model:
                raise errors.DataError(
                    f"the round's model contract sets model.{key}={value!r}, which this "
                    "version of rsrl_jax does not know: use the version that trained it"
                )
            config.model[key] = tuple(value) if isinstance(value, list) else value
        config.data.name = self.data_name
        config.data.image_size = self.image_size
        config.data.stored_size = self.stored_size
        config.data.max_pixels = self.max_pixels
        return config

    def check(self, where: str) -> None:
        """errors.DataError if this code would feed the network otherwise than its run did
        (another normalisation); `where` names the round."""
        mean, std = (_floats(v) for v in normalisation(self.model.get("name", "alexnet")))
        if (self.mean, self.std) != (mean, std):
            raise errors.DataError(
                f"{where} was trained on photos normalised with mean {list(self.mean)} and "
                f"std {list(self.std)}, but this version of rsrl_jax normalises with "
                f"{list(mean)} and {list(std)}: use the version that trained it"
            )

    def describe(self) -> str:
        start = "from scratch"
        if self.pretrained:
            sha = self.pretrained.get("sha256") or "unknown"
            start = f"from {self.pretrained['source']} (SHA-256 {sha[:16]})"
        return f"{len(self.class_scores)} scores {list(self.class_scores)}, started {start}"


def weights_record(path: str, hash_file: bool = True, arch: str = "alexnet") -> dict | None:
    """`Contract.pretrained` for `model.pretrained=path` of a network `arch` (model.name:
    which converted file a folder stands for): None for '' (from scratch). The
    SHA-256 is the one in the weights' record (`models.pretrained.provenance`, checked
    against the file by `config.validate`), else the file's own; None if `hash_file` is
    False or the file is not there."""
    if not path:
        return None
    file = pretrained_weights.weights_file(path, arch)
    record = pretrained_weights.provenance(path, arch)
    sha = record["sha256"] if record else None
    if sha is None and hash_file and os.path.isfile(file):
        sha = pretrained_weights.sha256(file)
    return {"source": path, "file": os.path.basename(file), "sha256": sha}


def model_contract(
    config: ml_collections.ConfigDict, class_scores, hash_weights: bool = True
) -> Contract:
    """The contract of a run with `config` whose outputs are `class_scores`.

    `hash_weights`: hash the pretrained file when its record has no SHA-256 (False for a
    finished run's config read back, whose weights may be elsewhere now).
    """
    options = photo_options(config)
    mean, std = normalisation(config.model.get("name", "alexnet"))
    return Contract(
        class_scores=tuple(int(s) for s in class_scores),
        model=config.model.to_dict(),
        data_name=str(config.data.name),
        image_size=options.image_size,
        stored_size=options.stored_size,
        max_pixels=options.max_pixels,
        mean=_floats(mean),
        std=_floats(std),
        pretrained=weights_record(
            config.model.pretrained, hash_weights, config.model.get("name", "alexnet")
        ),
    )
