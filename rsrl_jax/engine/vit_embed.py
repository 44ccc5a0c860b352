"""A photo folder to an embeddings file through a CLIP or SigLIP ViT, as the aesthetic
predictors expect their vectors.

  python -m rsrl_jax.embed --arch=clip_vit_l14 --weights=FILE --out=DIR PHOTOS

FILE: `convert`'s `DIR/<arch>.npz` (with its .json record, SHA-256 checked), or the
published checkpoint itself (model.safetensors, open_clip's .bin), converted in memory.
Each photo is read as the family's published preprocessing reads it (`data.vit_photos`:
CLIP resize-shorter-side and central crop, SigLIP squash; bicubic; the family's mean/std).
Vectors: CLIP's projected class token (`CLIPVisionModelWithProjection.image_embeds`),
SigLIP's attention-pool output (`SiglipVisionModel.pooler_output`), float32 [N, D].
Unit-normalised by default: LAION's improved aesthetic predictor reads CLIP L/14 vectors
divided by their L2 norm (raw vectors are its users' most common mistake), and SigLIP was
trained on unit vectors too (its sigmoid loss compares normalised embeddings), as
aesthetic-predictor-v2.5 feeds them. `normalise=False` keeps the raw vectors.
PHOTOS: with scores.csv, its rows and scores (ids: their keys); else every photo under
PHOTOS/images (else PHOTOS), ids their relative paths, no scores.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from rsrl_jax import errors, files
from rsrl_jax.data import builders, embeddings, photos, sources, user_photos, vit_photos
from rsrl_jax.models import convert, vit, vit_convert
from rsrl_jax.run.progress import Progress

RECORD = "embeddings.json"
ANY_SCORE = (-(2**31), 2**31 - 1)
CHECKPOINTS = (".safetensors", ".bin", ".pt", ".pth")
LAYER = {
    "clip": "the projected class token (ln_post, proj: CLIPVisionModelWithProjection.image_embeds)",
    "siglip": "the attention-pool head's output (SiglipVisionModel.pooler_output)",
}


def load(weights: str, arch: str | None = None) -> tuple[vit.ViTSpec, dict, dict]:
    """(spec, params, provenance) of `weights` (module docstring); ConfigError when `arch`
    is not the converted file's."""
    if weights.endswith(CHECKPOINTS):
        if not arch:
            raise errors.ConfigError(f"--weights={weights}: a checkpoint: name its --arch")
        state_dict = vit_convert.read_checkpoint(weights)
        size = vit.SIZES[arch]
        spec = vit.ViTSpec(
            **{**size.__dict__, "act": vit_convert.activation(weights, size.family, None)}
        )
        params = vit_convert.port_file(state_dict, arch, spec, weights)
        record = {"arch": arch, "act": spec.activation, "source": os.path.basename(weights)}
        return spec, params, record | {"source_sha256": convert.sha256_of(weights)}
    spec, params, record = vit_convert.load(weights)
    if arch and arch != record["arch"]:
        raise errors.ConfigError(f"--arch={arch}: {weights} holds {record['arch']}")
    return spec, params, record


def embed_step(spec: vit.ViTSpec, normalise: bool):
    """jitted (params, uint8 views [B, S, S, 3]) -> float32 embeddings [B, D]."""
    model = vit.ViT(spec)

    def step(params, views):
        x = model.apply({"params": params}, vit_photos.normalise(views, spec.family, jnp))
        if normalise:
            x = x / jnp.linalg.norm(x, axis=-1, keepdims=True)
        return x.astype(jnp.float32)

    return jax.jit(step)


def _listing(root: str) -> tuple[list[tuple[str, str]], dict[str, int] | None, list]:
    """([(id, path)], scores by id or None, problems of scores.csv's rows)."""
    if os.path.isfile(os.path.join(root, "scores.csv")):
        listing = sources.read_folder(root, ANY_SCORE)
        rows = [e for split in listing.splits.values() for e in split]
        return [(e.key, e.path) for e in rows], {e.key: e.score for e in rows}, listing.problems
    top = os.path.join(root, "images") if os.path.isdir(os.path.join(root, "images")) else root
    found = [f for f in user_photos.expand_paths([top]) if not f.skipped]
    ext = user_photos.photo_extensions()
    return (
        [(os.path.relpath(f.path, top), f.path) for f in found if f.path.lower().endswith(ext)],
        None,
        [],
    )


def embed_folder(
    weights: str,
    photos_dir: str,
    out_dir: str,
    arch: str | None = None,
    normalise: bool = True,
    on_bad_example: str = "error",
    batch_size: int = 32,
) -> str:
    """Writes `out_dir`/embeddings.npz and embeddings.json (module docstring); returns the
    .npz. DataError for a bad row or photo (unless `on_bad_example='skip'`: left out and
    listed in skipped.jsonl) or a folder without photos."""
    if not os.path.isdir(photos_dir):
        raise errors.ConfigError(f"{photos_dir}: no such folder of photos")
    spec, params, record = load(weights, arch)
    rows, scores, problems = _listing(photos_dir)
    skipped = [p.to_json() for p in problems]
    if problems and on_bad_example == "error":
        raise builders.BadExample(f"{problems[0].message()} (--on_bad_example=skip leaves it out)")
    step, size = embed_step(spec, normalise), spec.image_size
    progress = Progress("embed: ViT features", len(rows), "img")
    out, ids = [], []
    for start in range(0, len(rows), batch_size):
        views = []
        for key, path in rows[start : start + batch_size]:
            try:
                views.append(vit_photos.read(path, spec.family, size))
                ids.append(key)
            except photos.BadPhoto as e:
                if on_bad_example == "error":
                    raise builders.BadExample(f"{e} (--on_bad_example=skip leaves it out)") from e
                skipped.append({"item": key, "where": path, "reason": str(e)})
        if views:  # padded to one batch shape: one compile
            batch = np.zeros((batch_size, size, size, 3), np.uint8)
            batch[: len(views)] = views
            out.append(np.asarray(step(params, batch))[: len(views)])
        progress.update(len(rows[start : start + batch_size]))
    if not out:
        raise errors.DataError(f"{photos_dir}: no photo to embed ({len(skipped)} skipped)")
    x = np.concatenate(out)
    row_scores = None if scores is None else [scores[i] for i in ids]
    path = embeddings.write(out_dir, x, ids, row_scores)
    if skipped:
        builders.write_skipped(out_dir, skipped)
    provenance = {
        "weights": os.path.abspath(weights),
        **record,
        "layer": LAYER[spec.family],
        "normalised": normalise,
        "preprocessing": vit_photos.__doc__.split("\n\n")[1].replace("\n", " "),
        "image_size": size,
        "photos": os.path.abspath(photos_dir),
        "rows": len(x),
        "features": int(x.shape[1]),
        "scores": row_scores is not None,
        "skipped": len(skipped),
    }
    files.write_atomic(os.path.join(out_dir, RECORD), json.dumps(provenance, indent=1) + "\n")
    logging.info(
        "wrote %d rows of %d %s features to %s (%.1f img/s); %d skipped",
        len(x),
        x.shape[1],
        "unit-normalised" if normalise else "raw",
        path,
        progress.rate(),
        len(skipped),
    )
    return path
