"""The paper's setup: ImageNet AlexNet fine-tuned by RSRL on a folder of scored photos.

  python -m rsrl_jax.convert --torch_weights=alexnet-owt-7be5be79.pth --out=weights/alexnet
  python -m rsrl_jax.main --config=configs/xiheaa.py --config.data.dir=PHOTOS \\
      --config.model.pretrained=weights/alexnet

PHOTOS is a folder in xiheAA format (`scores.csv` with header `filename,score`, photos under
`images/`); each score 2..9 present is a class. Round 1 starts from torchvision's ImageNet
AlexNet (converted by the first command; docs/your-photos.md) with a fresh N-way head;
`--config.model.pretrained=''` trains from scratch instead (the log says so). Stratified
5-fold, 12 rounds, the 3 largest classes thinned with K = 0.99 each, sigmoid likelihoods.

Input: each photo is stored once as a 256x256 square (the whole photo, resized, as MATLAB's
augmentedImageDatastore did); training sees random 224x224 crops with horizontal flips and
evaluation the central crop (torchvision's ImageNet recipe: the weights are torchvision's
and expect 224, where MATLAB's AlexNet took 227). Optimisation as MATLAB's transfer-learning
examples that the paper's `trainNetwork` calls follow: sgdm with momentum 0.9, learning rate
1e-4, the new head 20x faster, L2 1e-4 (MATLAB's default), 6 epochs per round.
"""

from rsrl_jax.config import base_config


def get_config():
    c = base_config()
    c.data.name = "folder"
    c.data.dir = "data/xiheaa"  # placeholder: --config.data.dir=PHOTOS
    c.data.score_range = (2, 9)
    c.data.stored_size = 256
    c.model.pretrained = "weights/alexnet"  # placeholder: the folder rsrl_jax.convert wrote
    c.train.learning_rate = 1e-4
    c.train.head_lr_multiplier = 20.0
    c.train.weight_decay = 1e-4
    c.train.epochs_per_round = 6
    return c
