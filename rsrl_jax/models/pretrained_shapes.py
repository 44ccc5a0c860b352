"""The arrays a pretrained-weights file must hold, read from the .npz's headers alone (no
array is loaded): AlexNet's backbone (`backbone_shapes`) and ResNet-50's (`resnet_shapes`)
for a config's size, the first missing, misshapen or non-float array named, and which
network a file of another size or kind fits.
"""

import zipfile

import numpy as np

from rsrl_jax.models import resnet
from rsrl_jax.models.alexnet import CONV_CHANNELS, POOL_SIZE


def backbone_shapes(width: float = 1.0, fc_dim: int = 4096) -> dict[str, tuple[int, ...]]:
    """`layer/kernel|bias` -> shape of `AlexNet(width=width, fc_dim=fc_dim)`'s backbone.

    The defaults are torchvision's network, the one converted ImageNet weights fit.
    """
    c = [3] + [max(1, round(ch * width)) for ch in CONV_CHANNELS]
    kernels = {
        "conv1": (11, 11, c[0], c[1]),
        "conv2": (5, 5, c[1], c[2]),
        "conv3": (3, 3, c[2], c[3]),
        "conv4": (3, 3, c[3], c[4]),
        "conv5": (3, 3, c[4], c[5]),
        "fc6": (POOL_SIZE * POOL_SIZE * c[5], fc_dim),
        "fc7": (fc_dim, fc_dim),
    }
    shapes = {}
    for layer, kernel in kernels.items():
        shapes[f"{layer}/kernel"] = kernel
        shapes[f"{layer}/bias"] = kernel[-1:]
    return shapes


def resnet_shapes(width: float = 1.0) -> dict[str, tuple[int, ...]]:
    """`params/...` and `batch_stats/...` -> shape of the backbone (every layer but the
    head) of ResNet-50 with `width` times torchvision's channels, as `convert --arch=resnet50`
    writes them."""
    channels = max(1, round(resnet.TORCHVISION_WIDTH * width))
    shapes = {}
    for _, path, kind, shape in resnet._layers(resnet.RESNET50_STAGES, channels):
        name = "/".join(path)
        if kind == "conv":
            o, i, h, w = shape
            shapes[f"params/{name}/kernel"] = (h, w, i, o)
        else:
            for p in ("scale", "bias"):
                shapes[f"params/{name}/{p}"] = (shape,)
            for p in ("mean", "var"):
                shapes[f"batch_stats/{name}/{p}"] = (shape,)
    return shapes


def array_header(zf: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of one .npy inside an .npz, from its header alone."""
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    return shape, dtype


def alexnet_size(shapes: dict) -> tuple[float, int] | None:
    """(model.width, model.fc_dim) whose backbone has exactly `shapes`, if there is one."""
    width, fc_dim = shapes["conv1/kernel"][-1] / CONV_CHANNELS[0], shapes["fc7/kernel"][-1]
    return (width, fc_dim) if backbone_shapes(width, fc_dim) == shapes else None


def float_headers(file: str, names) -> tuple[dict, str | None]:
    """(name -> shape of the arrays of `names` the .npz holds, from their headers; the first
    that is not float, in words, or None)."""
    shapes = {}
    with zipfile.ZipFile(file) as zf:
        members = set(zf.namelist())
        for name in names:
            if f"{name}.npy" in members:
                shapes[name], dtype = array_header(zf, f"{name}.npy")
                if not np.issubdtype(dtype, np.floating):
                    return shapes, f"{file}: {name!r} is {dtype}, expected float"
    return shapes, None


def resnet_problem(file: str, width: float) -> str | None:
    """Why `file` holds no ResNet-50 backbone of `width` (the first bad array), or None."""
    want = resnet_shapes(width)
    shapes, why = float_headers(file, want)
    if why:
        return why
    for name, shape in want.items():
        if name not in shapes:
            return f"{file} lacks {name!r}: not converted ResNet-50 weights"
        if shapes[name] != shape:
            stem = shapes.get("params/conv1/kernel")
            fix = ""
            if stem and len(stem) == 4 and resnet_shapes(stem[-1] / 64) == shapes:
                fix = f"; these weights are for --config.model.width={stem[-1] / 64:g}"
            return (
                f"{file}: {name!r} is {shapes[name]}, but the ResNet-50 of model.width={width:g}"
                f" has {shape}{fix}"
            )
    return None


def alexnet_problem(file: str, width: float, fc_dim: int) -> str | None:
    """Why `file` holds no AlexNet backbone of `width` and `fc_dim`, or None."""
    want = backbone_shapes(width, fc_dim)
    shapes, why = float_headers(file, want)
    if why:
        return why
    for name, shape in want.items():  # the first problem in the network's order
        if name not in shapes:
            return f"{file} lacks {name!r}: not converted AlexNet weights"
        if shapes[name] != shape:
            size = alexnet_size(shapes) if len(shapes) == len(want) else None
            fix = (
                f"; these weights are for --config.model.width={size[0]:g} "
                f"--config.model.fc_dim={size[1]}"
                if size
                else ""
            )
            return (
                f"{file}: {name!r} is {shapes[name]}, but the network of "
                f"model.width={width:g}, model.fc_dim={fc_dim} has {shape}{fix}"
            )
    return None


def array_names(file: str) -> set[str]:
    """The names of the arrays in the .npz `file` (none if it cannot be read)."""
    try:
        with zipfile.ZipFile(file) as zf:
            return {n[: -len(".npy")] for n in zf.namelist()}
    except (OSError, ValueError, zipfile.BadZipFile):
        return set()


def holds_alexnet(file: str) -> bool:
    """Whether `file` holds an AlexNet backbone (of any size)."""
    names = array_names(file)
    return all(n in names for n in backbone_shapes())
