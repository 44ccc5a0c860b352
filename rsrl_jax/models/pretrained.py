"""Converted ImageNet weights: their file, a check before any work, and round 1's start.

`python -m rsrl_jax.convert --out=DIR` writes `DIR/alexnet_imagenet.npz`: the Flax params of
the whole torchvision AlexNet (ImageNet head included), one array per `layer/kernel` and
`layer/bias`. `model.pretrained` names DIR (or the .npz itself). A run takes the backbone
(conv1..fc7) from it and gives the network a fresh N-way head, as the paper's transfer
learning did. numpy only: training never imports torch, and `allow_pickle=False` keeps any
code out of the file.
"""

import os
import zipfile

import ml_collections
import numpy as np
from absl import logging

from rsrl_jax import errors
from rsrl_jax.engine import train
from rsrl_jax.models.alexnet import TORCHVISION_LAYERS, AlexNet, torchvision_shapes

WEIGHTS_FILE = "alexnet_imagenet.npz"
BACKBONE = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")


def convert_hint(path: str) -> str:
    out = path if path and not os.path.splitext(path)[1] else "DIR"
    return (
        "convert torchvision's alexnet-owt-7be5be79.pth first: python -m rsrl_jax.convert "
        f"--torch_weights=alexnet-owt-7be5be79.pth --out={out} (needs pip install -e "
        "'.[convert]') and pass that folder as model.pretrained, or set "
        "config.model.pretrained='' to train from scratch"
    )


def weights_file(path: str) -> str:
    return os.path.join(path, WEIGHTS_FILE) if os.path.isdir(path) else path


def backbone_shapes() -> dict[str, tuple[int, ...]]:
    """`layer/kernel|bias` -> shape of the full-size backbone in this package's layout."""
    torch_shapes = torchvision_shapes()
    shapes = {}
    for torch_name, layer in TORCHVISION_LAYERS.items():
        if layer in BACKBONE:
            out, in_, *hw = torch_shapes[f"{torch_name}.weight"]
            shapes[f"{layer}/kernel"] = (*hw, in_, out)
            shapes[f"{layer}/bias"] = (out,)
    return shapes


def _array_header(zf: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of one .npy inside an .npz, from its header alone."""
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    return shape, dtype


def _backbone_problem(file: str) -> str | None:
    with zipfile.ZipFile(file) as zf:
        members = set(zf.namelist())
        for name, want in backbone_shapes().items():
            if f"{name}.npy" not in members:
                return f"{file} lacks {name!r}: not converted AlexNet weights"
            shape, dtype = _array_header(zf, f"{name}.npy")
            if shape != want or not np.issubdtype(dtype, np.floating):
                return f"{file}: {name!r} is {dtype} {shape}, expected float {want}"
    return None


def problem(path: str) -> str | None:
    """Why `path` cannot serve as `model.pretrained` (with how to fix it), or None if it can.

    Reads only the arrays' headers, so a run can check its weights before any work.
    """
    file = weights_file(path)
    if not os.path.exists(file):
        return f"no converted weights at {file}; {convert_hint(path)}"
    try:
        why = _backbone_problem(file)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        why = f"{file} is not a readable converted-weights .npz ({e})"
    return f"{why}; {convert_hint(path)}" if why else None


def save(params: dict, out_dir: str) -> str:
    """Writes `params` ({layer: {kernel, bias}}) to `out_dir/alexnet_imagenet.npz` atomically."""
    os.makedirs(out_dir, exist_ok=True)
    file = os.path.join(out_dir, WEIGHTS_FILE)
    arrays = {
        f"{layer}/{k}": np.asarray(v) for layer, leaves in params.items() for k, v in leaves.items()
    }
    tmp = file + ".partial"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, file)
    return file


def load_backbone(path: str) -> dict:
    """{conv1..fc7: {kernel, bias}} float32 from converted weights; ValueError if unusable."""
    why = problem(path)
    if why:
        raise errors.ConfigError(f"model.pretrained={path!r}: {why}")
    with np.load(weights_file(path), allow_pickle=False) as npz:
        return {
            layer: {k: np.asarray(npz[f"{layer}/{k}"], np.float32) for k in ("kernel", "bias")}
            for layer in BACKBONE
        }


def initial_params(config: ml_collections.ConfigDict, model: AlexNet, seed: int) -> dict:
    """Round 1's parameters: the converted ImageNet backbone and a fresh head, or random init.

    The head (and, from scratch, every layer) is initialised from `seed`.
    """
    params = train.init_params(model, config.data.image_size, seed)
    path = config.model.pretrained
    if not path:
        logging.info("initial weights: random init (model.pretrained=''), training from scratch")
        return params
    backbone = load_backbone(path)
    for layer, leaves in backbone.items():
        for k, v in leaves.items():
            if v.shape != params[layer][k].shape:
                raise errors.ConfigError(
                    f"model.pretrained={path!r}: {layer}/{k} is {v.shape} but the model's is "
                    f"{params[layer][k].shape}; converted weights need model.width=1.0 and "
                    "model.fc_dim=4096"
                )
    logging.info(
        "initial weights: ImageNet backbone conv1..fc7 from %s, fresh %d-way head (seed %d)",
        weights_file(path),
        model.num_classes,
        seed,
    )
    return {**params, **backbone}
