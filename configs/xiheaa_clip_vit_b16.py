"""Re-exports the shipped config `--config=xiheaa_clip_vit_b16`
(its text: rsrl_jax/configs/xiheaa_clip_vit_b16.py)."""

from rsrl_jax.configs.xiheaa_clip_vit_b16 import get_config  # noqa: F401
