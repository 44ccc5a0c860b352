"""Pretrained weights: their file, a check before any work, and round 1's start.

`python -m rsrl_jax.convert --out=DIR` writes `DIR/alexnet_imagenet.npz`: the Flax params of
the whole torchvision AlexNet (ImageNet head included), one array per `layer/kernel` and
`layer/bias`; `--arch=resnet50` writes `DIR/resnet50_imagenet.npz`: ResNet-50's variables,
`params/...` and BatchNorm's running statistics `batch_stats/...` (model.name='resnet50':
the backbone is every layer but `head`, with its statistics). `model.pretrained` names DIR
(or the .npz itself), or `shipped:NAME` for
weights shipped in this package (`rsrl_jax/weights/NAME.npz`, with `NAME.json` recording
how they were made and their SHA-256; `shipped:demo_alexnet` is the demo's backbone,
pretrained by `python -m rsrl_jax.pretrain`). A run takes the backbone (conv1..fc7) from the
file and gives the network a fresh N-way head, as the paper's transfer learning did. A ViT
(`model.name` a size of `models.vit.SIZES`) reads `DIR/<size>.npz`, checked by
`models.vit_transfer`. The
file's network size must be the config's (`model.width`, `model.fc_dim`); arrays may be
stored float16 and are trained float32. numpy only: training never imports torch, and
`allow_pickle=False` keeps any code out of the file.

The arrays a file must hold, checked from its headers, are `models.pretrained_shapes`'.
"""

import hashlib
import json
import os
import re
import zipfile

import ml_collections
import numpy as np
from absl import logging
from flax import traverse_util

from rsrl_jax import errors
from rsrl_jax.models import network, pretrained_shapes, resnet, vit, vit_transfer

WEIGHTS_FILE = "alexnet_imagenet.npz"
RESNET_FILE = "resnet50_imagenet.npz"  # convert --arch=resnet50's file
BACKBONE = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
SHIPPED = "shipped:"
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "weights")


def convert_hint(path: str, arch: str = "alexnet") -> str:
    if arch in vit.SIZES:
        return vit_transfer.convert_hint(path, arch)
    if arch == "resnet50":
        shipped = path.startswith(SHIPPED)
        out = path if path and not os.path.splitext(path)[1] and not shipped else "DIR"
        return (
            "convert torchvision's resnet50-0676ba61.pth first: python -m rsrl_jax.convert "
            f"--arch=resnet50 --torch_weights=resnet50-0676ba61.pth --out={out} (needs pip "
            "install -e '.[convert]') and pass that folder as model.pretrained, or set "
            "config.model.pretrained='' to train from scratch"
        )
    if path.startswith(SHIPPED):
        names = ", ".join(shippedarray_names())
        there = f"the package ships {names}" if names else "this install ships no weights"
        return (
            f"{there}; reinstall the package if it should, make weights with python -m "
            "rsrl_jax.pretrain, or set config.model.pretrained='' to train from scratch"
        )
    out = path if path and not os.path.splitext(path)[1] else "DIR"
    return (
        "convert torchvision's alexnet-owt-7be5be79.pth first: python -m rsrl_jax.convert "
        f"--torch_weights=alexnet-owt-7be5be79.pth --out={out} (needs pip install -e "
        "'.[convert]') and pass that folder as model.pretrained, or set "
        "config.model.pretrained='' to train from scratch"
    )


def shippedarray_names() -> list[str]:
    """Names of the weights shipped in the package (`model.pretrained='shipped:NAME'`)."""
    if not os.path.isdir(SHIPPED_DIR):
        return []
    return sorted(f"{SHIPPED}{f[:-4]}" for f in os.listdir(SHIPPED_DIR) if f.endswith(".npz"))


def weights_file(path: str, arch: str = "alexnet") -> str:
    """The .npz `model.pretrained=path` names: shipped:NAME's, a folder's converted file of
    `arch` (model.name), or `path` itself."""
    if path.startswith(SHIPPED):
        name = path[len(SHIPPED) :]
        # A name, not a path: 'shipped:../x' must not leave the package's folder.
        safe = name if re.fullmatch(r"[A-Za-z0-9_.-]+", name) and name not in (".", "..") else "?"
        return os.path.join(SHIPPED_DIR, safe + ".npz")
    if os.path.isdir(path) and arch in vit.SIZES:
        return os.path.join(path, vit_transfer.file_name(arch))
    if os.path.isdir(path):
        return os.path.join(path, RESNET_FILE if arch == "resnet50" else WEIGHTS_FILE)
    return path


