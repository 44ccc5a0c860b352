"""Vision transformers of the CLIP and SigLIP families: one backbone, sizes by name.

CLIP (Radford et al. 2021; OpenAI's / open_clip's layout, Hugging Face's `CLIPVisionModel
WithProjection`): patch convolution without bias, a class token, learned position
embeddings, `ln_pre`, pre-norm blocks, `ln_post` on the class token, a linear projection
without bias. QuickGELU (x * sigmoid(1.702 x)) for OpenAI's weights, exact GELU for LAION's.
SigLIP (Zhai et al. 2023; big_vision's `vit.py`, Hugging Face's `SiglipVisionModel`): patch
convolution with bias, no class token, `ln_post` on every token, then the attention-pool
(MAP) head: one learned probe attends over the tokens, then LayerNorm + MLP with a
residual; tanh-approximated GELU. LayerNorm eps: CLIP 1e-5, SigLIP 1e-6.

Input: NHWC float32 photos normalised by the family's mean and std (`data.vit_photos`),
[B, image_size, image_size, 3]. Output of `__call__` / `features`: the embedding [B, D]
(CLIP: the projection's `proj_dim`; SigLIP: `width`, the MAP head's output), not
unit-normalised: `engine.vit_embed` normalises. `ViTClassifier` puts a fresh N-way `head`
on it for fine-tuning through the round engine (`model.name=<size>`, `models.network.make_model`).
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import linen as nn


@dataclasses.dataclass(frozen=True)
class ViTSpec:
    """A ViT's shape and family; the published sizes are in SIZES."""

    family: str  # "clip" | "siglip"
    patch: int
    width: int
    depth: int
    heads: int
    mlp_dim: int
    image_size: int
    proj_dim: int = 0  # CLIP's projection; 0 for SigLIP
    act: str = ""  # "quick_gelu" | "gelu" | "gelu_tanh"; "" = the family's default

    @property
    def activation(self) -> str:
        return self.act or ("quick_gelu" if self.family == "clip" else "gelu_tanh")

    @property
    def ln_eps(self) -> float:
        return 1e-5 if self.family == "clip" else 1e-6

    @property
    def grid(self) -> int:
        return self.image_size // self.patch

    @property
    def tokens(self) -> int:
        """Sequence length: the patches, and CLIP's class token."""
        return self.grid**2 + (self.family == "clip")

    @property
    def embed_dim(self) -> int:
        return self.proj_dim if self.family == "clip" else self.width


SIZES = {
    "clip_vit_b32": ViTSpec("clip", 32, 768, 12, 12, 3072, 224, 512),
    "clip_vit_b16": ViTSpec("clip", 16, 768, 12, 12, 3072, 224, 512),
    "clip_vit_l14": ViTSpec("clip", 14, 1024, 24, 16, 4096, 224, 768),
    "clip_vit_l14_336": ViTSpec("clip", 14, 1024, 24, 16, 4096, 336, 768),
    "siglip_vit_b16": ViTSpec("siglip", 16, 768, 12, 12, 3072, 224),
    "siglip_vit_b16_384": ViTSpec("siglip", 16, 768, 12, 12, 3072, 384),
    "siglip_vit_l16_384": ViTSpec("siglip", 16, 1024, 24, 16, 4096, 384),
    "siglip_so400m14": ViTSpec("siglip", 14, 1152, 27, 16, 4304, 384),
    # Tiny, random-weight sizes for tests (seconds on a CPU), never published weights.
    "clip_vit_tiny": ViTSpec("clip", 8, 64, 2, 4, 128, 32, 24),
    "siglip_vit_tiny": ViTSpec("siglip", 8, 64, 2, 4, 128, 32),
}


def spec(name: str, act: str = "") -> ViTSpec:
    """The size `name` (a key of SIZES) with the MLP's activation `act` ('' = the family's)."""
    return dataclasses.replace(SIZES[name], act=act)


ACTIVATIONS = {
    "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),
}


class Attention(nn.Module):
    """Multi-head attention of `queries` over `tokens`: q, k, v and out projections with
    bias (Hugging Face's q_proj/k_proj/v_proj/out_proj; open_clip's in_proj split in 3)."""

    width: int
    heads: int

    @nn.compact
    def __call__(self, queries, tokens):
        head_dim = self.width // self.heads

        def split(name, x):
            y = nn.Dense(self.width, name=name)(x)
            return y.reshape(*y.shape[:-1], self.heads, head_dim)

        q, k, v = split("query", queries), split("key", tokens), split("value", tokens)
        y = jax.nn.dot_product_attention(q, k, v)  # softmax(q k / sqrt(head_dim)) v
        return nn.Dense(self.width, name="out")(y.reshape(*y.shape[:-2], self.width))


