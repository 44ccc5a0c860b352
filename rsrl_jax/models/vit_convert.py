"""Converts a published CLIP or SigLIP checkpoint's vision tower into a ViT .npz.

  python -m rsrl_jax.convert --arch=clip_vit_l14 --weights=model.safetensors --out=DIR
  python -m rsrl_jax.convert --arch=clip_vit_b32 --weights=open_clip_pytorch_model.bin \
      --act=gelu --out=DIR

Reads Hugging Face's `model.safetensors` (`openai/clip-vit-*`, `google/siglip-*`) with the
`safetensors` library's numpy API (no torch, no code in the file), or open_clip's state
dicts (.bin/.pt/.pth: torch.load(weights_only=True); a training checkpoint's `state_dict`,
`module.` prefixes dropped). Writes `DIR/<arch>.npz` (one float32 array per `/`-joined
param path, `pretrained.save`) and `DIR/<arch>.json`: the arch, activation, the source
file's name and SHA-256, and the .npz's SHA-256, which `embed` checks before any work.

The activation: `--act`, else Hugging Face's `config.json` beside the file (`hidden_act`),
else the family's (CLIP: OpenAI's quick_gelu; LAION's open_clip weights need --act=gelu).
"""

import json
import os

import numpy as np
from absl import logging

from rsrl_jax import errors, files
from rsrl_jax.models import convert, pretrained, vit, vit_weights, weights_kind

HF_ACTS = {"quick_gelu": "quick_gelu", "gelu": "gelu", "gelu_pytorch_tanh": "gelu_tanh"}
HF_ACTS |= {"gelu_tanh": "gelu_tanh", "gelu_new": "gelu_tanh"}


def read_checkpoint(path: str) -> dict[str, np.ndarray]:
    """name -> numpy array of a .safetensors file (no torch) or a torch state dict file."""
    if not os.path.isfile(path):
        raise errors.NotFound(f"{path}: no such file")
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError, TypeError) as e:
            raise errors.DataError(f"{path}: not a safetensors file numpy can read ({e})") from e
    return _torch_state_dict(path)


def _torch_state_dict(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as e:
        raise convert.TorchMissing(
            "reading a .bin/.pt needs torch: pip install -e '.[convert]'"
        ) from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a zip/pickle, or objects weights_only refuses
        raise errors.DataError(
            f"{path}: not a PyTorch state dict file: {convert._why_unloadable(e)}"
        ) from e
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]  # open_clip's training checkpoint
    if not isinstance(obj, dict):
        raise errors.DataError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    out = {}
    for name, value in obj.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            out[name.removeprefix("module.")] = (
                value.float() if value.is_floating_point() else value
            ).numpy()
    return out


def activation(path: str, family: str, act: str | None) -> str:
    """The checkpoint's activation (module docstring); ConfigError when --act contradicts
    the config.json beside it."""
    found = None
    config_file = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
    if path.endswith(".safetensors") and os.path.isfile(config_file):
        with open(config_file) as f:
            config = json.load(f)
        hidden = config.get("vision_config", config).get("hidden_act")
        found = HF_ACTS.get(hidden) if hidden else None
    if act and found and act != found:
        raise errors.ConfigError(f"--act={act}: {config_file} says hidden_act={found}")
    return act or found or vit.ViTSpec(family, 1, 1, 1, 1, 1, 1).activation


def port_file(state_dict, arch: str, spec: vit.ViTSpec, path: str) -> dict:
    """ViT(spec)'s params of the checkpoint; DataError naming the first mismatch, and the
    size that fits when another does."""
    try:
        return vit_weights.port(state_dict, spec, arch)
    except ValueError as e:
        fits = [other for other in vit_weights.sizes_that_fit(state_dict) if other != arch]
        hint = f"; it fits --arch={fits[0]}" if fits else ""
        raise errors.DataError(f"{path}: {e}{hint}") from e


