"""Re-exports the shipped config `--config=pretext`
(its text: rsrl_jax/configs/pretext.py)."""

from rsrl_jax.configs.pretext import get_config  # noqa: F401
