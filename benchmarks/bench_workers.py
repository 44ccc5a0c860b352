"""The sides of `python -m benchmarks`, each served from its own process.

  python -m benchmarks.bench_workers '<spec JSON>'   (started by benchmarks)

A side builds its train and forward steps of the spec's network (the full-size AlexNet, or
ResNet-50 at the spec's width and BatchNorm mode) on one fixed batch,
warms them up (compiles), says {"ready": ...} and then answers commands on stdin, one JSON
object a line: {"run": "train" | "forward", "steps": n} -> {"images_per_s": x};
{"run": "pipeline"} -> the host input pipeline's images/s (JAX side);
{"run": "stats"} -> peak memory and compile counts; {"run": "quit"}.

One process per side: each side's peak memory is its own, and neither side's threads or
caches linger into the other's timing windows.
"""

import atexit
import json
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np


def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fixed_batch(spec: dict):
    """The batch every timed step sees: uint8 NHWC photos and class labels."""
    rng = np.random.default_rng(0)
    size, batch = spec["image_size"], spec["batch_size"]
    images = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, spec["num_classes"], batch).astype(np.int32)
    return images, labels


def jax_side(spec: dict) -> dict:
    """Our real jitted steps (built as a run builds them, `bench.rig`) on one batch.

    The spec's variant fields are arguments of the build: `fast_gradients` False = XLA's own
    max-pool gradient, `cpu_options` False = XLA:CPU's default libraries ({} options).
    """
    import jax

    from benchmarks import data_benchmark, rig
    from benchmarks.run_timing import CompileLog
    from rsrl_jax.config import base_config
    from rsrl_jax.data import datasets
    from rsrl_jax.engine import train

    compile_log = CompileLog()
    config = base_config()
    config.data.num_examples = max(64, spec["batch_size"])
    config.data.image_size = spec["image_size"]
    config.train.batch_size = config.train.eval_batch_size = spec["batch_size"]
    config.model.compute_dtype = spec.get("compute_dtype", "float32")
    config.model.name = spec.get("model", "alexnet")
    config.model.width = spec.get("width", 1.0)
    config.model.batch_norm = spec.get("batch_norm", "frozen")
    config.log.progress = False
    root = tempfile.mkdtemp(prefix="rsrl-bench-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    config.data.cache_dir = os.path.join(root, "cache")
    # The variant's choices, as arguments; None = what a run on this backend uses.
    options = None if spec.get("cpu_options", True) else {}  # {}: XLA's own libraries
    fast_gradients = None if spec.get("fast_gradients", True) else False  # XLA's own gradient
    built = rig.build(
        config,
        datasets.load(config, os.path.join(root, "run")),
        fast_gradients=fast_gradients,
        train_options=options,
        forward_options=options,
    )
    placer, data = built.placer, built.data
    params = built.initial_params()
    images, labels = fixed_batch({**spec, "num_classes": data.num_classes})
    mask = np.ones(len(labels), np.float32)
    x, y, m = placer.shard(images, labels, mask)
    class_terms = built.class_terms
    key = jax.random.key(0)
    live = {"state": placer.replicate(train.new_state(params, built.tx))}
    live["sums"] = placer.replicate(train.zero_sums())

    def train_steps(n: int) -> None:
        for _ in range(n):
            live["state"], live["sums"] = built.train_step(
                live["state"], live["sums"], x, y, m, key, class_terms
            )
        jax.block_until_ready(live["sums"])

    def forward_steps(n: int) -> None:
        out = None
        for _ in range(n):
            out = built.eval_step(live["state"].params, x)
        jax.block_until_ready(out)

    def pipeline() -> float:
        indices = np.arange(len(data))
        return data_benchmark.time_pipeline(built, indices, spec["pipeline_images"])

    def stats() -> dict:
        return {
            "peak_rss_mb": peak_rss_mb(),
            "executables": {
                "train_step": built.train_step._cache_size(),
                "eval_step": built.eval_step._cache_size(),
            },
            "compiles": compile_log.by_function,
            "backend": jax.default_backend(),
            "device_kind": jax.devices()[0].device_kind,
            "device_count": jax.device_count(),
        }

    def flops() -> dict:
        """XLA's FLOP count of one compiled train step and one forward step."""
        train_args = (live["state"], live["sums"], x, y, m, key, class_terms)
        return {
            "train": step_flops(built.train_step, train_args),
            "forward": step_flops(built.eval_step, (live["state"].params, x)),
        }

    return {
        "num_classes": data.num_classes,
        "train": train_steps,
        "forward": forward_steps,
        "pipeline": pipeline,
        "stats": stats,
        "flops": flops,
    }


def step_flops(jitted, args) -> float | None:
    """FLOPs of one call from the compiled program's `cost_analysis` (None if not given)."""
    analysis = jitted.lower(*args).compile().cost_analysis()
    if isinstance(analysis, list | tuple):
        analysis = analysis[0] if analysis else {}
    value = (analysis or {}).get("flops")
    return float(value) if value is not None and value > 0 else None


def torch_net(spec: dict):
    """The spec's network in PyTorch: torchvision's AlexNet, or ResNet-50 with `channels`
    stem channels whose BatchNorm trains as our model.batch_norm (`TorchResNet.frozen_stats`).
    """
    from benchmarks import torch_alexnet

    if spec.get("model", "alexnet") == "resnet50":
        from benchmarks import torch_resnet

        frozen = spec["batch_norm"] == "frozen"
        return torch_resnet.TorchResNet(
            num_classes=spec["num_classes"], width=spec["channels"], frozen_stats=frozen
        )
    return torch_alexnet.TorchAlexNet(spec["num_classes"], spec["dropout_rate"])


def torch_side(spec: dict) -> dict:
    """The PyTorch reference with its defaults (all cores, NCHW), on the same batch."""
    import torch

    from benchmarks import torch_alexnet

    torch.manual_seed(0)
    net = torch_net(spec)
    optimizer = torch_alexnet.make_optimizer(
        net, spec["learning_rate"], spec["momentum"], spec["weight_decay"], spec["head_x"]
    )
    train_step = torch_alexnet.make_train_step(net, optimizer, flip=True)
    eval_step = torch_alexnet.make_eval_step(net)
    images, labels = fixed_batch(spec)
    x, y = torch_alexnet.nchw(images), torch.from_numpy(labels.astype(np.int64))

    def train_steps(n: int) -> None:
        loss_sum = torch.zeros(())
        for _ in range(n):
            loss, _ = train_step(x, y)
            loss_sum += loss
        float(loss_sum)

    def forward_steps(n: int) -> None:
        for _ in range(n):
            eval_step(x)

    def stats() -> dict:
        return {"peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads()}

    return {"train": train_steps, "forward": forward_steps, "stats": stats, "net": net}


def serve(spec: dict) -> None:
    """Builds the side, warms it up, then answers commands until told to quit."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not garble replies
    start = time.perf_counter()
    side = (jax_side if spec["side"] == "jax" else torch_side)(spec)
    side["train"](spec["warmup_steps"])  # compiles (JAX); a first step's allocations (both)
    side["forward"](spec["warmup_steps"])
    ready = {"ready": True, "setup_s": time.perf_counter() - start}
    if "num_classes" in side:  # the data's classes: the torch side's head gets as many
        ready["num_classes"] = side["num_classes"]
    replies.write(json.dumps(ready) + "\n")
    for line in sys.stdin:
        command = json.loads(line)
        what = command["run"]
        if what == "quit":
            return
        if what in ("train", "forward"):
            steps = command["steps"]
            begin = time.perf_counter()
            side[what](steps)
            seconds = time.perf_counter() - begin
            reply = {"images_per_s": steps * spec["batch_size"] / seconds, "seconds": seconds}
        elif what == "pipeline":
            reply = {"images_per_s": side["pipeline"]()}
        else:
            reply = side[what]()
        replies.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]))
