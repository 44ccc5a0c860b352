"""Converts torchvision's ImageNet AlexNet or ResNet-50 weights, or a CLIP or SigLIP
checkpoint's vision tower, into .npz files.

  python -m rsrl_jax.convert --torch_weights=alexnet-owt-7be5be79.pth --out=weights/alexnet
  python -m rsrl_jax.convert --arch=resnet50 --torch_weights=resnet50-0676ba61.pth --out=DIR
  python -m rsrl_jax.convert --arch=clip_vit_l14 --weights=model.safetensors --out=DIR

The library functions are `rsrl_jax.models.convert.convert` and
`rsrl_jax.models.vit_convert.convert_vit`.
"""

from absl import app, flags

from rsrl_jax import commands
from rsrl_jax.models import vit
from rsrl_jax.models.convert import ARCHS, convert

FLAGS = flags.FLAGS
flags.DEFINE_enum("arch", "alexnet", list(ARCHS) + list(vit.SIZES), "The network the file holds.")
flags.DEFINE_string("torch_weights", None, "torchvision state dict (.pth) of --arch.")
flags.DEFINE_string(
    "weights",
    None,
    "ViT archs: Hugging Face's model.safetensors (CLIP, SigLIP) or open_clip's .bin/.pt.",
)
flags.DEFINE_enum(
    "act", None, list(vit.ACTIVATIONS), "CLIP: gelu for LAION's weights; default: config.json's."
)
flags.DEFINE_string(
    "out",
    None,
    "Directory to write into: "
    + ", ".join(f"{spec.out_file} (--arch={arch})" for arch, spec in ARCHS.items())
    + ", ARCH.npz and ARCH.json (ViT archs).",
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    commands.quiet_libraries()
    if FLAGS.weights and FLAGS.arch not in vit.SIZES:
        raise app.UsageError(
            f"--weights={FLAGS.weights} reads a CLIP or SigLIP checkpoint: name its "
            f"--arch (one of {', '.join(vit.SIZES)}); torchvision's AlexNet or ResNet-50 "
            "file is --torch_weights=FILE"
        )
    if FLAGS.arch in vit.SIZES:
        from rsrl_jax.models.vit_convert import convert_vit

        if not FLAGS.weights:
            raise app.UsageError(f"--arch={FLAGS.arch} reads --weights=FILE (not --torch_weights)")
        file = convert_vit(FLAGS.weights, FLAGS.out, FLAGS.arch, FLAGS.act)
        print(f"wrote {file}; embed with python -m rsrl_jax.embed --weights={file}")
        return
    if not FLAGS.torch_weights:
        raise app.UsageError(f"--arch={FLAGS.arch} reads --torch_weights=FILE")
    file = convert(FLAGS.torch_weights, FLAGS.out, FLAGS.arch)
    if FLAGS.arch == "alexnet":
        print(f"wrote {file}; use it with --config.model.pretrained={FLAGS.out}")
    else:
        print(f"wrote {file}: {ARCHS[FLAGS.arch].title}'s params and batch_stats")


if __name__ == "__main__":
    flags.mark_flags_as_required(["out"])
    commands.run(main)
