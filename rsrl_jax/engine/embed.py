"""A photo folder to an embeddings file: the penultimate features of an AlexNet or ResNet-50.

  python -m rsrl_jax.embed --weights=WEIGHTS --out=DIR [--fold=F] [--round=I] PHOTOS

writes `DIR/embeddings.npz` (the layout `data.embeddings` reads) and `DIR/embeddings.json`
(where the features came from). The features are the penultimate layer in evaluation mode,
float32: AlexNet's fc7 activations after its ReLU (`AlexNet.features`, no dropout) [N, fc_dim];
ResNet-50's globally average-pooled layer4 (`ResNet.features`, BatchNorm's running
statistics) [N, 2048 * model.width].

WEIGHTS (`backbone`): `shipped:NAME` (weights in the package), converted ImageNet weights
(a folder or .npz of `python -m rsrl_jax.convert`), both at the network size their arrays
have and at `image_size` (default: the shipped record's, else 224); or a finished run's
workdir on photos, whose round's network (default the round chosen on validation) reads
photos as the run read them (its data.stored_size, image_size, max_pixels).

Each photo is decoded to an upright RGB square of the stored size and fed its central
`image_size` crop, ImageNet-normalised: the evaluation view of the one preprocessing
(`data.preprocess`), as a run evaluates its photos. PHOTOS with a scores.csv is read as
folder data are (`data.sources.read_folder`, decoded once into the prepared cache): the rows
come with their scores (any integer: the training run checks data.score_range) and the ids
are the photos' keys (paths under images/). PHOTOS without one: every photo under
PHOTOS/images/ (else PHOTOS), ids their paths relative to it, and no 'scores': a file for
predict only. A bad row or photo stops, naming it, or with `on_bad_example='skip'` is left
out and listed in DIR/skipped.jsonl.
"""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from rsrl_jax import errors, workdir_files
from rsrl_jax.config import base_config
from rsrl_jax.data import builders, datasets, embeddings, inputs, preprocess, user_photos
from rsrl_jax.engine import placement, train
from rsrl_jax.models import pretrained, resnet, weights_kind
from rsrl_jax.models.alexnet import MIN_IMAGE_SIZE, AlexNet
from rsrl_jax.run import checkpoints
from rsrl_jax.run.progress import Progress

LAYER = "fc7 after its ReLU (AlexNet.features, the penultimate layer), evaluation mode"
RESNET_LAYER = (
    "layer4 globally average-pooled (ResNet.features, the head's input), evaluation mode "
    "(BatchNorm's running statistics)"
)


def layer_of(model) -> str:
    """What `model.features` is, in words (the record's `layer`)."""
    return RESNET_LAYER if isinstance(model, resnet.ResNet) else LAYER


IMAGENET_SIZE = 224  # converted ImageNet weights' input side, unless --image_size says
RECORD = "embeddings.json"
ANY_SCORE = (-(2**31), 2**31 - 1)  # embed keeps every integer score; training checks its range


@dataclasses.dataclass(frozen=True)
class Backbone:
    """A network of photos and how to read photos for it."""

    name: str  # the weights as given, with the round of a workdir's
    model: AlexNet
    params: dict
    options: preprocess.PhotoOptions

    def features_step(self):
        """jitted (params, uint8 photos [B, S', S', 3] at their stored size) -> float32
        penultimate features [B, F] (`layer_of`) of their central `image_size` crop."""
        view = inputs.PhotoInput(self.options.image_size)

        def step(params, photos):
            x = self.model.apply(train.variables(params), view.eval_view(photos), method="features")
            return x.astype(jnp.float32)

        return jax.jit(step)


