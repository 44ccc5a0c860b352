"""RSRL over synthetic embeddings with a known rater: the regime users are in, with the truth.

  python -m rsrl_jax.main --config=configs/synthetic_embeddings.py
  python -m rsrl_jax.study --config=configs/synthetic_embeddings.py --label_noise=0.1,0.5,1.0
  python -m rsrl_jax.ceilings --config=configs/synthetic_embeddings.py

3100 vectors of 128 values made from the demo's scenes (its latent quality and scene factors
through a fixed random map plus noise: data/synthetic_embeddings.py), scored by the demo's
rater with its class shares and `data.label_noise`. `--config.data.feature_strength=weak`
(medium, strong, or the vectors' noise std as a number) sets how well the vectors show the
quality. configs/embeddings.py's head and protocol: an MLP of 512 with dropout, Adam, 5 folds,
12 rounds, the 3 largest classes thinned at K = 0.99.
"""

from rsrl_jax.configs import embeddings


def get_config():
    c = embeddings.get_config()
    c.data.name = "synthetic_embeddings"  # generated in memory: no data.dir
    return c
