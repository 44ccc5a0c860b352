"""The CLIP and SigLIP ViTs equal Hugging Face's, read from the files users download.

Oracles: `transformers`' CLIPVisionModelWithProjection and SiglipVisionModel at tiny sizes
with random weights (torch CPU), saved as model.safetensors by `save_pretrained`, and its
image processors (PIL backend) for the preprocessing. The full-size check is
`python -m benchmarks.vit --check`.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    SiglipImageProcessor,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from rsrl_jax.data import embeddings, synthetic, vit_photos
from rsrl_jax.engine import vit_embed
from rsrl_jax.errors import DataError
from rsrl_jax.models import vit, vit_convert

TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
TINY |= dict(image_size=32, patch_size=8)


def hf_model(family: str, act: str = "quick_gelu", seed: int = 0):
    torch.manual_seed(seed)
    if family == "clip":
        config = CLIPVisionConfig(**TINY, projection_dim=24, hidden_act=act)
        return CLIPVisionModelWithProjection(config).eval()
    return SiglipVisionModel(SiglipVisionConfig(**TINY)).eval()


def hf_embed(model, x_nchw: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = model(pixel_values=torch.from_numpy(x_nchw))
    return (out.image_embeds if hasattr(out, "image_embeds") else out.pooler_output).numpy()


def ours(file: str, x_nchw: np.ndarray) -> np.ndarray:
    spec, params, _ = vit_convert.load(file)
    return np.asarray(vit.ViT(spec).apply({"params": params}, x_nchw.transpose(0, 2, 3, 1)))


def relative_error(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize(
    "family,act", [("clip", "quick_gelu"), ("clip", "gelu"), ("siglip", "gelu_pytorch_tanh")]
)
def test_converted_safetensors_embed_as_transformers_does(tmp_path, family, act):
    model = hf_model(family, act)
    model.save_pretrained(tmp_path / "hub")  # model.safetensors and config.json, as published
    arch = f"{family}_vit_tiny"
    file = vit_convert.convert_vit(str(tmp_path / "hub/model.safetensors"), str(tmp_path), arch)
    record = json.loads((tmp_path / f"{arch}.json").read_text())
    assert record["act"] == {"gelu_pytorch_tanh": "gelu_tanh"}.get(act, act)  # config.json's
    x = np.random.default_rng(1).normal(size=(3, 3, 32, 32)).astype(np.float32)
    assert relative_error(ours(file, x), hf_embed(model, x)) < 1e-4


def open_clip_layout(hf: dict) -> dict:
    """open_clip's OpenAI-layout keys for a CLIP tower, renamed from Hugging Face's."""
    out, v = {}, "vision_model."
    out["visual.class_embedding"] = hf[f"{v}embeddings.class_embedding"]
    out["visual.positional_embedding"] = hf[f"{v}embeddings.position_embedding.weight"]
    out["visual.conv1.weight"] = hf[f"{v}embeddings.patch_embedding.weight"]
    out["visual.proj"] = hf["visual_projection.weight"].T.contiguous()
    for ours_, theirs in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        for leaf in ("weight", "bias"):
            out[f"visual.{ours_}.{leaf}"] = hf[f"{v}{theirs}.{leaf}"]
    for i in range(TINY["num_hidden_layers"]):
        src, dst = f"{v}encoder.layers.{i}.", f"visual.transformer.resblocks.{i}."
        for leaf in ("weight", "bias"):
            qkv = [hf[f"{src}self_attn.{n}_proj.{leaf}"] for n in "qkv"]
            out[f"{dst}attn.in_proj_{leaf}"] = torch.cat(qkv)
            pairs = [("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1")]
            pairs += [("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")]
            for dst_name, src_name in pairs:
                out[f"{dst}{dst_name}.{leaf}"] = hf[f"{src}{src_name}.{leaf}"]
    out["text_projection"] = torch.zeros(4, 4)  # the text tower is not read
    return out


def test_open_clip_state_dict_maps_onto_the_same_network(tmp_path):
    model = hf_model("clip", "gelu", seed=2)
    torch.save(open_clip_layout(model.state_dict()), tmp_path / "open_clip_pytorch_model.bin")
    bin_file = str(tmp_path / "open_clip_pytorch_model.bin")
    file = vit_convert.convert_vit(bin_file, str(tmp_path), "clip_vit_tiny", act="gelu")
    x = np.random.default_rng(3).normal(size=(2, 3, 32, 32)).astype(np.float32)
    assert relative_error(ours(file, x), hf_embed(model, x)) < 1e-4


def test_convert_names_the_first_mismatch_and_the_size_that_fits(tmp_path):
    hf_model("clip").save_pretrained(tmp_path / "hub")
    with pytest.raises(DataError) as e:
        vit_convert.convert_vit(
            str(tmp_path / "hub/model.safetensors"), str(tmp_path), "clip_vit_b16"
        )
    text = str(e.value)
    assert "'vision_model.embeddings.patch_embedding.weight' has shape (64, 3, 8, 8)" in text
    assert "expected (768, 3, 16, 16)" in text and "--arch=clip_vit_tiny" in text


def camera_photos(root, n: int = 3) -> list:
    """Photo-like JPEGs (the synthetic scenes) in landscape, portrait and square shapes."""
    made = synthetic.generate(n, 96, seed=5)
    paths = []
    for i, (image, shape) in enumerate(
        zip(made.images, [(150, 97), (83, 131), (64, 64)], strict=True)
    ):
        path = root / f"p{i}.jpg"
        Image.fromarray(image).resize(shape, Image.Resampling.BILINEAR).save(path, quality=92)
        paths.append(path)
    return paths


@pytest.mark.parametrize("family,size", [("clip", 64), ("siglip", 72)])
def test_preprocessing_is_the_image_processors(tmp_path, family, size):
    if family == "clip":
        kw = {"size": {"shortest_edge": size}, "crop_size": {"height": size, "width": size}}
        processor = CLIPImageProcessor(**kw)
    else:
        processor = SiglipImageProcessor(size={"height": size, "width": size})
    for path in camera_photos(tmp_path):
        with Image.open(path) as im:
            theirs = processor(im.convert("RGB"), return_tensors="np")["pixel_values"][0]
        view = vit_photos.read(str(path), family, size)
        grey = (theirs.transpose(1, 2, 0) - vit_photos.normalise(view, family)) * 255
        assert view.shape == (size, size, 3)
        assert np.abs(grey * np.array(vit_photos.STD[family])).max() <= 1.0


def test_embed_command_writes_unit_vectors_of_the_checkpoint(tmp_path):
    model = hf_model("siglip", seed=4)
    model.save_pretrained(tmp_path / "hub")
    photos = tmp_path / "photos"
    (photos / "images").mkdir(parents=True)
    paths = camera_photos(photos / "images")
    (photos / "scores.csv").write_text(
        "filename,score\n" + "".join(f"{p.name},{i + 3}\n" for i, p in enumerate(paths))
    )
    cmd = [sys.executable, "-m", "rsrl_jax.embed", "--arch=siglip_vit_tiny", "--batch_size=2"]
    cmd += [f"--weights={tmp_path / 'hub/model.safetensors'}", f"--out={tmp_path / 'emb'}"]
    result = subprocess.run(cmd + [str(photos)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(tmp_path / "emb" / embeddings.FILE) as npz:
        x, ids, scores = npz["embeddings"], list(npz["ids"]), list(npz["scores"])
    assert ids == [p.name for p in paths] and scores == [3, 4, 5]
    processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    with Image.open(paths[1]) as im:
        pixels = processor(im.convert("RGB"), return_tensors="np")["pixel_values"]
    want = hf_embed(model, pixels)[0]
    assert np.abs(x[1] - want / np.linalg.norm(want)).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    record = json.loads((tmp_path / "emb" / vit_embed.RECORD).read_text())
    assert record["normalised"] and record["arch"] == "siglip_vit_tiny" and record["rows"] == 3
