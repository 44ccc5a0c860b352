"""The public name `rsrl_jax.selection.keep_mask` (paper eqs. 1-3); see rsrl_jax.method."""

from rsrl_jax.method.keep_rules import keep_at_least, keep_mask
from rsrl_jax.method.selection import majority_classes

__all__ = ["keep_at_least", "keep_mask", "majority_classes"]
