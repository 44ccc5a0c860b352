"""Re-exports the shipped config `--config=embeddings`
(its text: rsrl_jax/configs/embeddings.py)."""

from rsrl_jax.configs.embeddings import get_config  # noqa: F401
