"""Does the input pipeline keep the train step fed? Prints images/s of both, side by side.

  python -m benchmarks.data [--cases=demo,alexnet224] [--photos=256] [--epochs=1]

(the command is `benchmarks.data`; this module is its library.)

For each case it writes a folder of camera-like JPEG photos (640x480) with a scores.csv,
prepares it (decode once into array_record files), then measures in one run:

  build     photos decoded and stored per second (once per data set, cached afterwards)
  read      prepared records read back by random access per second (once per run)
  pipeline  what training does on the host for every step: shuffled index batches, the
            gather of uint8 photos, the transfer to the device mesh (augmentation, random
            crop and flip, happens inside the jitted step, so the step's figure includes it)
  step      the train step alone, fed one batch already on the device
  together  both, one after the other, as the round loop runs them

The pipeline must deliver at least 3x what the step consumes (`pipeline / step >= 3`).
"""

import os
import tempfile
import time

import jax
import ml_collections
import numpy as np
from absl import logging
from PIL import Image

from benchmarks import rig as rigs
from rsrl_jax import errors
from rsrl_jax.config import base_config
from rsrl_jax.data import datasets, prepared, synthetic
from rsrl_jax.engine import train

CASES = ("demo", "alexnet224")
REQUIRED_RATIO = 3.0
PIPELINE_IMAGES = 4096  # the pipeline is fast: time enough batches that setup costs vanish


def case_config(case: str) -> ml_collections.ConfigDict:
    """The demo config (narrow AlexNet, 64px) or the paper's full-size AlexNet at 224px."""
    if case == "demo":
        from configs import demo  # configs/ sits at the repository root: run from there

        return demo.get_config()
    if case == "alexnet224":
        c = base_config()
        c.data.stored_size = 256  # random 224 crops of 256 stored squares, as ImageNet training
        return c
    raise errors.ConfigError(f"unknown benchmark case {case!r}: one of {', '.join(CASES)}")


def write_camera_folder(root: str, n: int) -> None:
    """`n` 640x480 JPEGs (synthetic scenes, upscaled) with their scores, as a camera makes."""
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    photos = synthetic.generate(n, 64, seed=0)
    rows = ["filename,score"]
    for i, (image, score) in enumerate(zip(photos.images, photos.scores, strict=True)):
        name = f"IMG_{i:05d}.jpg"
        Image.fromarray(image).resize((640, 480), Image.Resampling.BILINEAR).save(
            os.path.join(root, "images", name), quality=92
        )
        rows.append(f"{name},{score}")
    with open(os.path.join(root, "scores.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")


def time_pipeline(rig: rigs.Rig, indices: np.ndarray, min_images: int) -> float:
    """images/s of the host pipeline alone, over whole epochs of at least `min_images`."""
    jax.block_until_ready(next(rig.batches(indices, 1)))  # first transfer: setup
    epochs = -(-min_images // len(indices))
    start, last = time.perf_counter(), None
    for placed in rig.batches(indices, epochs):
        last = placed  # no sync per batch: the host runs ahead, as in training
    jax.block_until_ready(last)
    return epochs * len(indices) / (time.perf_counter() - start)


def time_steps(rig: rigs.Rig, params, feed, images_per_step: int) -> float:
    """images/s of the jitted train step over the batches of `feed` (as the round loop runs)."""
    state = train.new_state(jax.tree.map(lambda a: a.copy(), params), rig.tx)
    sums = rig.placer.replicate(train.zero_sums())
    key = jax.random.key(0)
    steps, start = 0, time.perf_counter()
    for x, y, m in feed:
        state, sums = rig.train_step(state, sums, x, y, m, key, rig.class_terms)
        steps += 1
    jax.block_until_ready(sums)
    return steps * images_per_step / (time.perf_counter() - start)


def run_case(case: str, root: str, photos: int, epochs: int) -> dict:
    """images/s of each stage for `case` on a folder of `photos` camera JPEGs under `root`
    (written once), the step and the whole loop timed over `epochs` epochs."""
    config = case_config(case)
    config.data.name = "folder"
    config.data.dir = os.path.join(root, "photos")
    config.data.cache_dir = os.path.join(root, "cache")
    config.log.progress = False
    if not os.path.exists(config.data.dir):
        write_camera_folder(config.data.dir, photos)
    figures = {}

    builder, _ = prepared.make_builder(config)
    cached = prepared.is_complete(builder.data_dir)  # the folder reused: nothing to build
    start = time.perf_counter()
    prepared.prepare(config)
    figures["build"] = None if cached else photos / (time.perf_counter() - start)
    start = time.perf_counter()
    data = datasets.load(config, tempfile.mkdtemp(dir=root, prefix="run-"))
    figures["read"] = photos / (time.perf_counter() - start)

    rig = rigs.build(config, data)
    indices = np.arange(len(data))
    params = rig.initial_params()
    figures["pipeline"] = time_pipeline(rig, indices, PIPELINE_IMAGES)
    one = next(rig.batches(indices, 1))
    # Compile: the first step's state comes from new_state, later ones from the step itself
    # (other array placements), so the step compiles twice.
    time_steps(rig, params, [one, one], rig.batch_size)
    steps = epochs * -(-len(indices) // rig.batch_size)
    figures["step"] = time_steps(rig, params, [one] * steps, rig.batch_size)
    figures["together"] = time_steps(rig, params, rig.batches(indices, epochs), rig.batch_size)
    figures["ratio"] = figures["pipeline"] / figures["step"]
    return figures


def run(cases: list[str], root: str, photos: int, epochs: int) -> bool:
    """Prints the table of `run_case` for each case; whether every pipeline keeps up
    (`pipeline / step >= REQUIRED_RATIO`)."""
    devices = jax.devices()
    print(f"devices: {len(devices)} x {devices[0].device_kind}; {os.cpu_count()} CPU cores")
    print(f"{photos} photos 640x480 JPEG, {epochs} timed epoch(s); images/s:")
    header = ("case", "build", "read", "pipeline", "step", "together", "pipeline/step")
    print("{:<11} {:>8} {:>9} {:>10} {:>8} {:>9} {:>14}".format(*header))
    ok = True
    for case in cases:
        f = run_case(case, os.path.join(root, case), photos, epochs)
        verdict = "ok" if f["ratio"] >= REQUIRED_RATIO else f"BELOW {REQUIRED_RATIO:.0f}x"
        ok &= f["ratio"] >= REQUIRED_RATIO
        print(
            f"{case:<11} {'cached' if f['build'] is None else round(f['build']):>8} "
            f"{f['read']:>9.0f} {f['pipeline']:>10.0f} "
            f"{f['step']:>8.1f} {f['together']:>9.1f} {f['ratio']:>9.0f}x {verdict}"
        )
    logging.info("benchmark files in %s", root)
    return ok
