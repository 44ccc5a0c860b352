"""Full-size ViT port errors and embed throughput against Hugging Face `transformers`.

  python -m benchmarks.vit --archs=clip_vit_b16,siglip_vit_b16 [--check] [--speed]
      [--batch_size=8] [--json_out=FILE]

--check: one image through each arch's random-weight model in both frameworks (converted
from model.safetensors): the max relative error of the embedding. --speed: images/s of the
forward pass, ours / theirs, same batch and CPU threads. Needs torch and transformers
(pip install -e '.[test]'). The library is `benchmarks.vit_bench`.
"""

import json
import os
import sys

from absl import app, flags

from rsrl_jax import commands
from rsrl_jax.models import vit

FLAGS = flags.FLAGS
flags.DEFINE_list("archs", ["clip_vit_b16", "siglip_vit_b16"], "Sizes: " + ", ".join(vit.SIZES))
flags.DEFINE_boolean("check", True, "Print the full-size port error of each arch.")
flags.DEFINE_boolean("speed", True, "Print images/s, ours and transformers'.")
flags.DEFINE_integer("batch_size", 8, "Images per forward pass (--speed).")
flags.DEFINE_integer("repeats", 5, "Timed batches per side (the median counts).")
flags.DEFINE_string("json_out", None, "Also write every figure to this JSON file.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    commands.quiet_libraries()
    from benchmarks import vit_bench

    figures = {"command": " ".join(["python -m benchmarks.vit", *sys.argv[1:]])}
    figures.update(batch_size=FLAGS.batch_size, repeats=FLAGS.repeats, archs={})
    for arch in FLAGS.archs:
        if arch not in vit.SIZES:
            raise app.UsageError(f"--archs: {arch} is not one of {', '.join(vit.SIZES)}")
        if FLAGS.check:
            error = vit_bench.port_error(arch)
            figures["archs"].setdefault(arch, {})["port_error"] = error
            print(f"{arch}: max |ours - transformers| / max |transformers| = {error:.2e}")
        if FLAGS.speed:
            r = vit_bench.throughput(arch, FLAGS.batch_size, FLAGS.repeats)
            figures["archs"].setdefault(arch, {}).update(r)
            print(
                f"{arch}: batch {FLAGS.batch_size}, {r['threads']} threads: ours {r['ours']:.2f} "
                f"img/s, transformers {r['theirs']:.2f} img/s, ratio {r['ratio']:.2f}x",
                flush=True,
            )
    if FLAGS.json_out:
        figures["load_average"] = os.getloadavg()
        with open(FLAGS.json_out, "w") as f:
            json.dump(figures, f, indent=2)
        print(f"figures written to {FLAGS.json_out}")


if __name__ == "__main__":
    commands.run(main)
