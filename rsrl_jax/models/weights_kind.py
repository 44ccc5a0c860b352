"""What a .npz given as weights holds, told from the JSON record beside it and its array
names alone (no array is read), so `embed` and `convert` can refuse a file of another kind
by naming what it is and the flag that reads it, instead of a key or digest it lacks.

Kinds: a converted ViT (`convert --arch=<size>`: its record's `arch`), an embeddings file
(`embed`'s output: an `embeddings` array), converted AlexNet (`conv1/kernel` .. `fc7`) or
ResNet-50 (`params/conv1/kernel`) weights.
"""

import dataclasses
import json
import os
import zipfile

from rsrl_jax.models import vit

ALEXNET_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")


@dataclasses.dataclass(frozen=True)
class Kind:
    """`name`: 'vit', 'embeddings', 'alexnet' or 'resnet50'; `what`: the words for it;
    `arch`: the ViT size (`models.vit.SIZES`) for a converted ViT, else ''."""

    name: str
    what: str
    arch: str = ""


def _record(file: str) -> dict:
    try:
        with open(os.path.splitext(file)[0] + ".json") as f:
            value = json.load(f)
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _names(file: str) -> set[str]:
    try:
        with zipfile.ZipFile(file) as zf:
            return {n.removesuffix(".npy") for n in zf.namelist()}
    except (OSError, ValueError, zipfile.BadZipFile):
        return set()


def kind_of(file: str) -> Kind | None:
    """The `Kind` of the .npz `file`, or None when it is none of them (or unreadable)."""
    if not os.path.isfile(file):
        return None
    arch = _record(file).get("arch")
    if isinstance(arch, str) and arch in vit.SIZES:
        return Kind("vit", f"a converted ViT (its record says arch={arch})", arch)
    names = _names(file)
    if "embeddings" in names:
        return Kind("embeddings", "an embeddings file (embed's vectors, not a network's weights)")
    if "params/conv1/kernel" in names:
        return Kind("resnet50", "converted ResNet-50 weights")
    if all(f"{layer}/kernel" in names for layer in ALEXNET_LAYERS):
        return Kind("alexnet", "converted AlexNet weights")
    return None


def in_folder(folder: str) -> list[str]:
    """The .npz files of `folder` that have a kind, sorted (what a folder given as
    --weights holds)."""
    if not os.path.isdir(folder):
        return []
    found = sorted(f for f in os.listdir(folder) if f.endswith(".npz"))
    return [os.path.join(folder, f) for f in found if kind_of(os.path.join(folder, f))]
