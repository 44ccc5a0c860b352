"""Published ViT checkpoints -> `models.vit.ViT` params, key by key.

Two layouts of the same networks (`LAYOUTS`):
- `hf`: Hugging Face's `CLIPModel` / `CLIPVisionModelWithProjection` (`vision_model.*` and
  `visual_projection.weight`) and `SiglipModel` / `SiglipVisionModel` (`vision_model.*`),
  as in `model.safetensors` on the hub (`openai/clip-vit-*`, `google/siglip-*`);
- `open_clip`: open_clip's state dicts of CLIP in OpenAI's layout (`visual.*`:
  `conv1`, `class_embedding`, `positional_embedding`, `transformer.resblocks.N.attn.in_proj_*`,
  `mlp.c_fc`/`c_proj`, `ln_post`, `proj` [width, proj_dim]).
Only the vision tower's keys are read; the text tower and the logit scale are left alone.
Torch layouts: Linear weight [out, in] -> Dense kernel [in, out]; Conv2d OIHW -> HWIO;
a fused in_proj [3 width, width] -> query, key, value.
"""

from collections.abc import Callable, Mapping

import numpy as np
from flax import traverse_util

from rsrl_jax.models import state_dicts
from rsrl_jax.models.vit import SIZES, ViTSpec

LAYOUTS = ("hf", "open_clip")
# Buffers some exports carry, never parameters: allowed and ignored.
OPTIONAL = ("vision_model.embeddings.position_ids",)
# transformers 5 saves a `SiglipVisionModel` alone without the `vision_model.` prefix.
BARE = "embeddings.patch_embedding.weight"


def _t(a):
    return np.asarray(a).T


def _conv(a):
    return np.transpose(np.asarray(a), (2, 3, 1, 0))


def _keep(a):
    return np.asarray(a)


def _part(i: int, width: int, transpose: bool):
    def take(a):
        a = np.asarray(a)[i * width : (i + 1) * width]
        return a.T if transpose else a

    return take


Rule = tuple[str, tuple[int, ...], Callable]  # our path, the source's shape, the conversion


def _linear(ours: str, out: int, inp: int, bias: bool = True) -> dict[str, Rule]:
    """A torch Linear `name.weight` [out, in] (and bias) as suffixes -> rules."""
    rules = {".weight": (f"{ours}/kernel", (out, inp), _t)}
    if bias:
        rules[".bias"] = (f"{ours}/bias", (out,), _keep)
    return rules


def _norm(ours: str, width: int) -> dict[str, Rule]:
    return {
        ".weight": (f"{ours}/scale", (width,), _keep),
        ".bias": (f"{ours}/bias", (width,), _keep),
    }


def _prefixed(prefix: str, rules: dict[str, Rule]) -> dict[str, Rule]:
    return {prefix + k: v for k, v in rules.items()}


def _fused_attention(src: str, ours: str, w: int) -> dict[str, list[Rule]]:
    """torch.nn.MultiheadAttention's in_proj (q, k, v stacked) and out_proj."""
    rules: dict[str, list[Rule]] = {
        f"{src}.in_proj_weight": [
            (f"{ours}/{n}/kernel", (3 * w, w), _part(i, w, True))
            for i, n in enumerate(("query", "key", "value"))
        ],
        f"{src}.in_proj_bias": [
            (f"{ours}/{n}/bias", (3 * w,), _part(i, w, False))
            for i, n in enumerate(("query", "key", "value"))
        ],
    }
    for k, v in _prefixed(f"{src}.out_proj", _linear(f"{ours}/out", w, w)).items():
        rules[k] = [v]
    return rules


def hf_rules(s: ViTSpec) -> dict[str, list[Rule]]:
    """Hugging Face's key -> [(our path, its shape, conversion)], in the checkpoint's order."""
    w, p, e = s.width, "vision_model.", "vision_model.embeddings."
    rules = {
        f"{e}patch_embedding.weight": [("patch_embed/kernel", (w, 3, s.patch, s.patch), _conv)]
    }
    if s.family == "siglip":
        rules[f"{e}patch_embedding.bias"] = [("patch_embed/bias", (w,), _keep)]
    else:
        rules[f"{e}class_embedding"] = [("cls", (w,), _keep)]
    rules[f"{e}position_embedding.weight"] = [("pos_embed", (s.tokens, w), _keep)]
    one: dict[str, Rule] = {}
    if s.family == "clip":
        one |= _prefixed(f"{p}pre_layrnorm", _norm("ln_pre", w))
    for i in range(s.depth):
        src, ours = f"{p}encoder.layers.{i}.", f"block_{i}"
        for name, mine in (("q_proj", "query"), ("k_proj", "key"), ("v_proj", "value")):
            one |= _prefixed(f"{src}self_attn.{name}", _linear(f"{ours}/attn/{mine}", w, w))
        one |= _prefixed(f"{src}self_attn.out_proj", _linear(f"{ours}/attn/out", w, w))
        one |= _prefixed(f"{src}layer_norm1", _norm(f"{ours}/ln_1", w))
        one |= _prefixed(f"{src}mlp.fc1", _linear(f"{ours}/mlp/fc1", s.mlp_dim, w))
        one |= _prefixed(f"{src}mlp.fc2", _linear(f"{ours}/mlp/fc2", w, s.mlp_dim))
        one |= _prefixed(f"{src}layer_norm2", _norm(f"{ours}/ln_2", w))
    one |= _prefixed(f"{p}post_layernorm", _norm("ln_post", w))
    if s.family == "clip":
        one["visual_projection.weight"] = ("proj/kernel", (s.proj_dim, w), _t)
    rules |= {k: [v] for k, v in one.items()}
    if s.family == "siglip":
        h = f"{p}head."
        rules[f"{h}probe"] = [("map_head/probe", (1, 1, w), _keep)]
        rules |= _fused_attention(f"{h}attention", "map_head/attn", w)
        head = _prefixed(f"{h}layernorm", _norm("map_head/ln", w))
        head |= _prefixed(f"{h}mlp.fc1", _linear("map_head/mlp/fc1", s.mlp_dim, w))
        head |= _prefixed(f"{h}mlp.fc2", _linear("map_head/mlp/fc2", w, s.mlp_dim))
        rules |= {k: [v] for k, v in head.items()}
    return rules


