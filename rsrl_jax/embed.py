"""Writes the features of a photo folder as an embeddings file: AlexNet's fc7, ResNet-50's
pooled layer4, or a CLIP or SigLIP ViT's image embedding (--arch).

  python -m rsrl_jax.embed --weights=WEIGHTS --out=DIR [--fold=0] [--round=I] [--image_size=S]
      [--on_bad_example=error|skip] [--cache_dir=DIR] PHOTOS

  python -m rsrl_jax.embed --arch=clip_vit_l14 --weights=FILE [--nonormalize] --out=DIR PHOTOS

With --arch (a CLIP or SigLIP size, `models.vit.SIZES`), FILE is `convert --arch`'s
ARCH.npz or the published checkpoint, and the vectors are the ViT's embeddings,
unit-normalised unless --nonormalize (`rsrl_jax.engine.vit_embed`).
WEIGHTS: `shipped:NAME`, converted ImageNet weights (`python -m rsrl_jax.convert`, AlexNet or
`--arch=resnet50`), or a
finished run's workdir on photos (--fold, --round: default the round chosen on validation).
PHOTOS: a folder as data.name=folder reads it (scores.csv and images/; the scores come along),
or any folder of photos (no scores: a file for predict only). Writes DIR/embeddings.npz
('embeddings' float32 [N, F]: AlexNet's fc7 after its ReLU, F = fc_dim, or ResNet-50's
average-pooled layer4, F = 2048; 'scores'; 'ids') for
`--config.data.name=embeddings --config.data.dir=DIR`, and DIR/embeddings.json. The library
function is `rsrl_jax.engine.embed.embed_folder`.
"""

from absl import app, flags

from rsrl_jax import commands
from rsrl_jax.engine import embed
from rsrl_jax.models import vit


def main(argv):
    if len(argv) != 2:
        raise app.UsageError("name one folder of photos (scores.csv and images/, or photos)")
    commands.quiet_libraries()
    f = flags.FLAGS
    if f.arch:  # a CLIP or SigLIP ViT (engine/vit_embed.py)
        from rsrl_jax.engine import vit_embed

        print(
            vit_embed.embed_folder(
                f.weights, argv[1], f.out, f.arch, f.normalize, f.on_bad_example, f.batch_size
            )
        )
        return
    bb = embed.backbone(f.weights, f.fold, f.round, f.image_size)
    print(embed.embed_folder(bb, argv[1], f.out, f.on_bad_example, f.batch_size, f.cache_dir))


if __name__ == "__main__":
    # Flags are defined only when run as a program, so importing this module defines none.
    flags.DEFINE_string(
        "weights",
        None,
        "shipped:NAME, converted ImageNet weights (a folder or .npz), or a run's workdir.",
    )
    flags.DEFINE_string("out", None, "Folder to write embeddings.npz into (created if missing).")
    flags.DEFINE_enum(
        "arch",
        None,
        list(vit.SIZES),
        "A CLIP or SigLIP ViT: --weights is convert's ARCH.npz or the published checkpoint.",
    )
    flags.DEFINE_boolean(
        "normalize",
        True,
        "ViT: unit-length vectors, as the predictors read them (--nonormalize: raw).",
    )
    flags.DEFINE_integer("fold", 0, "With a workdir: the fold whose network to use.")
    flags.DEFINE_integer("round", None, "With a workdir: the round; default the one chosen.")
    flags.DEFINE_integer(
        "image_size", 0, "Input side for shipped or converted weights; 0 = their own (224)."
    )
    flags.DEFINE_enum(
        "on_bad_example", "error", ["error", "skip"], "skip: leave bad rows and photos out."
    )
    flags.DEFINE_string("cache_dir", "", "Prepared photos (as data.cache_dir); '' = TFDS's.")
    flags.DEFINE_integer("batch_size", 64, "Photos per forward pass.")
    flags.mark_flags_as_required(["weights", "out"])
    commands.run(main)
