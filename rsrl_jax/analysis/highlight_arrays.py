"""Highlight regions (paper section IV) as arrays, for the Python API (`Model.highlight`):
the maths of `highlight_maps` over photos already cut to the network's view, nothing drawn."""

import dataclasses

import numpy as np

from rsrl_jax.analysis.highlight_maps import (
    conv1_geometry,
    conv1_to_photo,
    run_highlights,
    sizes_of,
)


@dataclasses.dataclass(frozen=True)
class Highlights:
    """Highlight regions of N photos: net_I against net_(I-k) (paper section IV, eqs. 4-5).

    rounds: (I, I - k). photos: uint8 [N, S, S, 3], each photo as the networks saw it.
    diff: float32 [N, h, w], the difference of conv1's channel J between the two networks
        (conv1 cells, conv1 units). diff_on_photo: float32 [N, S, S], `diff` upsampled to
        the photo's pixels (`highlight_maps.conv1_to_photo`): overlay it on `photos`.
    channel: int [N], J, the channel whose two maps correlate least. corr: float32 [N, C1],
        every channel's correlation. score: int [N], net_I's predicted score.
    relative_difference: float64 [N], max |diff| over the larger network's max |conv1|.
    negligible: bool [N], the networks barely differ on that photo (the map is noise).
    """

    rounds: tuple[int, int]
    photos: np.ndarray
    diff: np.ndarray
    diff_on_photo: np.ndarray
    channel: np.ndarray
    corr: np.ndarray
    score: np.ndarray
    relative_difference: np.ndarray
    negligible: np.ndarray

    def __len__(self) -> int:
        return len(self.photos)


def highlight_arrays(
    fn, model, params_i, params_prev, photos: np.ndarray, rounds, class_scores, batch_size: int
) -> Highlights:
    """`Highlights` of `photos` uint8 [N, S, S, 3] (the networks' view) through `model` with
    net_I's and net_(I-k)'s parameters; `fn` is `highlight_maps.make_highlight_fn(model)`,
    kept by the caller: batches are padded to a power of two up to `batch_size`, so it
    compiles once per padded size."""
    n = len(photos)
    if n == 0:
        raise ValueError("no photos")
    size = min(batch_size, 1 << (n - 1).bit_length())
    padded = np.concatenate([photos, np.repeat(photos[:1], (-n) % size, axis=0)])
    maps = run_highlights(fn, params_i, params_prev, padded, size)
    maps = {key: value[:n] for key, value in maps.items()}
    sizes = sizes_of(maps)
    image_size = photos.shape[1]
    return Highlights(
        rounds=tuple(int(r) for r in rounds),
        photos=photos,
        diff=np.asarray(maps["diff"], np.float32),
        diff_on_photo=conv1_to_photo(maps["diff"], image_size, conv1_geometry(model)),
        channel=np.asarray(maps["J"], np.int64),
        corr=np.asarray(maps["corr"], np.float32),
        score=np.asarray(class_scores, np.int64)[np.argmax(maps["logits"], axis=-1)],
        relative_difference=sizes["relative_difference"],
        negligible=sizes["negligible"],
    )
