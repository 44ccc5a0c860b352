"""Converts torchvision's ImageNet AlexNet or ResNet-50 weights into .npz files.

  python -m rsrl_jax.convert --torch_weights=alexnet-owt-7be5be79.pth --out=weights/alexnet
  python -m rsrl_jax.convert --arch=resnet50 --torch_weights=resnet50-0676ba61.pth --out=DIR

First checks the file against its name: torchvision (and torch.hub) names a weights file
after the first hex digits of its SHA-256 (`alexnet-owt-7be5be79.pth`), so a corrupt,
truncated or different file is refused, naming both digests, before it is loaded; a name
without such digits is not checked, and the file's SHA-256 is printed to record. Reads the
.pth with `torch.load(weights_only=True)`, so no code inside the file ever runs; refuses
anything that is not the architecture's torchvision state dict, naming the first mismatch
(and the other architecture, if the file is that one's); writes `DIR/alexnet_imagenet.npz`
(params, what `model.pretrained` loads: `rsrl_jax.pretrained`) or `DIR/resnet50_imagenet.npz`
(params and batch_stats, `models.resnet.params_from_torchvision`). Needs torch, which
training never imports: pip install -e '.[convert]'.
"""

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np
from absl import logging
from flax import traverse_util

from rsrl_jax import errors
from rsrl_jax.models import alexnet, pretrained, resnet, vit_weights


class Arch(NamedTuple):
    """What `--arch` converts: torchvision's file, the port, the file written."""

    title: str
    url: str  # torchvision's ImageNet weights
    port: Callable[[Mapping], dict]  # state dict -> the nested arrays `pretrained.save` writes
    out_file: str


ARCHS = {
    "alexnet": Arch(
        "AlexNet",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        alexnet.params_from_torchvision,
        pretrained.WEIGHTS_FILE,
    ),
    "resnet50": Arch(
        "ResNet-50",
        "https://download.pytorch.org/models/resnet50-0676ba61.pth",
        resnet.params_from_torchvision,  # its defaults are ResNet-50's
        "resnet50_imagenet.npz",
    ),
}

# torch.hub's HASH_REGEX (`-([a-f0-9]*)\.`), anchored to the name's end and to at least
# the 8 digits torchvision uses, so a date or version in a name is not taken for a digest.
# A browser's, wget's or a file manager's second copy keeps the digest: `name-7be5be79 (1).pth`,
# `name-7be5be79.pth.1`, `name-7be5be79 copy.pth`; any extension counts (`.pt`, `.tar`).
NAME_HASH = re.compile(
    r"-([0-9a-f]{8,64})(?:\s?\(\d+\)| copy(?: \d+)?)?\.[a-z0-9]+(?:\.\d+)?$", re.IGNORECASE
)
HASH_CHUNK = 1 << 20  # bytes hashed at a time: a 233 MiB file never sits in memory twice


