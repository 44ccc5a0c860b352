"""Does the input pipeline keep the train step fed? `python -m benchmarks.data`.

The measurements are `benchmarks.data_benchmark`'s; this module holds the flags.
"""

import tempfile

from absl import app, flags

from benchmarks import data_benchmark
from rsrl_jax import commands, errors

FLAGS = flags.FLAGS
flags.DEFINE_list("cases", list(data_benchmark.CASES), "Which configs to measure.")
flags.DEFINE_integer("photos", 256, "Photos in the generated folder.")
flags.DEFINE_integer("epochs", 1, "Epochs timed for the step and for the training loop.")
flags.DEFINE_string("dir", None, "Where to write photos, records and workdirs (default: temp).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    known = data_benchmark.CASES
    for case in FLAGS.cases:
        if case not in known:
            raise app.UsageError(f"--cases: unknown case {case!r} ({', '.join(known)})")
    root = FLAGS.dir or tempfile.mkdtemp(prefix="rsrl-benchmark-")
    for name in ("photos", "epochs"):
        if FLAGS[name].value < 1:
            raise errors.ConfigError(f"--{name}={FLAGS[name].value}: must be at least 1")
    if not data_benchmark.run(FLAGS.cases, root, FLAGS.photos, FLAGS.epochs):
        raise SystemExit(1)


if __name__ == "__main__":
    commands.run(main)
