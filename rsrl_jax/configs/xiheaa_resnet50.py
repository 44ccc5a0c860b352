"""The paper's setup on a modern backbone: torchvision's ImageNet ResNet-50 fine-tuned by RSRL.

  python -m rsrl_jax.convert --arch=resnet50 --torch_weights=resnet50-0676ba61.pth \\
      --out=weights/resnet50
  python -m rsrl_jax.main --config=configs/xiheaa_resnet50.py --config.data.dir=PHOTOS \\
      --config.model.pretrained=weights/resnet50

Everything as `configs/xiheaa.py` (xiheAA folder, 5 folds, 12 rounds, K = 0.99, 256px stored,
random 224px crops and flips) but the network: ResNet-50 (`model.name='resnet50'`), every
layer but the 1000-way ImageNet head from the converted file, a fresh N-way head trained 10x
faster (`train.head_lr_multiplier`). BatchNorm keeps the ImageNet running statistics while
fine-tuning (`model.batch_norm='frozen'`, the usual choice for batches of 32 photos and fewer;
'updated' normalises with each batch's statistics). sgdm with momentum 0.9, learning rate
1e-3 (ResNet fine-tuning's usual rate; AlexNet's 1e-4 barely moves BatchNorm networks), L2
1e-4. ResNet-50 at 224px is about 4 GFLOPs a photo forward (AlexNet 0.7): use a GPU or TPU
(python -m benchmarks --model=resnet50 gives its speed here).
"""

from rsrl_jax.configs import xiheaa


def get_config():
    c = xiheaa.get_config()
    c.model.name = "resnet50"
    c.model.pretrained = "weights/resnet50"  # placeholder: the folder rsrl_jax.convert wrote
    c.train.learning_rate = 1e-3
    c.train.head_lr_multiplier = 10.0
    return c
