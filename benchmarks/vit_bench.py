"""Full-size ViT checks against Hugging Face `transformers` (random weights, PyTorch CPU).

`port_error(arch)`: builds the arch's Hugging Face vision model at full size with random
weights, saves model.safetensors, converts it (`models.vit_convert`) and returns
max |ours - theirs| / max |theirs| of one image's embedding. `throughput(arch, batch)`:
images/s of the same model in both frameworks on this CPU (same threads: torch's
intra-op threads = the CPU count XLA uses), forward pass only, median of `repeats` timed
batches after a warm-up (JAX: after compiling).
"""

import os
import statistics
import tempfile
import time

import jax
import numpy as np

from rsrl_jax.models import vit, vit_convert

HF_ACT = {"quick_gelu": "quick_gelu", "gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh"}


def hf_model(arch: str, seed: int = 0):
    """transformers' vision model of `arch` with random weights, evaluation mode."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
        SiglipVisionConfig,
        SiglipVisionModel,
    )

    s = vit.SIZES[arch]
    torch.manual_seed(seed)
    common = dict(hidden_size=s.width, intermediate_size=s.mlp_dim, num_hidden_layers=s.depth)
    common |= dict(num_attention_heads=s.heads, image_size=s.image_size, patch_size=s.patch)
    common |= dict(hidden_act=HF_ACT[s.activation])
    if s.family == "clip":
        return CLIPVisionModelWithProjection(
            CLIPVisionConfig(**common, projection_dim=s.proj_dim)
        ).eval()
    return SiglipVisionModel(SiglipVisionConfig(**common)).eval()


def _hf_embed(model, x_nchw):
    import torch

    with torch.no_grad():
        out = model(pixel_values=torch.from_numpy(x_nchw))
    return out.image_embeds if hasattr(out, "image_embeds") else out.pooler_output


def port_error(arch: str) -> float:
    model = hf_model(arch)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        file = vit_convert.convert_vit(os.path.join(tmp, "model.safetensors"), tmp, arch)
        spec, params, _ = vit_convert.load(file)
    s = vit.SIZES[arch]
    x = np.random.default_rng(0).normal(size=(1, 3, s.image_size, s.image_size)).astype(np.float32)
    theirs = _hf_embed(model, x).numpy()
    ours = np.asarray(vit.ViT(spec).apply({"params": params}, x.transpose(0, 2, 3, 1)))
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def _median_rate(fn, batch: int, repeats: int) -> float:
    fn()  # warm-up (and JAX's compile)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def throughput(arch: str, batch: int = 8, repeats: int = 5) -> dict:
    """{'ours', 'theirs': images/s, 'ratio': ours / theirs, 'threads'}."""
    import torch

    from rsrl_jax.models import vit_weights

    model = hf_model(arch)
    s = vit.SIZES[arch]
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    params = vit_weights.port(state, s, arch)
    x = (
        np.random.default_rng(0)
        .normal(size=(batch, 3, s.image_size, s.image_size))
        .astype(np.float32)
    )
    step = jax.jit(lambda p, x: vit.ViT(s).apply({"params": p}, x))
    x_nhwc = jax.device_put(x.transpose(0, 2, 3, 1))
    ours = _median_rate(lambda: step(params, x_nhwc).block_until_ready(), batch, repeats)
    theirs = _median_rate(lambda: _hf_embed(model, x), batch, repeats)
    return {
        "ours": ours,
        "theirs": theirs,
        "ratio": ours / theirs,
        "threads": torch.get_num_threads(),
    }