def provenance(path: str, arch: str = "alexnet") -> dict | None:
    """The JSON record beside the weights of `arch` at `path` (`NAME.json` beside
    `NAME.npz`, as the pretrain command writes and the package ships them: command, seed,
    commit, sha256, accuracy), or None if there is none. A record that cannot be read counts
    as none."""
    record = record_file(weights_file(path, arch))
    try:
        with open(record) as f:
            value = json.load(f)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and "sha256" in value else None


def record_file(file: str) -> str:
    return os.path.splitext(file)[0] + ".json"


def sha256(file: str) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resnet_width(path: str) -> float | None:
    """`model.width` of the ResNet-50 whose converted weights are at `path` (conv1's
    channels / 64), from the array's header; None when there are none to read."""
    try:
        with zipfile.ZipFile(weights_file(path, "resnet50")) as zf:
            shape = pretrained_shapes.array_header(zf, "params/conv1/kernel.npy")[0]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    return shape[-1] / resnet.TORCHVISION_WIDTH if len(shape) == 4 else None


def network_size(path: str) -> tuple[float, int] | None:
    """(model.width, model.fc_dim) of the network the weights at `path` fit, read from the
    arrays' headers; None when the file is missing, unreadable or of no AlexNet's shapes."""
    try:
        with zipfile.ZipFile(weights_file(path)) as zf:
            members = set(zf.namelist())
            shapes = {
                name: pretrained_shapes.array_header(zf, f"{name}.npy")[0]
                for name in pretrained_shapes.backbone_shapes()
                if f"{name}.npy" in members
            }
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    return (
        pretrained_shapes.alexnet_size(shapes)
        if len(shapes) == len(pretrained_shapes.backbone_shapes())
        else None
    )


def problem(
    path: str, width: float = 1.0, fc_dim: int = 4096, arch: str = "alexnet", act: str = ""
) -> str | None:
    """Why `path` cannot serve as `model.pretrained` of a network `arch` (model.name) of
    `width` and `fc_dim` (AlexNet's; a ViT's activation `act`, model.vit_act) (with how to
    fix it), or None if it can.

    Reads only the arrays' headers (and hashes shipped weights against their record), so a
    run can check its weights before any work.
    """
    file = weights_file(path, arch)
    if not os.path.exists(file) and arch in vit.SIZES:
        others = vit_transfer.others_in(path, arch)
        fix = (
            f"{path} holds {others[0]}.npz: set --config.model.name={others[0]}, or "
            if others
            else ""
        )
        return f"no converted weights at {file}; {fix}{convert_hint(path, arch)}"
    if not os.path.exists(file):
        other = "resnet50" if arch == "alexnet" else "alexnet"
        if os.path.isdir(path) and os.path.exists(weights_file(path, other)):
            return (
                f"no converted weights at {file}: {path} holds {weights_file(path, other)}, "
                f"converted {'ResNet-50' if other == 'resnet50' else 'AlexNet'} weights: set "
                f"--config.model.name={other}, or {convert_hint(path, arch)}"
            )
        return f"no converted weights at {file}; {convert_hint(path, arch)}"
    record = provenance(path, arch)
    if record is None and path.startswith(SHIPPED):
        return (
            f"{file} has no readable record {record_file(file)} to check it against: "
            "reinstall the package"
        )
    if record is not None and sha256(file) != record["sha256"]:
        return (
            f"{file} does not match the SHA-256 in its record {record_file(file)}: the file "
            "changed after it was written; reinstall the package (shipped weights) or write "
            "it again"
        )
    try:
        if arch in vit.SIZES:
            shapes, why = pretrained_shapes.float_headers(file, vit_transfer.backbone_shapes(arch))
            why = why or vit_transfer.weights_problem(file, arch, act, record, shapes)
        elif arch == "resnet50":
            why = pretrained_shapes.resnet_problem(file, width)
        else:
            why = pretrained_shapes.alexnet_problem(file, width, fc_dim)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        why = f"{file} is not a readable converted-weights .npz ({e})"
    if why and ("these weights are for" in why or arch in vit.SIZES and "--config.model." in why):
        return why  # a readable file of another size: the fix is the config's size
    if why and arch == "resnet50" and pretrained_shapes.holds_alexnet(file):
        why += " (it holds AlexNet weights: set --config.model.name=alexnet)"
    elif why and arch == "alexnet" and "params/conv1/kernel" in pretrained_shapes.array_names(file):
        why += " (it holds ResNet-50 weights: set --config.model.name=resnet50)"
    return f"{why}; {convert_hint(path, arch)}" if why else None


