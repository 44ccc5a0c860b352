"""The paper's setup on a vision transformer: OpenAI's CLIP ViT-B/16 fine-tuned by RSRL.

  python -m rsrl_jax.convert --arch=clip_vit_b16 \\
      --weights=clip-vit-base-patch16/model.safetensors --out=weights/vit
  python -m rsrl_jax.main --config=configs/xiheaa_clip_vit_b16.py --config.data.dir=PHOTOS \\
      --config.model.pretrained=weights/vit

The first command converts Hugging Face's `openai/clip-vit-base-patch16` checkpoint (download
it yourself; nothing is downloaded at run time) into `weights/vit/clip_vit_b16.npz` and its
record. Everything as `configs/xiheaa.py` (xiheAA folder, 5 folds, 12 rounds, K = 0.99,
256px stored, random 224px crops and flips) but the network: the ViT-B/16 vision tower
(patch embedding, 12 blocks, projection to 512) from the converted file, a fresh N-way head
on the 512-d embedding, photos normalised with CLIP's mean and std. Adam at 1e-5 for the
backbone (transformers drift at sgd's rates) and 1e-3 for the head, no weight decay.
LAION's open_clip weights: convert with --act=gelu and add --config.model.vit_act=gelu.
ViT-B/16 at 224px is about 17.6 GFLOPs a photo forward (AlexNet 0.7): use a GPU or TPU.
"""

from rsrl_jax.configs import xiheaa


def get_config():
    c = xiheaa.get_config()
    c.model.name = "clip_vit_b16"
    c.model.pretrained = "weights/vit"  # placeholder: the folder rsrl_jax.convert wrote
    c.train.optimizer = "adam"
    c.train.learning_rate = 1e-5
    c.train.head_lr_multiplier = 100.0
    c.train.weight_decay = 0.0
    return c
