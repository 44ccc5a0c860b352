"""The whole RSRL method on the embedded synthetic photos, in a few CPU minutes.

  python -m rsrl_jax.main --config=configs/demo.py

There are no ImageNet weights to start from here, so the demo trains a narrower AlexNet
(same layout, half the conv channels, 512-wide fully connected layers) from scratch on 64px
photos with Adam and no dropout, long enough in round 1 for the network to become as
confident on its training photos as the paper's fine-tuned net_1 was. One stratified
train/validation/test split, 6 rounds, the paper's K = 0.99.
"""

from rsrl_jax.config import base_config


def get_config():
    c = base_config()
    c.data.name = "synthetic"
    c.data.num_examples = 3100
    c.data.image_size = 64
    c.protocol.folds = 1
    c.model.width = 0.5
    c.model.fc_dim = 512
    c.model.dropout_rate = 0.0
    c.train.batch_size = 64
    c.train.optimizer = "adam"
    c.train.learning_rate = 1e-3
    c.train.weight_decay = 0.0
    c.train.head_lr_multiplier = 1.0  # from scratch: no pretrained backbone to protect
    c.train.first_round_epochs = 50
    c.train.epochs_per_round = 10
    c.rsrl.rounds = 6
    return c
