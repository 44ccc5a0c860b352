"""The whole RSRL method on the embedded synthetic photos, in a few CPU minutes.

  python -m rsrl_jax.main --config=configs/demo.py

As the paper does with ImageNet weights, round 1 fine-tunes a pretrained backbone: the one
shipped with the package (`shipped:demo_alexnet`, made by `python -m rsrl_jax.pretrain
--config=configs/pretext.py` on other synthetic photos labelled by content and distortion
levels, never by score; docs/method.md, "The demo"). A fresh N-way head, all layers trained, the
head 10x faster. The network is a narrower AlexNet (same layout, half the conv channels,
512-wide fully connected layers) on 64px photos, the size the backbone was
pretrained for. One stratified train/validation/test split, 6 rounds, the paper's K = 0.99.
`--config.model.pretrained=''` trains the same network from scratch, for comparison.
"""

from rsrl_jax.config import base_config


def get_config():
    c = base_config()
    c.data.image_size = 64
    c.protocol.folds = 1
    c.model.pretrained = "shipped:demo_alexnet"
    c.model.width = 0.5
    c.model.fc_dim = 512
    c.model.dropout_rate = 0.5  # torchvision's and the paper's AlexNet
    c.train.batch_size = 64
    c.train.optimizer = "adam"
    c.train.learning_rate = 1e-4
    c.train.weight_decay = 0.0
    c.train.first_round_epochs = 20
    c.train.epochs_per_round = 5
    c.rsrl.rounds = 6
    return c
