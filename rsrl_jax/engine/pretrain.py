"""Pretraining the demo's backbone on the pretext corpus (`data.pretext`).

One AlexNet whose head has one logit per class of every pretext label, concatenated in
`pretext.LABELS` order; the loss is the sum over labels of each label's softmax
cross-entropy on its own slice of the logits (multi-task classification, as DB-CNN's
distortion type-and-level pretraining). The backbone (conv1..fc7) is what a run keeps
(`models.pretrained.save`); the pretext head is dropped, as ImageNet's is.

  python -m rsrl_jax.pretrain --config=configs/pretext.py
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from rsrl_jax import config as config_lib
from rsrl_jax import errors, files
from rsrl_jax.data import pretext
from rsrl_jax.data.preprocess import normalize, random_flips
from rsrl_jax.engine import train
from rsrl_jax.models import pretrained
from rsrl_jax.run.progress import Progress

# [start, end) of each label's logits in the head's output.
_SIZES = tuple(pretext.LABELS.values())
SLICES = tuple(zip(np.cumsum((0,) + _SIZES[:-1]).tolist(), np.cumsum(_SIZES).tolist(), strict=True))


def pretext_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Sum over labels of the batch-mean cross-entropy. logits [B, sum(LABELS)], labels [B, L]."""
    total = 0.0
    for j, (start, end) in enumerate(SLICES):
        total += optax.softmax_cross_entropy_with_integer_labels(
            logits[:, start:end], labels[:, j]
        ).mean()
    return total


def predictions(logits: jax.Array) -> jax.Array:
    """Each label's predicted class: [B, L] int32 from logits [B, sum(LABELS)]."""
    return jnp.stack([jnp.argmax(logits[:, s:e], -1) for s, e in SLICES], axis=-1)


def he_scaled(params: dict) -> dict:
    """Kernels scaled by sqrt(2): He et al. (2015)'s variance 2/fan_in for ReLU layers.

    Flax's default (LeCun, 1/fan_in) halves a ReLU network's activation variance at every
    layer; from scratch that slowed learning the pretext labels (blur level: held-out
    accuracy 0.47 against 0.59 after 12 epochs of 4000 photos).
    """
    return {
        layer: {**leaves, "kernel": leaves["kernel"] * np.float32(np.sqrt(2.0))}
        for layer, leaves in params.items()
    }


def make_pretrain_step(model, tx):
    """Returns train_step(params, opt_state, images uint8 [B,S,S,3], labels [B,L], key)
    -> (params, opt_state, loss); jitted, random horizontal flips (no label depends on
    left and right)."""

    def step(params, opt_state, images, labels, key):
        flip_key, dropout_key = jax.random.split(key)
        x = random_flips(normalize(images), flip_key)

        def loss_fn(p):
            logits = model.apply({"params": p}, x, train=True, rngs={"dropout": dropout_key})
            return pretext_loss(logits, labels)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1))


def make_predict_step(model):
    """Returns predict(params, images uint8) -> [B, L] predicted classes; jitted."""

    def predict(params, images):
        return predictions(model.apply({"params": params}, normalize(images), train=False))

    return jax.jit(predict)


def accuracy_per_label(predict, params, photos: pretext.PretextPhotos, batch: int) -> dict:
    """{label: accuracy} over `photos` (the last partial batch padded and dropped)."""
    n = len(photos.labels)
    correct = np.zeros(len(pretext.LABELS))
    for start in range(0, n, batch):
        images = photos.images[start : start + batch]
        real = len(images)
        if real < batch:
            images = np.concatenate(
                [images, np.zeros((batch - real,) + images.shape[1:], np.uint8)]
            )
        pred = np.asarray(predict(params, images))[:real]
        correct += (pred == photos.labels[start : start + real]).sum(0)
    return {name: float(c / n) for name, c in zip(pretext.LABELS, correct, strict=True)}


def chance_per_label(labels: np.ndarray) -> dict:
    """{label: share of its most common class}: what always guessing that class scores."""
    return {
        name: float(np.bincount(labels[:, j]).max() / len(labels))
        for j, name in enumerate(pretext.LABELS)
    }


