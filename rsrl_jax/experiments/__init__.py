"""Experiments: several runs started, then analysed together (compare's methods on the same
folds, a study over seeds and rater-noise levels). Above the engine they run and the analysis
they report with."""
