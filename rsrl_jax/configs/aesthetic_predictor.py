"""The improved aesthetic predictor's head (LAION, Schuhmann 2022) over CLIP ViT-L/14 vectors.

  python -m rsrl_jax.embed --arch=clip_vit_l14 --weights=model.safetensors --out=EMB PHOTOS
  python -m rsrl_jax.main --config=configs/aesthetic_predictor.py --config.data.dir=EMB

Its MLP's widths: 768 -> 1024 -> 128 -> 64 -> 16 -> output, on unit-normalised CLIP L/14
embeddings (embed's default). Two differences, both RSRL's: the output is the N-way class
head (the method drops samples by class likelihood), not one regressed score, and each
hidden layer has a ReLU (LAION's has none: its stack of linear layers is one affine map).
Dropout 0.2 as its first two layers have (our MLP takes one rate). Adam at 1e-3 as LAION
trained it; otherwise configs/embeddings.py's protocol.
"""

from rsrl_jax.configs import embeddings


def get_config():
    c = embeddings.get_config()
    c.model.hidden_widths = (1024, 128, 64, 16)
    c.model.dropout_rate = 0.2
    return c
