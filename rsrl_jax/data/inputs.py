"""What the network is fed, decided in one place: photos or feature vectors.

A run reads photos (`data.name` 'synthetic', 'folder' or 'ava': uint8 [N, S, S, 3] at their
stored size, cut, flipped and normalised by the one preprocessing, `data.preprocess`) or
embeddings (`data.name='embeddings'`: float32 [N, D] feature vectors, fed as they are, no
crop, flip or normalisation; `data.embeddings`; or generated ones, `synthetic_embeddings`).
`of` picks the input for a config; the train and eval steps call its `train_view` / `eval_view`, and
parameters are shaped from its `example`, so nothing else in the engine asks which kind it has.
Feature vectors have no conv1: `no_highlights` says why a run of them has no highlight regions.
"""

import dataclasses

import jax
import jax.numpy as jnp

from rsrl_jax.data.preprocess import (
    center_crops,
    eval_input,
    normalisation,
    normalize,
    random_crops,
    random_flips,
)
from rsrl_jax.models.imagenet import IMAGENET_MEAN, IMAGENET_STD

EMBEDDINGS = "embeddings"  # the data.name of feature vectors
# the data.name of generated feature vectors with a known rater (`data.synthetic_embeddings`)
SYNTHETIC_EMBEDDINGS = "synthetic_embeddings"


@dataclasses.dataclass(frozen=True)
class PhotoInput:
    """uint8 NHWC photos at their stored size; the network sees `image_size` squares
    (None: the photos are already cut), normalised by `mean`, `std` (ImageNet's, or a ViT
    family's: `preprocess.normalisation`), flipped in training if `flip`, cut at random
    offsets in training if `random_crop` (else the central window)."""

    image_size: int | None = None
    flip: bool = False
    random_crop: bool = True
    mean: tuple[float, ...] = tuple(IMAGENET_MEAN.tolist())
    std: tuple[float, ...] = tuple(IMAGENET_STD.tolist())

    def example(self) -> jax.ShapeDtypeStruct:
        """One input as the network takes it, for shaping parameters: [1, S, S, 3]."""
        if self.image_size is None:
            raise ValueError("PhotoInput(image_size=None) has no example shape")
        return jax.ShapeDtypeStruct((1, self.image_size, self.image_size, 3), jnp.float32)

    def train_view(self, images: jax.Array, crop_key: jax.Array, flip_key: jax.Array):
        """float32 [B, S, S, 3]: a crop of each photo (random or central), normalised,
        flipped at random."""
        if self.image_size is not None:
            if self.random_crop:
                images = random_crops(images, self.image_size, crop_key)
            else:
                images = center_crops(images, self.image_size)
        x = normalize(images, self.mean, self.std)
        return random_flips(x, flip_key) if self.flip else x

    def eval_view(self, images: jax.Array) -> jax.Array:
        """float32 [B, S, S, 3]: the central crop, normalised (`preprocess.eval_input`)."""
        return eval_input(images, self.image_size, self.mean, self.std)


@dataclasses.dataclass(frozen=True)
class FeatureInput:
    """float feature vectors [B, `dim`], fed as they are (cast to float32) in training and
    evaluation alike: no augmentation, no normalisation."""

    dim: int

    def example(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((1, self.dim), jnp.float32)

    def train_view(self, x: jax.Array, crop_key: jax.Array, flip_key: jax.Array):
        del crop_key, flip_key  # nothing is drawn: the features are the data
        return x.astype(jnp.float32)

    def eval_view(self, x: jax.Array) -> jax.Array:
        return x.astype(jnp.float32)


def reads_features(config) -> bool:
    """Whether a run of `config` (a ConfigDict, or a run's config.json as a dict) is fed
    feature vectors rather than photos."""
    data = config["data"] if "data" in config else {}  # a record without it: photos
    return data.get("name") in (EMBEDDINGS, SYNTHETIC_EMBEDDINGS)


def network_input(config, feature_dim: int | None = None) -> PhotoInput | FeatureInput:
    """The input of the network of `config`: photos of `data.image_size` with the run's
    augmentation (`train.flip`, `train.random_crop`) and its network's normalisation
    (`preprocess.normalisation` of `model.name`), or vectors of `feature_dim` values
    (embeddings: their D, from the data or a saved network's first layer)."""
    if reads_features(config):
        if feature_dim is None:
            raise ValueError("feature vectors need their dimension")
        return FeatureInput(int(feature_dim))
    mean, std = normalisation(config["model"].get("name", "alexnet"))
    return PhotoInput(
        int(config["data"]["image_size"]),
        flip=bool(config["train"]["flip"]),
        random_crop=bool(config["train"]["random_crop"]),
        mean=mean,
        std=std,
    )


def network_input_from_params(config, params) -> PhotoInput | FeatureInput:
    """The input of a saved network of `config`: `of`, with the vectors' D read from its
    parameters (arrays, or a checkpoint's metadata: anything with a `.shape`)."""
    if not reads_features(config):
        return network_input(config)
    from rsrl_jax.models import heads  # flax

    return network_input(config, heads.input_dim(params))


def as_input(view) -> PhotoInput | FeatureInput:
    """`view` itself, or an int S (or None) taken as photos of side S (already cut)."""
    if view is None or isinstance(view, int):
        return PhotoInput(view)
    return view


def no_highlights(config) -> str | None:
    """Why a run of `config` has no highlight regions (paper §IV), or None when it has.

    The maps compare conv1 of two rounds' networks over a photo: a network of feature
    vectors has neither.
    """
    if not reads_features(config):
        return None
    return (
        f"the network reads embeddings (data.name={config['data']['name']!r}, "
        f"model.name={config['model']['name']!r}), not photos: it has no conv1 to compare, so "
        "highlight regions have no meaning for it"
    )
