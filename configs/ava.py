"""Re-exports the shipped config `--config=ava`
(its text: rsrl_jax/configs/ava.py)."""

from rsrl_jax.configs.ava import get_config  # noqa: F401
