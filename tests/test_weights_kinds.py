"""A weights file of another kind (a converted ViT, AlexNet's, an embeddings file, a
CLIP checkpoint) given to embed or convert is refused in one line naming what it is and
the flag that reads it."""

import json
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

from rsrl_jax import errors
from rsrl_jax.engine import embed, vit_embed
from rsrl_jax.models import convert, vit, vit_convert, vit_weights, weights_kind

DEMO = "rsrl_jax/weights/demo_alexnet.npz"
TEXT = {"capture_output": True, "text": True}


def clip_tiny_safetensors(path) -> str:
    """Hugging Face's layout of clip_vit_tiny's vision tower, zeros of the right shapes."""
    rules = vit_weights.hf_rules(vit.SIZES["clip_vit_tiny"])
    save_file({k: np.zeros(r[0][1], np.float32) for k, r in rules.items()}, str(path))
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    safetensors = clip_tiny_safetensors(root / "model.safetensors")
    vit_file = vit_convert.convert_vit(safetensors, str(root / "vit"), "clip_vit_tiny")
    np.savez(root / "embeddings.npz", embeddings=np.zeros((2, 4), np.float32), scores=[1, 2])
    (root / "embeddings.json").write_text(json.dumps({"sha256": "0" * 64}))
    return {"safetensors": safetensors, "vit": vit_file, "emb": str(root / "embeddings.npz")}


def test_kind_of_each_file(files):
    assert weights_kind.kind_of(files["vit"]).arch == "clip_vit_tiny"
    assert weights_kind.kind_of(files["emb"]).name == "embeddings"
    assert weights_kind.kind_of(DEMO).name == "alexnet"


def test_embed_with_arch_names_what_the_file_is(files):
    with pytest.raises(errors.ConfigError, match="not a converted ViT: converted AlexNet"):
        vit_embed.load(DEMO, "clip_vit_tiny")
    with pytest.raises(errors.ConfigError, match="an embeddings file.*not vectors"):
        vit_embed.load(files["emb"], "clip_vit_tiny")


def test_embed_without_arch_names_the_arch_or_the_embeddings(files):
    with pytest.raises(errors.ConfigError, match="pass --arch=clip_vit_tiny"):
        embed.backbone(files["vit"])
    with pytest.raises(errors.ConfigError, match="pass --arch=clip_vit_tiny"):
        embed.backbone(str(files["vit"]).rsplit("/", 1)[0])  # the folder convert wrote
    with pytest.raises(errors.ConfigError, match="is an embeddings file"):
        embed.backbone(files["emb"])


def test_convert_names_the_vit_arch_of_a_clip_checkpoint(files):
    with pytest.raises(errors.DataError, match="pass --arch=clip_vit_tiny --weights="):
        convert.convert(files["safetensors"], "unused", "alexnet")


def test_convert_command_asks_for_a_vit_arch_and_logs_plain_lines(files, tmp_path):
    command = [sys.executable, "-m", "rsrl_jax.convert", f"--out={tmp_path}"]
    refused = subprocess.run([*command, f"--weights={files['safetensors']}"], **TEXT)
    assert refused.returncode == 2
    assert (
        "reads a CLIP or SigLIP checkpoint: name its --arch (one of"
        in refused.stderr.splitlines()[-1]
    )
    done = subprocess.run(
        [*command, "--arch=clip_vit_tiny", f"--weights={files['safetensors']}"], **TEXT
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("converted ") and "vit_convert.py:" not in done.stderr


def test_the_command_listing_names_embeds_vits():
    from rsrl_jax import __main__ as listing

    assert "CLIP or SigLIP" in listing.commands()["embed"]