class Mlp(nn.Module):
    mlp_dim: int
    act: str

    @nn.compact
    def __call__(self, x):
        y = ACTIVATIONS[self.act](nn.Dense(self.mlp_dim, name="fc1")(x))
        return nn.Dense(x.shape[-1], name="fc2")(y)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln_1 x), then x + mlp(ln_2 x)."""

    spec: ViTSpec

    @nn.compact
    def __call__(self, x):
        s = self.spec
        y = nn.LayerNorm(s.ln_eps, name="ln_1")(x)
        x = x + Attention(s.width, s.heads, name="attn")(y, y)
        y = nn.LayerNorm(s.ln_eps, name="ln_2")(x)
        return x + Mlp(s.mlp_dim, s.activation, name="mlp")(y)


class MapHead(nn.Module):
    """SigLIP's attention pool: a learned probe attends over the tokens (big_vision's
    MAPHead); LayerNorm and MLP with a residual; the probe's output [B, width]."""

    spec: ViTSpec

    @nn.compact
    def __call__(self, x):
        s = self.spec
        probe = self.param("probe", nn.initializers.xavier_uniform(), (1, 1, s.width))
        y = Attention(s.width, s.heads, name="attn")(jnp.tile(probe, (x.shape[0], 1, 1)), x)
        y = y + Mlp(s.mlp_dim, s.activation, name="mlp")(nn.LayerNorm(s.ln_eps, name="ln")(y))
        return y[:, 0]


class ViT(nn.Module):
    """The backbone of `spec`: normalised photos [B, S, S, 3] -> embeddings [B, D]."""

    spec: ViTSpec

    def setup(self):
        s = self.spec
        self.patch_embed = nn.Conv(
            s.width, (s.patch, s.patch), s.patch, "VALID", use_bias=s.family == "siglip"
        )
        init = nn.initializers.normal(0.02)
        self.pos_embed = self.param("pos_embed", init, (s.tokens, s.width))
        if s.family == "clip":
            self.cls = self.param("cls", init, (s.width,))
            self.ln_pre = nn.LayerNorm(s.ln_eps)
            self.proj = nn.Dense(s.proj_dim, use_bias=False)
        else:
            self.map_head = MapHead(s)
        self.blocks = [Block(s, name=f"block_{i}") for i in range(s.depth)]
        self.ln_post = nn.LayerNorm(s.ln_eps)

    def conv1_maps(self, x):
        """The patch embedding's output [B, grid, grid, width]: the ViT's first convolution."""
        return self.patch_embed(x)

    def tokens(self, x):
        """The encoder's output [B, tokens, width] (CLIP's class token first)."""
        s = self.spec
        if x.shape[1:3] != (s.image_size, s.image_size):
            raise ValueError(f"{s.family} ViT reads {s.image_size}px photos, got {x.shape[1:3]}")
        x = self.patch_embed(x.astype(jnp.float32))
        x = x.reshape(x.shape[0], -1, s.width)
        if s.family == "clip":
            x = jnp.concatenate([jnp.broadcast_to(self.cls, (x.shape[0], 1, s.width)), x], 1)
        x = x + self.pos_embed
        if s.family == "clip":
            x = self.ln_pre(x)
        for block in self.blocks:
            x = block(x)
        return x

    def features(self, x):
        """The embedding [B, embed_dim], float32, not normalised."""
        x = self.tokens(x)
        if self.spec.family == "clip":
            return self.proj(self.ln_post(x[:, 0]))
        return self.map_head(self.ln_post(x))

    def __call__(self, x, train: bool = False):
        del train  # no dropout, no BatchNorm: training and evaluation are one function
        return self.features(x)


class ViTClassifier(ViT):
    """The backbone and a fresh N-way `head` (Dense over the embedding): normalised photos
    [B, S, S, 3] -> logits [B, num_classes]. The backbone's parameters keep `ViT`'s names at
    the top level, so a converted file (`convert --arch=<size>`) is every entry but `head`."""

    num_classes: int = 2

    def setup(self):
        super().setup()
        self.head = nn.Dense(self.num_classes)

    @property
    def CONV1(self) -> tuple[int, int, int]:
        """The patch embedding as a convolution: kernel = stride = patch, no padding."""
        return (self.spec.patch, self.spec.patch, 0)

    def __call__(self, x, train: bool = False):
        del train  # no dropout, no BatchNorm: training and evaluation are one function
        return self.head(self.features(x))
