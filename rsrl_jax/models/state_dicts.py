"""The check every torchvision weight port shares: is a state dict the network's, key for key?"""

from collections.abc import Collection, Mapping

import numpy as np


def check(
    state_dict,
    expected: Mapping[str, tuple[int, ...]],
    what: str,
    optional: Collection[str] = (),
) -> None:
    """Raises ValueError naming the first way `state_dict` is not `what`'s state dict.

    `expected` maps torchvision's names to shapes, in torchvision's order; every one must be
    present, with that shape and a float dtype. Keys are checked in that order (missing, then
    shape and dtype), then the first key that is neither expected nor in `optional` (names
    allowed and left unchecked, such as BatchNorm's `num_batches_tracked`) is named.
    """
    prefix = f"not {what} state dict"
    if not hasattr(state_dict, "keys"):
        raise ValueError(f"{prefix}: a {type(state_dict).__name__}, not a dict")
    for name, shape in expected.items():
        if name not in state_dict:
            raise ValueError(f"{prefix}: missing key {name!r}")
        value = np.asarray(state_dict[name])
        if value.shape != tuple(shape):
            raise ValueError(f"{prefix}: {name!r} has shape {value.shape}, expected {shape}")
        if not np.issubdtype(value.dtype, np.floating):
            raise ValueError(f"{prefix}: {name!r} has dtype {value.dtype}")
    for name in state_dict:
        if name not in expected and name not in optional:
            raise ValueError(f"{prefix}: unexpected key {name!r}")
