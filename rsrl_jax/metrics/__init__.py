"""The figures a round is measured by, below both the run that records them and the analysis
that reads them: `classification` (per-class precision, recall, F: paper eqs. 6-7),
`aesthetic` (the expected score's SRCC, PLCC, MAE, RMSE, binary accuracy), `fold_stats`
(over the folds; the round chosen on validation).

The public name `rsrl_jax.metrics.classification_report` is `classification`'s.
"""

from rsrl_jax.metrics.classification import classification_report

__all__ = ["classification_report"]
