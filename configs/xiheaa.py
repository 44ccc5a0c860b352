"""Re-exports the shipped config `--config=xiheaa`
(its text: rsrl_jax/configs/xiheaa.py)."""

from rsrl_jax.configs.xiheaa import get_config  # noqa: F401
