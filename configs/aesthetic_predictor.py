"""Re-exports the shipped config `--config=aesthetic_predictor`
(its text: rsrl_jax/configs/aesthetic_predictor.py)."""

from rsrl_jax.configs.aesthetic_predictor import get_config  # noqa: F401
