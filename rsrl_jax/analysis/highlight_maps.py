"""Aesthetic highlight maps (paper section IV): where net_I and net_{I-k} disagree most.

For a photo, A = conv1 of net_I and B = conv1 of net_{I-k} (before ReLU). The channel J whose
two maps correlate least over the spatial positions is the one retraining changed most
(`min_correlation_diff`); its difference map A[..., J] - B[..., J], upsampled over the photo
with conv1's geometry (`conv1_to_photo`), is the highlight region.

Drawn scaled to its own maximum, a difference of two nearly identical networks (float
rounding) looks as saturated as a real one, so each map also carries its absolute size
(`difference_size`: max |diff| in conv1's units and against the activations' scale) and a
`negligible` verdict; `channel_share` says how often one channel J is chosen.

Maths only (jitted, no drawing): `analysis.highlight_draw` draws the maps,
`analysis.highlight` runs them on a user's photos or a finished run's test photos.
"""

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from rsrl_jax.data.preprocess import eval_input
from rsrl_jax.data.sharding import padded_batches
from rsrl_jax.models.network import variables


class Conv1Geometry(NamedTuple):
    """A network's first convolution: kernel, stride and padding in input pixels (the
    model's `CONV1`), what lines its maps up with the photo."""

    kernel: int
    stride: int
    padding: int

    @property
    def offset(self) -> int:
        """The photo pixel under cell 0's centre."""
        return (self.kernel - 1) // 2 - self.padding


ALEXNET_CONV1 = Conv1Geometry(11, 4, 2)  # AlexNet's conv1 (the paper's network)
CONV1_KERNEL, CONV1_STRIDE, CONV1_PADDING = ALEXNET_CONV1
CONV1_OFFSET = ALEXNET_CONV1.offset


def conv1_geometry(model) -> Conv1Geometry:
    """`model`'s conv1 geometry (its `CONV1`: AlexNet 11/4/2, ResNet 7/2/3, a ViT's patch
    embedding p/p/0: one cell per patch, drawn upsampled from the (S/p, S/p) grid)."""
    return Conv1Geometry(*getattr(model, "CONV1", ALEXNET_CONV1))


# A channel whose spatial std is below this fraction of its largest |value| counts as constant:
# float32 rounding alone leaves relative noise of ~1e-7, real structure is far above 1e-5.
FLAT_TOLERANCE = 1e-5
# A highlight map is negligible (noise, not a region) when every channel's two maps correlate
# above NEGLIGIBLE_CORRELATION (no channel changed its pattern: J is picked by the last digits),
# or when its max |diff| is below NEGLIGIBLE_RELATIVE of the activation scale (max |conv1| of
# both networks). Measured on the tiny test network: parameters changed by 1e-7 to 1e-6 (float32
# rounding) move conv1 by <= 1.1e-6 of that scale (corr 1.000000); in bfloat16 rounding alone
# moves it by up to 7e-3, but every corr stays above 0.9994, so the correlation rule flags it;
# two trained rounds differ by 5e-2 to 3e-1 (min corr 0.69 to 0.97). 1e-3 and 0.999 lie between.
NEGLIGIBLE_CORRELATION = 0.999
NEGLIGIBLE_RELATIVE = 1e-3


def _centred(x: jax.Array) -> jax.Array:
    """x minus its spatial mean, centred twice so a constant map becomes exactly zero."""
    x = x - jnp.mean(x, axis=(1, 2), keepdims=True)
    return x - jnp.mean(x, axis=(1, 2), keepdims=True)


@jax.jit
def min_correlation_diff(a: jax.Array, b: jax.Array):
    """(J[B], diff[B,H,W], corr[B,C]) of two batches of feature maps [B,H,W,C] (paper eq. 4-5).

    corr[:, j] is the Pearson correlation of a[..., j] and b[..., j] over the H*W positions,
    computed in float32 on maps scaled to max |value| 1 and centred (no overflow, no
    cancellation). A channel that is constant (or non-finite) in a or b carries no change: its
    corr is +1 and it is chosen only when every channel is. J = argmin corr (first on ties);
    diff = a[..., J] - b[..., J].
    """
    if a.ndim != 4 or a.shape != b.shape:
        raise ValueError(f"need two [B,H,W,C] arrays of one shape, got {a.shape} and {b.shape}")
    a, b = a.astype(jnp.float32), b.astype(jnp.float32)

    def scaled(x):
        peak = jnp.max(jnp.abs(x), axis=(1, 2), keepdims=True)
        return _centred(x / jnp.where(peak > 0, peak, 1.0))

    ac, bc = scaled(a), scaled(b)
    n = a.shape[1] * a.shape[2]
    ss_a, ss_b = jnp.sum(ac * ac, axis=(1, 2)), jnp.sum(bc * bc, axis=(1, 2))
    informative = (jnp.sqrt(ss_a / n) > FLAT_TOLERANCE) & (jnp.sqrt(ss_b / n) > FLAT_TOLERANCE)
    denom = jnp.where(informative, jnp.sqrt(ss_a) * jnp.sqrt(ss_b), 1.0)
    raw = jnp.clip(jnp.sum(ac * bc, axis=(1, 2)) / denom, -1.0, 1.0)
    corr = jnp.where(informative, raw, 1.0)
    J = jnp.argmin(jnp.where(informative, corr, 2.0), axis=-1)
    return J, channel(a, J) - channel(b, J), corr