def open_clip_rules(s: ViTSpec) -> dict[str, list[Rule]]:
    """open_clip's (OpenAI layout) key -> [(our path, its shape, conversion)]; CLIP only."""
    if s.family != "clip":
        raise ValueError("open_clip's layout holds CLIP towers only")
    w, v = s.width, "visual."
    rules = {
        f"{v}class_embedding": [("cls", (w,), _keep)],
        f"{v}positional_embedding": [("pos_embed", (s.tokens, w), _keep)],
        f"{v}proj": [("proj/kernel", (w, s.proj_dim), _keep)],  # used as x @ proj
        f"{v}conv1.weight": [("patch_embed/kernel", (w, 3, s.patch, s.patch), _conv)],
    }
    one = _prefixed(f"{v}ln_pre", _norm("ln_pre", w))
    for i in range(s.depth):
        src, ours = f"{v}transformer.resblocks.{i}.", f"block_{i}"
        rules |= _fused_attention(f"{src}attn", f"{ours}/attn", w)
        one |= _prefixed(f"{src}ln_1", _norm(f"{ours}/ln_1", w))
        one |= _prefixed(f"{src}ln_2", _norm(f"{ours}/ln_2", w))
        one |= _prefixed(f"{src}mlp.c_fc", _linear(f"{ours}/mlp/fc1", s.mlp_dim, w))
        one |= _prefixed(f"{src}mlp.c_proj", _linear(f"{ours}/mlp/fc2", w, s.mlp_dim))
    one |= _prefixed(f"{v}ln_post", _norm("ln_post", w))
    return rules | {k: [v] for k, v in one.items()}


def layout_of(state_dict: Mapping) -> str:
    """Which layout a checkpoint's keys are in ('hf' or 'open_clip'); ValueError if neither."""
    if any(k.startswith("vision_model.") for k in state_dict) or BARE in state_dict:
        return "hf"
    if any(k.startswith("visual.") for k in state_dict):
        return "open_clip"
    some = ", ".join(repr(k) for k in list(state_dict)[:3])
    raise ValueError(
        f"no vision tower: neither Hugging Face's 'vision_model.*' nor open_clip's 'visual.*' "
        f"keys (first keys: {some or 'none'})"
    )


def tower(state_dict: Mapping, layout: str) -> dict:
    """The vision tower's entries of a whole checkpoint (text tower, logit scale left out)."""
    if layout == "hf" and BARE in state_dict:  # a vision model saved alone: no prefix
        return {"vision_model." + k: v for k, v in state_dict.items()}
    prefixes = ("vision_model.", "visual_projection.") if layout == "hf" else ("visual.",)
    return {k: v for k, v in state_dict.items() if k.startswith(prefixes)}


def port(state_dict: Mapping, spec: ViTSpec, what: str) -> dict:
    """`state_dict` (a whole checkpoint, either layout) -> ViT(spec)'s nested float32 params.

    ValueError naming the first missing, misshapen, non-float or unexpected key of the tower.
    """
    layout = layout_of(state_dict)
    rules = hf_rules(spec) if layout == "hf" else open_clip_rules(spec)
    vision = tower(state_dict, layout)
    expected = {k: r[0][1] for k, r in rules.items()}
    state_dicts.check(vision, expected, what, optional=OPTIONAL)
    flat = {}
    for key, targets in rules.items():
        for ours, _, convert in targets:
            flat[ours] = np.ascontiguousarray(convert(vision[key]), np.float32)
    return traverse_util.unflatten_dict(flat, sep="/")


def sizes_that_fit(state_dict: Mapping) -> list[str]:
    """The ViT sizes (keys of `vit.SIZES`, in its order) whose port takes `state_dict`
    whole: what to name as --arch for a checkpoint given under another one."""
    fits = []
    for name, spec in SIZES.items():
        try:
            port(state_dict, spec, name)
        except ValueError:
            continue
        fits.append(name)
    return fits