def backbone(weights: str, fold: int = 0, round_: int | None = None, image_size: int = 0):
    """The `Backbone` of `weights` (module docstring); errors.ConfigError naming --weights
    when it cannot serve."""
    if os.path.isfile(workdir_files.WorkdirFiles(weights).config):  # a run's workdir
        return _run_backbone(weights, fold, round_, image_size)
    _refuse_other_kinds(weights)
    size = pretrained.network_size(weights)
    res_width = None if size else pretrained.resnet_width(weights)
    arch = "resnet50" if res_width is not None else _arch_of_unreadable(weights, size)
    if arch == "resnet50":
        why = pretrained.problem(weights, res_width or 1.0, arch="resnet50")
    else:
        why = pretrained.problem(weights, *(size or (1.0, 4096)))
    if why:
        raise errors.ConfigError(f"--weights={weights}: {why}")
    resnet_file = pretrained.weights_file(weights, "resnet50")
    if size and os.path.isdir(weights) and os.path.exists(resnet_file):
        logging.warning(
            "%s holds AlexNet's and ResNet-50's converted weights: embedding with AlexNet's "
            "(give --weights=%s for ResNet-50's)",
            weights,
            resnet_file,
        )
    record = pretrained.provenance(weights, arch) or {}
    side = image_size or record.get("network", {}).get("image_size") or IMAGENET_SIZE
    smallest = 32 if arch == "resnet50" else MIN_IMAGE_SIZE
    if side < smallest:
        raise errors.ConfigError(
            f"--image_size={side}: {'ResNet-50' if arch == 'resnet50' else 'AlexNet'} needs "
            f"at least {smallest} pixels"
        )
    if res_width is not None:  # every layer but the head, with BatchNorm's statistics
        channels = max(1, round(resnet.TORCHVISION_WIDTH * res_width))
        model = resnet.ResNet50(1, width=channels, fast_gradients=train.fast_pool_gradients())
        params = pretrained.load_backbone(weights, res_width, arch="resnet50")
    else:
        width, fc_dim = size
        model = AlexNet(num_classes=1, width=width, fc_dim=fc_dim)
        params = pretrained.load_backbone(weights, width, fc_dim)  # conv1..fc7: no head needed
    default = base_config().data.max_pixels
    options = preprocess.PhotoOptions(stored_size=side, image_size=side, max_pixels=default)
    return Backbone(weights, model, params, options)


def _refuse_other_kinds(weights: str) -> None:
    """ConfigError naming what --weights holds when it is a converted ViT (pass its --arch)
    or an embeddings file, either itself or as a folder's only such file."""
    files = [weights] if not os.path.isdir(weights) else weights_kind.in_folder(weights)
    kinds = [weights_kind.kind_of(f) for f in files]
    if any(k.name in ("alexnet", "resnet50") for k in kinds if k):
        return
    for file, kind in zip(files, kinds, strict=True):
        if kind and kind.name == "vit":
            raise errors.ConfigError(
                f"--weights={weights}: {file} is {kind.what}: pass --arch={kind.arch}"
            )
        if kind and kind.name == "embeddings":
            raise errors.ConfigError(
                f"--weights={weights}: {file} is {kind.what}; give shipped:NAME, converted "
                "ImageNet weights, a run's workdir, or --arch with a converted ViT"
            )


def _arch_of_unreadable(weights: str, size) -> str:
    """Which network's problem to name for weights neither network reads: the ResNet-50
    file's when only it is there (a folder) or the name says so (a file)."""
    if size:
        return "alexnet"
    if os.path.isdir(weights):
        alexnet = os.path.exists(pretrained.weights_file(weights, "alexnet"))
        resnet_ = os.path.exists(pretrained.weights_file(weights, "resnet50"))
        return "resnet50" if resnet_ and not alexnet else "alexnet"
    return "resnet50" if "resnet" in os.path.basename(weights).lower() else "alexnet"


def _run_backbone(workdir: str, fold: int, round_: int | None, image_size: int) -> Backbone:
    config = checkpoints.read_json(workdir, workdir_files.CONFIG)
    if inputs.reads_features(config):
        raise errors.ConfigError(
            f"--weights={workdir}: a run on embeddings (data.name='embeddings'): its network "
            "reads feature vectors, not photos; give a run on photos, shipped:NAME or "
            "converted ImageNet weights"
        )
    round_ = checkpoints.chosen_round(workdir, fold) if round_ is None else round_
    config, model, params, _ = checkpoints.load_network(workdir, fold, round_)
    if image_size and image_size != config.data.image_size:
        raise errors.ConfigError(
            f"--image_size={image_size}: the network of {workdir} reads its run's "
            f"data.image_size={config.data.image_size}; leave --image_size out"
        )
    options = preprocess.photo_options(config)
    return Backbone(f"{workdir} fold {fold} round {round_}", model, params, options)


