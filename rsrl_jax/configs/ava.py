"""RSRL on AVA (Murray et al. 2012): class = the rounded mean vote of each photo.

  python -m rsrl_jax.convert --torch_weights=alexnet-owt-7be5be79.pth --out=weights/alexnet
  python -m rsrl_jax.main --config=configs/ava.py --config.data.dir=AVA \\
      --config.model.pretrained=weights/alexnet

AVA is a folder with `AVA.txt`, the photos as `images/<image id>.jpg`, and optionally
`aesthetics_image_lists/generic_test.jpgl` (or `generic_test.jpgl`): when present the
official test split is used (one fold, validation drawn stratified from the rest;
`--config.data.ava_official_split=False` for stratified k-fold instead). AVA's download has
a few unreadable photos, hence skip mode: each one left out is listed, with its reason, in
the workdir's skipped.jsonl. The classes are the rounded mean votes present (mostly 3..8);
`--config.data.ava_bins='(5.0,)'` gives AVA's usual low/high split instead. Photos are
decoded once into 256px squares (prepared records are reused across runs) and the network
sees random 224px crops, starting from ImageNet AlexNet as the paper did.
"""

from rsrl_jax.config import base_config


def get_config():
    c = base_config()
    c.data.name = "ava"
    c.data.dir = "data/ava"  # placeholder: --config.data.dir=AVA
    c.data.stored_size = 256
    c.data.on_bad_example = "skip"
    c.model.pretrained = "weights/alexnet"  # placeholder: the folder rsrl_jax.convert wrote
    c.train.batch_size = 128
    c.train.eval_batch_size = 512
    c.train.learning_rate = 1e-4
    c.train.head_lr_multiplier = 20.0
    c.train.weight_decay = 1e-4
    c.train.epochs_per_round = 2  # 230k training photos: an epoch is long
    return c
