"""Pretrains the demo's backbone on the pretext corpus and writes it with its provenance.

  python -m rsrl_jax.pretrain --config=configs/pretext.py [--out=DIR]

The library function is `rsrl_jax.engine.pretrain.write_backbone`.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from rsrl_jax import commands
from rsrl_jax.engine import pretrain

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    commands.quiet_libraries()
    commands.enable_compilation_cache()
    out = FLAGS.out if FLAGS.out is not None else commands.default_workdir()
    command = "python -m rsrl_jax.pretrain " + " ".join(sys.argv[1:])
    file, record = pretrain.write_backbone(FLAGS.config, out, command)
    for label, accuracy in record["pretext_accuracy"].items():
        print(
            f"{label:>10}: held-out accuracy {accuracy:.3f} (chance {record['chance'][label]:.3f})"
        )
    print(f"wrote {file} (sha256 {record['sha256'][:16]}...) and its record {record['file']}")


if __name__ == "__main__":
    # Flags are defined only when run as a program, so importing this module defines none.
    config_flags.DEFINE_config_file("config", None, "Pretext config file.", lock_config=True)
    flags.DEFINE_string("out", None, "Output folder; default runs/<config name>.")
    flags.mark_flags_as_required(["config"])
    commands.run(main, help_config="configs/pretext.py")