def convert_vit(weights: str, out_dir: str, arch: str, act: str | None = None) -> str:
    """Converts `weights` (module docstring) as ViT size `arch`; returns the .npz written."""
    if arch not in vit.SIZES:
        raise errors.ConfigError(f"--arch={arch}: not one of {', '.join(vit.SIZES)}")
    if act and act not in vit.ACTIVATIONS:
        raise errors.ConfigError(f"--act={act}: not one of {', '.join(vit.ACTIVATIONS)}")
    state_dict = read_checkpoint(weights)
    size = vit.SIZES[arch]
    spec = vit.ViTSpec(**{**size.__dict__, "act": activation(weights, size.family, act)})
    params = port_file(state_dict, arch, spec, weights)
    digest = convert.sha256_of(weights)
    file = pretrained.save(params, out_dir, f"{arch}.npz")
    record = {
        "arch": arch,
        "family": spec.family,
        "act": spec.activation,
        "image_size": spec.image_size,
        "embed_dim": spec.embed_dim,
        "source": os.path.basename(weights),
        "source_sha256": digest,
        "sha256": pretrained.sha256(file),
    }
    files.write_atomic(pretrained.record_file(file), json.dumps(record, indent=1) + "\n")
    logging.info(
        "converted %s (SHA-256 %s: record it) -> %s: %s, %s, %d parameters, %d-d embeddings",
        weights,
        digest,
        file,
        arch,
        spec.activation,
        sum(np.size(v) for v in _leaves(params)),
        spec.embed_dim,
    )
    return file


def _leaves(tree):
    for v in tree.values():
        yield from (_leaves(v) if isinstance(v, dict) else [v])


def not_vit_fix(kind: weights_kind.Kind) -> str:
    """What to do with weights of `kind` (not a ViT) given where a ViT is read."""
    if kind.name == "embeddings":
        return "--weights takes a network's weights (convert's ARCH.npz), not vectors"
    return "leave --arch out to embed with it (python -m rsrl_jax.embed --weights=FILE)"


def load(path: str) -> tuple[vit.ViTSpec, dict, dict]:
    """(spec, params, record) of a converted file (`DIR/<arch>.npz`) or its folder holding
    one; ConfigError naming what is wrong (no record, a changed file)."""
    if os.path.isdir(path):
        found = sorted(f for f in os.listdir(path) if f.removesuffix(".npz") in vit.SIZES)
        if not found:
            raise errors.ConfigError(
                f"{path}: no converted ViT (<arch>.npz); run python -m rsrl_jax.convert "
                "--arch=ARCH --weights=model.safetensors --out=DIR first"
            )
        path = os.path.join(path, found[0])
    record_path = pretrained.record_file(path)
    kind = weights_kind.kind_of(path)
    if kind is not None and kind.name != "vit":
        raise errors.ConfigError(f"{path}: not a converted ViT: {kind.what}; {not_vit_fix(kind)}")
    if not os.path.isfile(path) or not os.path.isfile(record_path):
        raise errors.ConfigError(
            f"{path}: not a converted ViT (needs it and {os.path.basename(record_path)} beside "
            "it, as python -m rsrl_jax.convert --arch=ARCH writes them)"
        )
    with open(record_path) as f:
        record = json.load(f)
    if record.get("arch") not in vit.SIZES:
        raise errors.ConfigError(
            f"{path}: not a converted ViT: its record {os.path.basename(record_path)} names "
            f"no ViT arch (arch={record.get('arch')!r}); convert the checkpoint with python -m "
            "rsrl_jax.convert --arch=ARCH --weights=model.safetensors --out=DIR"
        )
    if pretrained.sha256(path) != record.get("sha256"):
        raise errors.ConfigError(f"{path}: its SHA-256 is not its record's: convert it again")
    size = vit.SIZES[record["arch"]]
    spec = vit.ViTSpec(**{**size.__dict__, "act": record["act"]})
    return spec, pretrained.read_variables(path), record
