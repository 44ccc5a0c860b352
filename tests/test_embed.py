"""`python -m rsrl_jax.embed` writes fc7 features of a photo folder that a run then trains on.

The features are exactly the backbone's fc7 (after its ReLU) on each photo's evaluation view,
the one preprocessing; the scores come from scores.csv; a folder without one gives a file
for predict only. The backbone is shipped or converted weights, or a trained run's round.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from test_embeddings_training import linear_config, train

from rsrl_jax.data import embeddings, preprocess, synthetic
from rsrl_jax.engine import embed
from rsrl_jax.errors import DataError
from rsrl_jax.models.alexnet import AlexNet
from rsrl_jax.run import checkpoints

NUM_PHOTOS = 40


def photo_folder(root, with_scores: bool = True) -> dict[str, int]:
    """Camera-like JPEGs of the synthetic scenes (4:3, larger than the network's input)."""
    (root / "images").mkdir(parents=True)
    made = synthetic.generate(NUM_PHOTOS, 64, seed=3)
    scores = {}
    for i, (image, score) in enumerate(zip(made.images, made.scores, strict=True)):
        name = f"IMG_{i:04d}.jpg"
        Image.fromarray(image).resize((96, 72)).save(root / "images" / name, quality=90)
        scores[name] = int(score)
    if with_scores:
        rows = "".join(f"{name},{score}\n" for name, score in scores.items())
        (root / "scores.csv").write_text("filename,score\n" + rows)
    return scores


def features(model, params, options, path) -> np.ndarray:
    """fc7 of one photo as a run evaluates it (`preprocess.network_photo`)."""
    x = preprocess.eval_input(preprocess.network_photo(str(path), options)[None])
    return np.asarray(model.apply({"params": params}, x, method="features"))[0]


def test_embed_writes_the_shipped_backbones_fc7_and_a_run_trains_on_it(tmp_path):
    scores = photo_folder(tmp_path / "photos")
    out = tmp_path / "emb"
    cmd = [sys.executable, "-m", "rsrl_jax.embed", "--weights=shipped:demo_alexnet"]
    cmd += [f"--out={out}", f"--cache_dir={tmp_path / 'cache'}", str(tmp_path / "photos")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == str(out / embeddings.FILE)
    with np.load(out / embeddings.FILE) as npz:
        x, ids, got = npz["embeddings"], npz["ids"], npz["scores"]
    assert x.dtype == np.float32 and x.shape == (NUM_PHOTOS, 512)  # the demo backbone's fc_dim
    assert sorted(ids) == sorted(scores) and [scores[i] for i in ids] == list(got)
    assert (x >= 0).all() and (x > 0).any()  # after fc7's ReLU
    record = json.loads((out / embed.RECORD).read_text())
    assert record["weights"] == "shipped:demo_alexnet" and record["features"] == 512
    # Exactly the backbone's fc7 of each photo's evaluation view (decoded at 64, no crop).
    bb = embed.backbone("shipped:demo_alexnet")
    for row in (0, 17):
        want = features(bb.model, bb.params, bb.options, tmp_path / "photos" / "images" / ids[row])
        np.testing.assert_allclose(x[row], want, rtol=1e-5, atol=1e-5)
    # data.name=embeddings trains on it.
    record, _ = train(linear_config(out, **{"rsrl.num_majority": 1}), tmp_path / "run")
    assert record["test"]["num_examples"] > 0 and record["train_size"] > 0


def test_a_trained_runs_round_embeds_a_folder_without_scores_for_predict_only(tiny_run, tmp_path):
    photo_folder(tmp_path / "photos", with_scores=False)
    (tmp_path / "photos" / "images" / "notes.txt").write_text("not a photo")
    (tmp_path / "photos" / "images" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    workdir = str(tiny_run[0])
    bb = embed.backbone(workdir)  # the round chosen on validation
    chosen = checkpoints.chosen_round(workdir, 0)
    assert bb.name == f"{workdir} fold 0 round {chosen}"
    out = tmp_path / "emb"
    with pytest.raises(DataError, match="broken.jpg.*set --on_bad_example=skip"):
        embed.embed_folder(bb, str(tmp_path / "photos"), str(out))
    embed.embed_folder(bb, str(tmp_path / "photos"), str(out), on_bad_example="skip")
    with np.load(out / embeddings.FILE) as npz:
        assert set(npz.files) == {"embeddings", "ids"}  # no scores
        x, ids = npz["embeddings"], npz["ids"]
    assert x.shape == (NUM_PHOTOS, 64) and ids[0] == "IMG_0000.jpg"  # paths under images/
    (skipped,) = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    assert skipped["item"] == "broken.jpg"
    config, model, params, _ = checkpoints.load_network(workdir, 0, chosen)
    options = preprocess.photo_options(config)
    want = features(model, params, options, tmp_path / "photos" / "images" / ids[5])
    np.testing.assert_allclose(x[5], want, rtol=1e-5, atol=1e-5)
    assert isinstance(model, AlexNet)
    with pytest.raises(DataError, match="no array 'scores' .*for predict only"):
        train(linear_config(out), tmp_path / "run")