def embed_folder(
    bb: Backbone,
    photos: str,
    out_dir: str,
    on_bad_example: str = "error",
    batch_size: int = 64,
    cache_dir: str = "",
) -> str:
    """Writes `out_dir`/embeddings.npz (and embeddings.json) of the photos of the folder
    `photos` through `bb`; returns the file's path. errors.DataError for bad rows or photos
    (`on_bad_example='error'`) or a folder without any photo."""
    if not os.path.isdir(photos):
        raise errors.ConfigError(f"{photos}: no such folder of photos")
    logging.info("photos are read as %s: %s", bb.name, bb.options.describe())
    placer = placement.BatchPlacer(placement.make_mesh(jax.devices()[:1]))
    step = bb.features_step()
    if os.path.isfile(os.path.join(photos, "scores.csv")):
        data = _load_folder(_folder_config(bb, photos, on_bad_example, cache_dir), out_dir)
        progress = Progress("embed: features", len(data), "img")
        indices = np.arange(len(data))
        x = placement.predict_logits(
            step, bb.params, data.images, indices, batch_size, placer, progress
        )
        ids, scores = data.keys, np.asarray(data.class_scores)[data.labels]
        skipped = len(data.skipped)
    else:
        x, ids, skipped = _embed_unscored(
            bb, step, placer, photos, out_dir, on_bad_example, batch_size
        )
        scores = None
    path = embeddings.write(out_dir, x, ids, scores)
    record = {
        "weights": bb.name,
        "layer": layer_of(bb.model),
        "photos": os.path.abspath(photos),
        "photo_options": dataclasses.asdict(bb.options),
        "rows": len(x),
        "features": int(x.shape[1]),
        "scores": scores is not None,
        "skipped": skipped,
    }
    with open(os.path.join(out_dir, RECORD), "w") as f:
        json.dump(record, f, indent=1)
    logging.info(
        "wrote %d rows of %d features (%s) to %s; %d skipped",
        len(x),
        x.shape[1],
        "with scores" if scores is not None else "no scores: for predict only",
        path,
        skipped,
    )
    return path


def _folder_config(bb: Backbone, photos: str, on_bad: str, cache_dir: str):
    """The folder data config that reads `photos` as the backbone needs them."""
    config = base_config()
    config.data.name = "folder"
    config.data.dir = os.path.abspath(photos)
    config.data.image_size = bb.options.image_size
    config.data.stored_size = bb.options.stored_size
    config.data.max_pixels = bb.options.max_pixels
    config.data.score_range = ANY_SCORE
    config.data.on_bad_example = on_bad
    config.data.cache_dir = cache_dir
    return config


def _load_folder(config, out_dir: str) -> datasets.Dataset:
    """The folder's photos and scores, as a run reads them; the advice of a bad row's message
    names this command's flag and its --out folder instead of a run's."""
    try:
        return datasets.load(config, out_dir)
    except builders.BadExample as e:
        text = str(e).replace("config.data.on_bad_example=skip", "--on_bad_example=skip")
        raise builders.BadExample(text.replace("the workdir's", "the --out folder's")) from None


def _embed_unscored(bb, step, placer, photos, out_dir, on_bad, batch_size):
    """(features [N, F], ids [N], skipped count) of every photo under `photos`/images (else
    `photos`), read a batch at a time."""
    root = (
        os.path.join(photos, "images") if os.path.isdir(os.path.join(photos, "images")) else photos
    )
    found = user_photos.expand_paths([root], recursive=True)
    progress = Progress("embed: features", len(found), "file")
    features, ids, skipped = [], [], []
    for start in range(0, len(found), batch_size):
        read = [user_photos.read_photo(f, bb.options) for f in found[start : start + batch_size]]
        batch = []
        for entry, (photo, line) in zip(found[start : start + batch_size], read, strict=True):
            if photo is not None:
                batch.append(photo)
                ids.append(os.path.relpath(entry.path, root))
            elif "skipped" in line:  # not a photo (notes.txt, hidden files): nothing to embed
                logging.info("not embedded: %s: %s", line["path"], line["skipped"])
            elif on_bad == "error":
                raise builders.BadExample(
                    f"{line['error']} (set --on_bad_example=skip to leave bad photos out; each "
                    f"is then listed in {workdir_files.WorkdirFiles(out_dir).skipped})"
                )
            else:
                item = os.path.relpath(entry.path, root)
                skipped.append({"item": item, "where": entry.path, "reason": line["error"]})
                logging.warning("skipped %s: %s", entry.path, line["error"])
        if batch:
            photos_ = np.stack(batch)
            features.append(
                placement.predict_logits(
                    step, bb.params, photos_, np.arange(len(batch)), batch_size, placer
                )
            )
        progress.update(len(read))
    if on_bad == "skip":
        builders.write_skipped(out_dir, skipped)
    if not features:
        raise errors.DataError(
            f"{root}: no photo to embed ({len(skipped)} skipped as bad, {len(found)} files found)"
        )
    return np.concatenate(features), np.array(ids), len(skipped)