def sha256_of(path: str) -> str:
    """The file's SHA-256 in hex, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def name_hash_prefix(path: str) -> str | None:
    """The SHA-256 prefix a torchvision-style file name carries (lower case), or None."""
    match = NAME_HASH.search(os.path.basename(path))
    return match.group(1).lower() if match else None


def check_name_hash(path: str, arch: str = "alexnet") -> tuple[str, str | None]:
    """(the file's SHA-256, the prefix its name promises or None); DataError on a mismatch,
    pointing to `arch`'s download.

    Like torch.hub's `check_hash`: the digest must start with the digits in the name.
    """
    digest, prefix = sha256_of(path), name_hash_prefix(path)
    if prefix is not None and not digest.startswith(prefix):
        raise errors.DataError(
            f"{path}: its name promises a SHA-256 starting with {prefix}, but the file's is "
            f"{digest}: the file is corrupt, truncated or another file; download it again "
            f"(torchvision's {ARCHS[arch].title}: {ARCHS[arch].url})"
        )
    return digest, prefix


def _why_unloadable(e: Exception) -> str:
    """torch.load's failure in one line (its own message advises weights_only=False)."""
    text = str(e)
    marker = "WeightsUnpickler error:"
    if marker in text:
        detail = text.split(marker, 1)[1].strip().splitlines()[0].split(" was not an allowed")[0]
        return f"weights-only loading refused it ({detail}); none of its code was run"
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    return f"not a zip or pickle file torch.load can read ({type(e).__name__}: {first_line})"


class TorchMissing(errors.UserError, ImportError):
    """torch, which only converting needs, is not installed (the CLI exits 1, one line)."""


def load_torch_state_dict(path: str) -> dict[str, np.ndarray]:
    """name -> numpy array of a PyTorch state dict file.

    Raises errors.DataError (a ValueError; errors.NotFound, also a FileNotFoundError, for a
    missing file) naming what is wrong, TorchMissing without torch.
    """
    try:
        import torch
    except ImportError as e:
        raise TorchMissing("converting needs torch: pip install -e '.[convert]'") from e
    if not os.path.isfile(path):
        raise errors.NotFound(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a zip/pickle, truncated, or holds objects weights_only refuses
        raise errors.DataError(
            f"{path}: not a PyTorch state dict file: {_why_unloadable(e)}"
        ) from e
    if not isinstance(obj, Mapping):
        raise errors.DataError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    arrays = {}
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise errors.DataError(f"{path}: {name!r} is a {type(value).__name__}, not a tensor")
        value = value.detach().cpu()
        arrays[name] = (value.float() if value.is_floating_point() else value).numpy()
    return arrays


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    """`load_torch_state_dict`, or a .safetensors file's arrays (no torch), so a file of
    another network in either format is told apart by its keys (`_port`)."""
    if not path.endswith(".safetensors"):
        return load_torch_state_dict(path)
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise errors.DataError(f"{path}: not a safetensors file numpy can read ({e})") from e


def _count(tree) -> int:
    return sum(np.size(v) for v in traverse_util.flatten_dict(tree).values())


def _port(state_dict, arch: str, path: str) -> dict:
    """`arch`'s port of `state_dict`; DataError naming the first mismatch, and the other
    architecture when the file is that one's."""
    try:
        return ARCHS[arch].port(state_dict)
    except ValueError as e:
        hint = ""
        for other, spec in ARCHS.items():
            if other == arch:
                continue
            try:
                spec.port(state_dict)
            except ValueError:
                continue
            hint = f"; it is torchvision's {spec.title}: pass --arch={other}"
        if not hint:
            fits = vit_weights.sizes_that_fit(state_dict)
            if fits:
                hint = (
                    f"; it is a CLIP/SigLIP vision tower: pass --arch={fits[0]} "
                    f"--weights={path} (not --torch_weights)"
                )
        raise errors.DataError(f"{path}: {e}{hint}") from e


def convert(torch_weights: str, out_dir: str, arch: str = "alexnet") -> str:
    """Checks `torch_weights` against its name (`check_name_hash`), converts it as `arch`
    (a key of ARCHS) into `out_dir`; returns the written file."""
    if arch not in ARCHS:
        raise errors.ConfigError(f"--arch={arch}: not one of {', '.join(ARCHS)}")
    if not os.path.isfile(torch_weights):
        raise errors.NotFound(f"{torch_weights}: no such file")
    digest, prefix = check_name_hash(torch_weights, arch)
    if prefix is None:
        logging.info(
            "%s: SHA-256 %s (its name carries no digest to check it against: record this one)",
            torch_weights,
            digest,
        )
    else:
        logging.info(
            "%s: SHA-256 %s starts with %s, as its name says", torch_weights, digest, prefix
        )
    tree = _port(read_state_dict(torch_weights), arch, torch_weights)
    file = pretrained.save(tree, out_dir, ARCHS[arch].out_file)
    params = tree.get("params", tree)  # AlexNet's file holds params alone
    logging.info(
        "converted %s -> %s: %s, %d parameters%s, %d-way head",
        torch_weights,
        file,
        ARCHS[arch].title,
        _count(params),
        f" and {_count(tree['batch_stats'])} BatchNorm statistics" if "batch_stats" in tree else "",
        params["head"]["bias"].shape[0],
    )
    return file
