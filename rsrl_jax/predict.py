"""Scores photos with a trained round's network: one JSON line per photo.

  python -m rsrl_jax.predict --workdir=DIR [--fold=0] [--round=I] [--norecursive] PHOTO_OR_FOLDER...

A run on embeddings scores embeddings files instead (EMBEDDINGS.npz or a folder of one): one
line per row. The library function is `rsrl_jax.engine.predict.predict`.
"""

from absl import app, flags

from rsrl_jax import commands
from rsrl_jax.engine.predict import predict


def main(argv):
    commands.quiet_libraries()
    if not argv[1:]:
        raise app.UsageError("name at least one photo or folder of photos")
    f = flags.FLAGS
    scored = predict(f.workdir, argv[1:], f.fold, f.round, f.batch_size, recursive=f.recursive)
    return 0 if scored else 1


if __name__ == "__main__":
    # Flags are defined only when run as a program, so importing this module defines none.
    flags.DEFINE_string("workdir", None, "Workdir of a finished run.")
    flags.DEFINE_integer("fold", 0, "Which fold's networks to use.")
    flags.DEFINE_integer("round", None, "Round to use; default the round chosen on validation.")
    flags.DEFINE_integer("batch_size", 32, "Photos per forward pass.")
    commands.define_recursive_flag()
    flags.mark_flags_as_required(["workdir"])
    commands.run(main)