def channel(maps: jax.Array, J: jax.Array) -> jax.Array:
    """maps[i, ..., J[i]] for each photo i of maps [B,H,W,C]."""
    return jnp.take_along_axis(maps, J[:, None, None, None], axis=-1)[..., 0]


def conv1_grid(image_size: int, geometry: Conv1Geometry = ALEXNET_CONV1) -> int:
    """Side of conv1's output for a square input of `image_size` pixels."""
    return (image_size + 2 * geometry.padding - geometry.kernel) // geometry.stride + 1


def conv1_to_photo(
    maps: np.ndarray, size: int, geometry: Conv1Geometry = ALEXNET_CONV1
) -> np.ndarray:
    """Bilinear upsampling of conv1 maps [..., h, w] to the photo's pixels [..., size, size].

    Each conv1 cell sits at the centre of its receptive field (AlexNet's: input pixel
    4i + 3; ResNet's: 2i), so the map lines up with the photo; pixels beyond the outermost
    centres take the edge values.
    """
    maps = np.asarray(maps, np.float32)
    rows = _interpolation(maps.shape[-2], size, geometry)
    cols = _interpolation(maps.shape[-1], size, geometry)
    return np.einsum("ph,...hw,qw->...pq", rows, maps, cols)


def _interpolation(grid: int, size: int, geometry: Conv1Geometry) -> np.ndarray:
    """[size, grid] bilinear weights from conv1 cells to photo pixels (see conv1_to_photo)."""
    u = np.clip((np.arange(size) - geometry.offset) / geometry.stride, 0, grid - 1)
    lo = np.minimum(np.floor(u).astype(int), max(grid - 2, 0))
    hi = np.minimum(lo + 1, grid - 1)
    frac = (u - lo).astype(np.float32)
    weights = np.zeros((size, grid), np.float32)
    np.add.at(weights, (np.arange(size), lo), 1 - frac)
    np.add.at(weights, (np.arange(size), hi), frac)
    return weights


def conv1_cell_centre(index: np.ndarray, geometry: Conv1Geometry = ALEXNET_CONV1) -> np.ndarray:
    """The photo pixel at the centre of conv1 cell `index`'s receptive field."""
    return geometry.offset + geometry.stride * np.asarray(index)


def make_highlight_fn(model, normalisation=None):
    """Returns a jitted fn(params_I, params_{I-k}, uint8 photos) -> dict of maps and logits.

    `normalisation`: (mean, std) the network is fed (`preprocess.normalisation` of its
    model.name); None = ImageNet's.

    One call per batch: conv1 of both nets, min_correlation_diff, the chosen channel's two
    maps, net_I's mean |conv1| over channels (a single-network baseline), the activation
    scale (max |conv1| of both nets over positions and channels, [B] float32; what
    `difference_size` measures a map against) and net_I's logits.
    """

    mean_std = () if normalisation is None else tuple(normalisation)

    def highlight(params_i, params_prev, images):
        x = eval_input(images, None, *mean_std)  # photos already cut to the network's size
        a = model.apply(variables(params_i), x, method="conv1_maps")
        b = model.apply(variables(params_prev), x, method="conv1_maps")
        J, diff, corr = min_correlation_diff(a, b)
        return {
            "J": J,
            "corr": corr,
            "diff": diff,
            "conv_i": channel(a, J),
            "conv_prev": channel(b, J),
            "activation": jnp.mean(jnp.abs(a), axis=-1),
            "activation_scale": jnp.maximum(_peak(a), _peak(b)),
            "logits": model.apply(variables(params_i), x, train=False),
        }

    return jax.jit(highlight)


