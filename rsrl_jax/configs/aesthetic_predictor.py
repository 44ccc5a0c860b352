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

from rsrl_jax.config import base_config


def get_config():
    c = base_config()
    c.data.name = "embeddings"
    c.protocol.folds = 5
    c.model.name = "mlp"
    c.model.hidden_widths = (1024, 128, 64, 16)
    c.model.dropout_rate = 0.2
    c.train.batch_size = 64
    c.train.eval_batch_size = 1024
    c.train.optimizer = "adam"
    c.train.learning_rate = 1e-3
    c.train.weight_decay = 0.0
    c.train.head_lr_multiplier = 1.0  # nothing is pretrained: every layer is new
    c.train.first_round_epochs = 20
    c.train.epochs_per_round = 5
    c.checkpoint.every_steps = 0  # a round takes seconds: checkpoints at round ends only
    return c
