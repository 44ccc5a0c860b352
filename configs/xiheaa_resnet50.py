"""Re-exports the shipped config `--config=xiheaa_resnet50`
(its text: rsrl_jax/configs/xiheaa_resnet50.py)."""

from rsrl_jax.configs.xiheaa_resnet50 import get_config  # noqa: F401
