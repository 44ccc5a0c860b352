"""Small heads over feature vectors (frozen embeddings): an MLP, or a linear classifier.

`model.name='mlp'`: `hidden_widths` fully connected layers (`hidden_0`, `hidden_1`, ...),
each followed by a ReLU and dropout, then the N-way `head`; `model.name='linear'`: the head
alone (multinomial logistic regression). Input: float [B, D]; output: float32 logits
[B, num_classes]. As AlexNet's, the last layer is named `head`, so
`train.head_lr_multiplier` applies to it.
"""

import jax.numpy as jnp
from flax import linen as nn


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
            x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x).astype(jnp.float32)


def input_dim(params) -> int:
    """D, the length of the vectors a head's parameters (arrays, or anything with a
    `.shape`: a checkpoint's metadata) take: the first layer's kernel rows."""
    first = "hidden_0" if "hidden_0" in params else "head"
    return int(params[first]["kernel"].shape[0])
