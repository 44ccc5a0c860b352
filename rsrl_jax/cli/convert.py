"""Converts torchvision's ImageNet AlexNet or ResNet-50 weights into .npz files.

  python -m rsrl_jax.convert --torch_weights=alexnet-owt-7be5be79.pth --out=weights/alexnet
  python -m rsrl_jax.convert --arch=resnet50 --torch_weights=resnet50-0676ba61.pth --out=DIR

The library function is `rsrl_jax.models.convert.convert`.
"""

from absl import app, flags

from rsrl_jax import cli
from rsrl_jax.models.convert import ARCHS, convert

FLAGS = flags.FLAGS
flags.DEFINE_enum("arch", "alexnet", list(ARCHS), "The torchvision network the file holds.")
flags.DEFINE_string("torch_weights", None, "torchvision state dict (.pth) of --arch.")
flags.DEFINE_string(
    "out",
    None,
    "Directory to write into: "
    + ", ".join(f"{spec.out_file} (--arch={arch})" for arch, spec in ARCHS.items())
    + ".",
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    file = convert(FLAGS.torch_weights, FLAGS.out, FLAGS.arch)
    if FLAGS.arch == "alexnet":
        print(f"wrote {file}; use it with --config.model.pretrained={FLAGS.out}")
    else:
        print(f"wrote {file}: {ARCHS[FLAGS.arch].title}'s params and batch_stats")


if __name__ == "__main__":
    flags.mark_flags_as_required(["torch_weights", "out"])
    cli.run(main)
