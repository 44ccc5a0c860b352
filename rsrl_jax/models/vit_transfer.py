"""A converted ViT (`python -m rsrl_jax.convert --arch=<size>`) as round 1's backbone.

`model.name=<size>` (a key of `models.vit.SIZES`, e.g. 'clip_vit_b16') with
`model.pretrained=DIR` reads `DIR/<size>.npz` (or the .npz named itself) and its record
`<size>.json` beside it, as `models.vit_convert` writes them: every entry of the
classifier but its `head` (the patch embedding, position embedding, blocks, final norm,
CLIP's class token and projection, SigLIP's attention pool), float32. The record must be
there (its SHA-256 is checked by `models.pretrained.problem`), name this size, and give the
activation the config builds (`model.vit_act`; '' = the family's): LAION's open_clip
weights are converted with --act=gelu and need --config.model.vit_act=gelu.
"""

import os

import jax
import jax.numpy as jnp
from flax import traverse_util

from rsrl_jax.models import vit


def file_name(arch: str) -> str:
    """The file `convert --arch=<arch>` writes in its --out folder."""
    return f"{arch}.npz"


def convert_hint(path: str, arch: str) -> str:
    """How to make the weights `model.pretrained=path` of `model.name=arch` should name."""
    out = path if path and not os.path.splitext(path)[1] else "DIR"
    return (
        f"convert the published checkpoint first: python -m rsrl_jax.convert --arch={arch} "
        f"--weights=model.safetensors --out={out} (Hugging Face's file; open_clip's .bin "
        "needs pip install -e '.[convert]') and pass that folder as model.pretrained, or set "
        "config.model.pretrained='' to train from scratch"
    )


def others_in(folder: str, arch: str) -> list[str]:
    """The other ViT sizes converted into `folder` (what to suggest as model.name)."""
    if not os.path.isdir(folder):
        return []
    return [n for n in vit.SIZES if n != arch and os.path.isfile(os.path.join(folder, f"{n}.npz"))]


def backbone_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """`/`-joined param path -> shape of size `arch`'s backbone (no parameter is drawn)."""
    spec = vit.SIZES[arch]
    x = jnp.zeros((1, spec.image_size, spec.image_size, 3), jnp.float32)
    shapes = jax.eval_shape(lambda x: vit.ViT(spec).init(jax.random.key(0), x), x)["params"]
    flat = traverse_util.flatten_dict(shapes, sep="/")
    return {k: tuple(v.shape) for k, v in flat.items()}


def weights_problem(
    file: str, arch: str, act: str, record: dict | None, shapes: dict
) -> str | None:
    """Why converted weights `file` (with its `record`, and `shapes`: its arrays' shapes by
    name, from their headers) cannot start `model.name=arch` with `model.vit_act=act`; None
    if they can. The first problem: no record, another size, another activation, a missing
    or misshapen array."""
    if record is None:
        return (
            f"{file} has no record {os.path.splitext(file)[0]}.json beside it (convert writes "
            "both; its SHA-256 is checked before any work)"
        )
    if record.get("arch") != arch:
        return (
            f"{file} holds converted {record.get('arch')} weights, not {arch}'s: set "
            f"--config.model.name={record.get('arch')}"
        )
    want_act = vit.spec(arch, act).activation
    if record.get("act") != want_act:
        return (
            f"{file} was converted with the activation {record.get('act')} but model.vit_act="
            f"{act!r} builds {want_act}: set --config.model.vit_act={record.get('act')}"
        )
    for name, shape in backbone_shapes(arch).items():
        if name not in shapes:
            return f"{file} lacks {name!r}: not converted {arch} weights"
        if tuple(shapes[name]) != shape:
            return f"{file}: {name!r} is {tuple(shapes[name])}, but {arch} has {shape}"
    return None
