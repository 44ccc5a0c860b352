"""Re-exports the shipped config `--config=synthetic_embeddings`
(its text: rsrl_jax/configs/synthetic_embeddings.py)."""

from rsrl_jax.configs.synthetic_embeddings import get_config  # noqa: F401