def pretrain(config: ml_collections.ConfigDict) -> dict:
    """Generates the corpus, pretrains, and returns {params, accuracy, chance, seconds}.

    `config`: a `configs/pretext.py` config (refused with errors.ConfigError naming the
    field if pretraining cannot use it: `config.validate_pretext`).
    Training and held-out photos come from seeds `pretext.seed` and `pretext.seed + 1`
    of the pretext stream. Deterministic given the config.
    """
    config_lib.validate_pretext(config)
    c = config.pretext
    t0 = time.perf_counter()
    logging.info("pretext corpus: %d training + %d held-out photos", c.num_train, c.num_heldout)
    train_set = pretext.generate(c.num_train, config.data.image_size, c.seed)
    heldout = pretext.generate(c.num_heldout, config.data.image_size, c.seed + 1)
    data_s = time.perf_counter() - t0

    model = train.make_model(config, sum(pretext.LABELS.values()))
    params = he_scaled(train.init_params(model, config.data.image_size, config.seed))
    steps_per_epoch = c.num_train // config.train.batch_size
    total = steps_per_epoch * config.train.epochs
    # One epoch of warm-up: Adam's first full-size steps at this rate leave a plain ReLU
    # network without normalisation layers dead (measured: loss stuck at chance).
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, config.train.learning_rate, min(steps_per_epoch, total // 2), total
    )
    tx = optax.chain(optax.add_decayed_weights(config.train.weight_decay), optax.adam(schedule))
    opt_state = tx.init(params)
    step = make_pretrain_step(model, tx)
    predict = make_predict_step(model)
    rng = np.random.default_rng(config.seed)
    key = jax.random.key(config.seed)
    bs = config.train.batch_size
    progress = Progress("pretext training", total * bs)
    for epoch in range(config.train.epochs):
        order = rng.permutation(c.num_train)
        losses = []
        for s in range(steps_per_epoch):
            idx = np.sort(order[s * bs : (s + 1) * bs])
            key, sub = jax.random.split(key)
            params, opt_state, loss = step(
                params, opt_state, train_set.images[idx], train_set.labels[idx], sub
            )
            losses.append(loss)
            progress.update(bs)
        accuracy = accuracy_per_label(predict, params, heldout, config.train.eval_batch_size)
        logging.info(
            "pretext epoch %d: loss %.3f; held-out accuracy %s",
            epoch + 1,
            float(np.mean(jax.device_get(losses))),
            ", ".join(f"{k} {v:.2f}" for k, v in accuracy.items()),
        )
    return {
        "params": jax.device_get(params),
        "accuracy": accuracy,
        "chance": chance_per_label(heldout.labels),
        "data_seconds": data_s,
        "seconds": time.perf_counter() - t0,
    }


SHIPPED_NAME = "demo_alexnet"


def git_commit() -> str:
    """The source tree's git commit (with '+changes' if it differs from it), or 'unknown'."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def run(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout.strip()

    try:
        commit = run("rev-parse", "HEAD")
        return commit + ("+changes" if run("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_backbone(config: ml_collections.ConfigDict, out_dir: str, command: str) -> tuple:
    """Pretrains (`pretrain`) and writes `out_dir/demo_alexnet.npz` (conv1..fc7, float16)
    and `demo_alexnet.json`, its provenance (`write_record`). Returns (npz path, record).
    `out_dir` is made and written to first: an unwritable one is refused before the minutes
    of training, not after."""
    check_out_dir(out_dir)
    result = pretrain(config)
    backbone = {k: v for k, v in result["params"].items() if k in pretrained.BACKBONE}
    file = pretrained.save(backbone, out_dir, SHIPPED_NAME + ".npz", np.float16)
    return file, write_record(config, result, file, command)


def check_out_dir(out_dir: str) -> None:
    """Makes `out_dir` and writes (and removes) a file in it; errors.DataError naming it and
    why when it cannot be written."""
    import tempfile

    try:
        os.makedirs(out_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as e:
        why = "a file, not a folder" if os.path.isfile(out_dir) else e.strerror or str(e)
        raise errors.DataError(
            f"{out_dir}: cannot write the backbone there ({why}): give a writable folder"
        ) from e


def write_record(config: ml_collections.ConfigDict, result: dict, file: str, command: str):
    """Writes the provenance of the weights `file` beside it (`NAME.json`, atomically):
    command, seed, commit, SHA-256 of the file, network size, held-out pretext accuracy and
    chance per label, config, seconds. Returns the record (with its own path as `file`)."""
    record = {
        "file": pretrained.record_file(file),
        "command": command,
        "seed": config.seed,
        "pretext_seed": config.pretext.seed,
        "commit": git_commit(),
        "sha256": pretrained.sha256(file),
        "network": {
            "image_size": config.data.image_size,
            "width": config.model.width,
            "fc_dim": config.model.fc_dim,
        },
        "training": "Adam, one epoch of linear warm-up then cosine decay to 0, He-initialised "
        "kernels, random horizontal flips; the loss: the sum of each label's cross-entropy",
        "labels": dict(pretext.LABELS),
        "pretext_accuracy": result["accuracy"],
        "chance": result["chance"],
        "seconds": round(result["seconds"], 1),
        "jax": jax.__version__,
        "config": json.loads(config.to_json()),
    }
    record_json = json.dumps({k: v for k, v in record.items() if k != "file"}, indent=1)
    files.write_atomic(record["file"], record_json + "\n")
    return record
