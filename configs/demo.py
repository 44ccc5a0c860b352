"""Re-exports the shipped config `--config=demo`
(its text: rsrl_jax/configs/demo.py)."""

from rsrl_jax.configs.demo import get_config  # noqa: F401