def save(tree: dict, out_dir: str, file_name: str = WEIGHTS_FILE, dtype=None) -> str:
    """Writes nested dicts of arrays (`params` {layer: {kernel, bias}}, or variables
    {collection: {module: ...}}) to `out_dir/file_name` atomically, one array per
    `/`-joined path (`conv1/kernel`), as `dtype` (None = as they are; float16 halves a
    shipped file)."""
    os.makedirs(out_dir, exist_ok=True)
    file = os.path.join(out_dir, file_name)
    arrays = {k: np.asarray(v, dtype) for k, v in traverse_util.flatten_dict(tree, sep="/").items()}
    tmp = file + ".partial"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, file)
    return file


def read_variables(file: str) -> dict:
    """The nested dicts `save` wrote, as float32 numpy arrays (no pickles: no code runs)."""
    with np.load(file, allow_pickle=False) as npz:
        flat = {k: np.asarray(npz[k], np.float32) for k in npz.files}
    return traverse_util.unflatten_dict(flat, sep="/")


def load_backbone(path: str, width: float = 1.0, fc_dim: int = 4096, arch: str = "alexnet") -> dict:
    """The backbone of pretrained weights for a network `arch` of `width` and `fc_dim`, float32:
    AlexNet's {conv1..fc7: {kernel, bias}}; ResNet-50's every layer but the head, with its
    BatchNorm statistics under `models.network.STATS` (the engine's network state).
    errors.ConfigError (a ValueError) if unusable."""
    why = problem(path, width, fc_dim, arch)
    if why:
        raise errors.ConfigError(f"model.pretrained={path!r}: {why}")
    file = weights_file(path, arch)
    try:
        with np.load(file, allow_pickle=False) as npz:
            if arch in vit.SIZES:
                names = vit_transfer.backbone_shapes(arch)
                flat = {n: np.asarray(npz[n], np.float32) for n in names}
                return traverse_util.unflatten_dict(flat, sep="/")
            if arch == "resnet50":
                flat = {
                    n: np.asarray(npz[n], np.float32)
                    for n in pretrained_shapes.resnet_shapes(width)
                }
                tree = traverse_util.unflatten_dict(flat, sep="/")
                return {**tree["params"], network.STATS: tree["batch_stats"]}
            return {
                layer: {k: np.asarray(npz[f"{layer}/{k}"], np.float32) for k in ("kernel", "bias")}
                for layer in BACKBONE
            }
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # damaged past its headers
        raise errors.ConfigError(
            f"model.pretrained={path!r}: {file} cannot be read ({e}); {convert_hint(path, arch)}"
        ) from None


BACKBONE_WORDS = {"resnet50": "conv1..layer4 with its BatchNorm statistics"}


def initial_params(config: ml_collections.ConfigDict, model, seed: int, view=None) -> dict:
    """Round 1's network state: the pretrained backbone (ResNet's with its BatchNorm
    statistics) and a fresh head, or random init.

    The head (and, from scratch, every layer) is initialised from `seed`. `view`: the
    network's input (`data.inputs`); None = photos of `data.image_size`.
    """
    view = view or config.data.image_size
    path = config.model.pretrained
    if not path:
        params = network.init_params(model, view, seed)  # logged once made (the run's timeline)
        logging.info("initial weights: random init (model.pretrained=''), training from scratch")
        return params
    arch = config.model.get("name", "alexnet")
    backbone = load_backbone(path, config.model.width, config.model.fc_dim, arch)
    # Only the fresh layers are drawn: initialising the whole network only to replace its
    # backbone took ResNet-50 12 s of compiling on a 2-core CPU.
    params = network.init_params(model, view, seed, skip=frozenset(backbone))
    record = provenance(path, arch)
    made = (
        f" (SHA-256 {record['sha256'][:16]} as its record says; made by "
        f"{record.get('command', '?')!r} at commit {record.get('commit', '?')})"
        if record
        else ""
    )
    logging.info(
        "initial weights: pretrained backbone %s from %s%s, fresh %d-way head (seed %d)",
        BACKBONE_WORDS.get(arch, "every layer but the head" if arch in vit.SIZES else "conv1..fc7"),
        weights_file(path, arch),
        made,
        model.num_classes,
        seed,
    )
    return {**params, **backbone}
