"""Weights shipped with the package (`model.pretrained='shipped:NAME'`): NAME.npz, NAME.json."""
