"""RSRL over frozen embeddings (CLIP features, or an AlexNet's fc7): seconds a round on a CPU.

  python -m rsrl_jax.embed --weights=shipped:demo_alexnet --out=EMB PHOTOS  # or your own
  python -m rsrl_jax.main --config=configs/embeddings.py --config.data.dir=EMB

`EMB/embeddings.npz` holds 'embeddings' float [N, D], 'scores' int [N] and optional 'ids'
(docs/embeddings.md). The network is a small head over the vectors: one
hidden layer of 512 with dropout 0.5 (`--config.model.hidden_widths='(1024,256)'` for two,
`--config.model.name=linear` for multinomial logistic regression), trained from random init
with Adam. The paper's protocol otherwise: stratified 5-fold, 12 rounds, the 3 largest
classes thinned at K = 0.99.
"""

from rsrl_jax.config import base_config


def get_config():
    c = base_config()
    c.data.name = "embeddings"
    c.model.name = "mlp"
    c.train.batch_size = 64
    c.train.eval_batch_size = 1024
    c.train.optimizer = "adam"
    c.train.weight_decay = 0.0
    c.train.head_lr_multiplier = 1.0  # nothing is pretrained: every layer is new
    c.train.first_round_epochs = 20
    c.train.epochs_per_round = 5
    c.checkpoint.every_steps = 0  # a round takes seconds: checkpoints at round ends only
    return c