def _peak(maps: jax.Array) -> jax.Array:
    """max |maps| per photo of [B,H,W,C], in float32 (bfloat16 maps too): [B]."""
    return jnp.max(jnp.abs(maps.astype(jnp.float32)), axis=(1, 2, 3))


def difference_size(diff, activation_scale, min_corr) -> dict:
    """How large N highlight maps really are, and whether each is negligible.

    `diff` [N,h,w] (conv1 units), `activation_scale` [N] (max |conv1| of both networks) and
    `min_corr` [N] (corr of channel J: the least of every channel's). Returns numpy arrays
    of N: max_abs_difference (max |diff|, conv1 units), activation_scale, relative_difference
    (their ratio; 0 when both networks' conv1 is all zero), min_corr and negligible (bool:
    min_corr > NEGLIGIBLE_CORRELATION or relative_difference < NEGLIGIBLE_RELATIVE).
    """
    diff = np.asarray(diff, np.float64)
    max_abs = np.abs(diff).reshape(len(diff), -1).max(axis=1, initial=0.0)
    scale = np.asarray(activation_scale, np.float64)
    relative = np.where(scale > 0, max_abs / np.where(scale > 0, scale, 1.0), 0.0)
    min_corr = np.asarray(min_corr, np.float64)
    negligible = (min_corr > NEGLIGIBLE_CORRELATION) | (relative < NEGLIGIBLE_RELATIVE)
    return {
        "max_abs_difference": max_abs,
        "activation_scale": scale,
        "relative_difference": relative,
        "min_corr": min_corr,
        "negligible": negligible,
    }


def sizes_of(maps: dict) -> dict:
    """`difference_size` of `run_highlights`' output (numpy arrays of N photos)."""
    min_corr = np.take_along_axis(maps["corr"], maps["J"][:, None], axis=1)[:, 0]
    return difference_size(maps["diff"], maps["activation_scale"], min_corr)


def negligible_reason(max_abs: float, relative: float, min_corr: float) -> str | None:
    """Why one map is negligible (the figures that make it so), or None when it is not."""
    reasons = []
    if max_abs == 0:
        reasons.append("the two maps are identical (max |diff| 0)")
    elif relative < NEGLIGIBLE_RELATIVE:
        reasons.append(
            f"max |diff| {max_abs:.1e} is {relative:.1e} of the activation scale "
            f"(< {NEGLIGIBLE_RELATIVE:g})"
        )
    if min_corr > NEGLIGIBLE_CORRELATION:
        reasons.append(
            f"every channel's maps correlate above {NEGLIGIBLE_CORRELATION:g} (min {min_corr:.6f})"
        )
    return "; ".join(reasons) or None


def channel_share(J) -> dict:
    """How often one channel is J over photos: {photos, most_common_J, count, share, distinct}.

    A channel chosen for (nearly) every photo says more about the two networks than about the
    photos. most_common_J is the smallest on ties; None (and share 0) for no photo.
    """
    J = np.asarray(J, int).ravel()
    if len(J) == 0:
        return {"photos": 0, "most_common_J": None, "count": 0, "share": 0.0, "distinct": 0}
    counts = np.bincount(J)
    top = int(np.argmax(counts))
    return {
        "photos": int(len(J)),
        "most_common_J": top,
        "count": int(counts[top]),
        "share": float(counts[top] / len(J)),
        "distinct": int(np.count_nonzero(counts)),
    }


def format_channel_share(share: dict) -> str:
    """'channel J = 17 for 40 of 40 photos (100 %), 1 distinct J' from `channel_share`."""
    if not share["photos"]:
        return "no photo, no channel J"
    return (
        f"channel J = {share['most_common_J']} for {share['count']} of {share['photos']} "
        f"photos ({100 * share['share']:.0f} %), {share['distinct']} distinct J"
    )


def run_highlights(fn, params_i, params_prev, images: np.ndarray, batch_size: int) -> dict:
    """fn over `images` [N,S,S,3] in fixed-size (padded) batches; numpy arrays of N rows."""
    n = len(images)
    batch_size = max(1, min(batch_size, n))
    parts, start = [], time.perf_counter()
    for batch, mask in padded_batches(np.arange(n), batch_size):
        out = jax.device_get(fn(params_i, params_prev, images[batch]))
        parts.append({k: v[: int(mask.sum())] for k, v in out.items()})
        done = sum(len(p["J"]) for p in parts)
        if n > batch_size:
            rate = done / (time.perf_counter() - start)
            logging.info(
                "highlight maps: %d/%d photos, %.1f photos/s, ETA %.0fs",
                done,
                n,
                rate,
                (n - done) / rate,
            )
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
