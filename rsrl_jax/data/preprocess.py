"""The one preprocessing: from a stored photo (or a user's file) to the network's input.

Photos are kept uint8 at their stored size (`data.stored_size`, else `data.image_size`) and
cut to `data.image_size` late: training takes a random window of each (`random_crops`),
evaluation, predict and highlight take the central one (`center_crops`); the network is fed
them normalised (`normalize`: ImageNet's mean/std, or a ViT family's own: `normalisation`).
`eval_input` is that evaluation view as the jitted steps compute it; `network_photo` is the
same view of a user's file on the host, decoded as the run decoded its photos
(`photo_options`: the data options a round's model contract records).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from PIL import Image

from rsrl_jax.data import photo_decode, vit_photos
from rsrl_jax.models.imagenet import IMAGENET_MEAN, IMAGENET_STD
from rsrl_jax.models.vit import SIZES as VIT_SIZES


def normalisation(model_name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel of [0, 1] pixels that the network `model_name` (model.name)
    is fed: a ViT's family's (`data.vit_photos`: CLIP's OpenAI values, SigLIP's 0.5), else
    ImageNet's (torchvision's AlexNet and ResNet-50)."""
    if model_name in VIT_SIZES:
        family = VIT_SIZES[model_name].family
        return vit_photos.MEAN[family], vit_photos.STD[family]
    return tuple(IMAGENET_MEAN.tolist()), tuple(IMAGENET_STD.tolist())


def normalize(images: jax.Array, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> jax.Array:
    """uint8 NHWC photos -> float32 (x / 255 - mean) / std; ImageNet's by default (as
    torchvision's models), a ViT family's where `normalisation` says."""
    x = images.astype(jnp.float32) / 255.0
    return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def random_flips(x: jax.Array, key: jax.Array) -> jax.Array:
    """Each NHWC photo mirrored left-right with probability 1/2 (training augmentation)."""
    flip = jax.random.bernoulli(key, 0.5, (x.shape[0], 1, 1, 1))
    return jnp.where(flip, x[:, :, ::-1, :], x)


def _crop_origin_range(images, size: int) -> tuple[int, int]:
    """(largest top, largest left) of a `size` window; ValueError if the photos are smaller."""
    h, w = images.shape[1:3]
    if h < size or w < size:
        raise ValueError(f"cannot crop {size}x{size} windows from {h}x{w} photos")
    return h - size, w - size


def random_crops(images: jax.Array, size: int, key: jax.Array) -> jax.Array:
    """A `size` x `size` window of each NHWC photo, at its own random offset (training)."""
    max_top, max_left = _crop_origin_range(images, size)
    if max_top == max_left == 0:
        return images
    top_key, left_key = jax.random.split(key)
    tops = jax.random.randint(top_key, images.shape[:1], 0, max_top + 1)
    lefts = jax.random.randint(left_key, images.shape[:1], 0, max_left + 1)

    def window(photo, top, left):
        return jax.lax.dynamic_slice(photo, (top, left, 0), (size, size, photo.shape[-1]))

    return jax.vmap(window)(images, tops, lefts)


def center_crops(images, size: int):
    """The central `size` x `size` window of each NHWC (or NHW) photo: the evaluation view.

    Plain slicing, so it serves numpy arrays on the host (predict, highlight, their photos
    and masks) and traced arrays in the jitted steps alike.
    """
    max_top, max_left = _crop_origin_range(images, size)
    top, left = max_top // 2, max_left // 2
    return images[:, top : top + size, left : left + size]


def eval_input(
    images: jax.Array, image_size: int | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD
) -> jax.Array:
    """What the network is fed at evaluation: the central crop (none when `image_size` is
    None: the photos are already cut), normalised by `mean`, `std`; float32 [B, S, S, 3]."""
    if image_size is not None:
        images = center_crops(images, image_size)
    return normalize(images, mean, std)


@dataclasses.dataclass(frozen=True)
class PhotoOptions:
    """How the run decoded its photos: stored square, network input, pixel limit."""

    stored_size: int
    image_size: int
    max_pixels: int

    def describe(self) -> str:
        return (
            f"data.stored_size={self.stored_size}, data.image_size={self.image_size} "
            f"(central crop), data.max_pixels={self.max_pixels}"
        )


def photo_options(config) -> PhotoOptions:
    """The data options of `config` (a run's, or a round's model contract's: `run.contract`)."""
    size = int(config.data.image_size)
    stored = int(config.data.stored_size or size)  # as data.builders.stored_size (no TFDS import)
    return PhotoOptions(
        stored_size=max(stored, size),
        image_size=size,
        max_pixels=int(config.data.max_pixels),
    )


def log_photo_options(workdir: str, options: PhotoOptions) -> None:
    logging.info(
        "photos are read as the run read them: %s (the round's model contract in %s)",
        options.describe(),
        workdir,
    )


def network_photo(path: str, config_or_options) -> np.ndarray:
    """The photo at `path` as the run's network sees it, uint8 [S, S, 3] with S =
    data.image_size; raises photos.BadPhoto. Takes the run's config or its PhotoOptions.

    Decoded whole (no reduced JPEG decode) and cut by `square_view`, as a PIL image or an
    array of the same photo is, so a path and its pixels score alike."""
    options = config_or_options
    if not isinstance(options, PhotoOptions):
        options = photo_options(config_or_options)
    return square_view(photo_decode.decode_upright(path, options.max_pixels), options)


def square_view(rgb: np.ndarray, options: PhotoOptions) -> np.ndarray:
    """Upright RGB uint8 [H, W, 3] -> the network's view uint8 [S, S, 3]: resized whole to
    the stored square (bilinear, as `photo_decode.decode_photo`), then its central crop."""
    size = options.stored_size
    stored = Image.fromarray(rgb, "RGB").resize((size, size), Image.Resampling.BILINEAR)
    return center_crops(np.asarray(stored, np.uint8)[None], options.image_size)[0]
