"""The public name `rsrl_jax.metrics.classification_report`; see rsrl_jax.analysis.metrics."""

from rsrl_jax.analysis.metrics import classification_report

__all__ = ["classification_report"]
