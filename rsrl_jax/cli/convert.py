"""Converts torchvision's ImageNet AlexNet weights into what `model.pretrained` loads.

  python -m rsrl_jax.convert --torch_weights=alexnet-owt-7be5be79.pth --out=weights/alexnet

The library function is `rsrl_jax.models.convert.convert`.
"""

from absl import app, flags

from rsrl_jax import cli
from rsrl_jax.models.convert import convert

FLAGS = flags.FLAGS
flags.DEFINE_string("torch_weights", None, "torchvision AlexNet state dict (.pth).")
flags.DEFINE_string("out", None, "Directory to write alexnet_imagenet.npz into.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    file = convert(FLAGS.torch_weights, FLAGS.out)
    print(f"wrote {file}; use it with --config.model.pretrained={FLAGS.out}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["torch_weights", "out"])
    cli.run(main)
