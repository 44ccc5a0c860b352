"""Small heads over feature vectors (frozen embeddings): an MLP, or a linear classifier.

`model.name='mlp'`: `hidden_widths` fully connected layers (`hidden_0`, `hidden_1`, ...),
each followed by a ReLU and dropout, then the N-way `head`; `model.name='linear'`: the head
alone (multinomial logistic regression). Input: float [B, D]; output: float32 logits
[B, num_classes]. As AlexNet's, the last layer is named `head`, so
`train.head_lr_multiplier` applies to it.
"""

import jax
import jax.numpy as jnp
from flax import linen as nn

# A dropout decision takes 16 random bits (two per threefry word), not flax's 32: the random
# bits were 40% of a 30-lane vmapped step of configs/embeddings.py's head on CPU (docs/speed.md,
# "What a study does for speed"). The keep probability is rounded to a multiple of 1/65536.
DROPOUT_BITS = 16


class MLP(nn.Module):
    """Dense -> ReLU -> dropout per hidden width, then the N-way head (no hidden width:
    a linear classifier)."""

    num_classes: int
    hidden_widths: tuple[int, ...] = ()
    dropout_rate: float = 0.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.astype(self.dtype)
        for i, width in enumerate(self.hidden_widths):
            x = nn.relu(nn.Dense(width, dtype=self.dtype, name=f"hidden_{i}")(x))
            x = HalfWordDropout(self.dropout_rate)(x, deterministic=not train)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x).astype(jnp.float32)


def input_dim(params) -> int:
    """D, the length of the vectors a head's parameters (arrays, or anything with a
    `.shape`: a checkpoint's metadata) take: the first layer's kernel rows."""
    first = "hidden_0" if "hidden_0" in params else "head"
    return int(params[first]["kernel"].shape[0])


class HalfWordDropout(nn.Module):
    """Inverted dropout whose decisions take `DROPOUT_BITS` random bits each.

    Input and output: float [..., W], the same shape. In training each element is kept
    with probability q = round((1 - rate) * 2^16) / 2^16 and scaled by 1 / q (so the mean
    is kept), else zeroed; `deterministic` (evaluation) or rate 0 returns the input. The key
    is the module's `dropout` rng (flax's `make_rng`, as `nn.Dropout`), so a lane draws the
    same mask vmapped or alone.
    """

    rate: float

    @nn.compact
    def __call__(self, x, deterministic: bool):
        if deterministic or self.rate == 0.0:
            return x
        keep = keep_mask(self.make_rng("dropout"), x.shape, 1.0 - self.rate)
        q = keep_threshold(1.0 - self.rate) / 2.0**DROPOUT_BITS
        return jnp.where(keep, x / jnp.asarray(q, x.dtype), jnp.zeros_like(x))


def keep_threshold(keep_prob: float) -> int:
    """The kept values of a 16-bit draw: those below this (keep_prob x 2^16, rounded)."""
    return min(2**DROPOUT_BITS, max(0, round(keep_prob * 2**DROPOUT_BITS)))


def keep_mask(key, shape: tuple[int, ...], keep_prob: float) -> jax.Array:
    """bool `shape`: True where kept, each with probability `keep_threshold / 2^16`; one
    32-bit threefry word gives two decisions (its low and high halves)."""
    n = 1
    for d in shape:
        n *= d
    words = jax.random.bits(key, ((n + 1) // 2,), jnp.uint32)
    halves = jnp.stack([words & 0xFFFF, words >> 16], axis=-1).reshape(-1)[:n]
    return (halves < keep_threshold(keep_prob)).reshape(shape)
