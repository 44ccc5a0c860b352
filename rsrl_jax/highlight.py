"""Highlight regions of photos (paper section IV), drawn as the paper's Fig. 4.

  python -m rsrl_jax.highlight --workdir=DIR [--fold=F] [--round=I] [--k=1] --out=OUT \\
      [--norecursive] PHOTO_OR_FOLDER...

writes OUT/<photo name>.png (the photo, both conv1 maps of channel J, the difference overlaid
on the photo) and prints one JSON line per photo: path, png, both rounds, J, the minimal
correlation, every channel's correlation, net_I's predicted score, and the difference's
absolute size: max_abs_difference (conv1 units), activation_scale (max |conv1| of both
networks), relative_difference (their ratio), negligible and negligible_reason (the two
networks barely differ on this photo: the map is noise, and its PNG says so). A last line on
stderr sums up: how often the most common J was chosen, how many distinct J, the range of
relative_difference and how many maps were negligible. A folder stands for
every file under it, as for predict (`rsrl_jax.data.user_photos`). A photo that cannot be
read gets a line {"path", "error"}, a file that is not a photo {"path", "skipped"}, and the
others go on; the exit status is 1 only if no photo could be read (2 for a workdir, fold or
round that cannot be used). I defaults to the round the run chose on validation; if that
round is too early to have a net_{I-k}, round 1 + k is used instead (with a warning, and the
JSON says which rounds were compared). An explicit --round must leave I - k >= 1.

Photos are decoded as the run decoded them (its `data.stored_size`, else `data.image_size`,
and its `data.max_pixels`) and centre-cropped to `data.image_size`, the view the network was
evaluated on (`data.preprocess.network_photo`); the log names the values used. The library
function is `rsrl_jax.analysis.highlight.highlight_photos`.

Also keeps the public name `rsrl_jax.highlight.min_correlation_diff` (paper eq. 4-5).
"""

import json
import sys

from absl import app, flags

from rsrl_jax import commands
from rsrl_jax.analysis.highlight import format_summary, highlight_photos, summarize
from rsrl_jax.analysis.highlight_maps import min_correlation_diff
from rsrl_jax.data.user_photos import expand_paths

__all__ = ["min_correlation_diff"]

FLAGS = flags.FLAGS


def define_flags():
    """The CLI's flags; defined only when run as a program."""
    commands.define_pair_flags("Workdir of a finished run.", "Fold whose networks to use.")
    flags.DEFINE_string("out", None, "Folder for the PNG files (created if missing).")
    flags.DEFINE_integer("batch_size", 16, "Photos per jitted call.")
    commands.define_recursive_flag()
    flags.mark_flags_as_required(["workdir", "out"])


def main(argv) -> int:
    if not argv[1:]:
        raise app.UsageError("give at least one PHOTO or folder of photos")
    commands.quiet_libraries()
    lines = highlight_photos(
        FLAGS.workdir,
        expand_paths(argv[1:], FLAGS.recursive),
        FLAGS.out,
        FLAGS.fold,
        FLAGS.round,
        FLAGS.k,
        FLAGS.batch_size,
    )
    for line in lines:
        print(json.dumps(line), flush=True)
    print(format_summary(summarize(lines)), file=sys.stderr, flush=True)  # stdout stays JSON
    return 0 if any("png" in line for line in lines) else 1


if __name__ == "__main__":
    define_flags()
    commands.run(main)
