"""Highlight regions: the correlation rule against numpy, conv1's geometry, the CLIs on a run."""

import json
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from rsrl_jax.analysis import highlight, highlight_eval, highlight_maps
from rsrl_jax.data import preprocess, synthetic
from rsrl_jax.models.alexnet import AlexNet
from rsrl_jax.run import checkpoints
from rsrl_jax.run.round_pairs import pair_rounds


def numpy_min_correlation_diff(a, b):
    """The rule of ARCHITECTURE.md (Design facts, Highlight regions) in float64 numpy, one
    photo and channel at a time."""
    batch, _, _, channels = a.shape
    corr = np.ones((batch, channels))
    for i in range(batch):
        for j in range(channels):
            x, y = a[i, ..., j].ravel(), b[i, ..., j].ravel()
            if x.std() > 0 and y.std() > 0:
                corr[i, j] = np.corrcoef(x, y)[0, 1]
    J = corr.argmin(axis=1)
    diff = np.stack([a[i, ..., J[i]] - b[i, ..., J[i]] for i in range(batch)])
    return J, diff, corr


def related_maps(rng, shape):
    """Pairs of maps whose per-channel correlation ranges from about -0.5 to 1."""
    a = rng.normal(size=shape)
    mix = np.linspace(-0.5, 1.0, shape[-1])
    b = mix * a + np.sqrt(1 - mix**2) * rng.normal(size=shape) + rng.normal(size=shape[-1])
    return a.astype(np.float32), (3.0 * b).astype(np.float32)


def test_matches_numpy_on_random_maps():
    a, b = related_maps(np.random.default_rng(0), (4, 9, 11, 12))
    J, diff, corr = highlight_maps.min_correlation_diff(a, b)
    want_J, want_diff, want_corr = numpy_min_correlation_diff(a.astype(np.float64), b)
    np.testing.assert_allclose(corr, want_corr, atol=1e-5)
    np.testing.assert_array_equal(J, want_J)
    np.testing.assert_allclose(diff, want_diff, rtol=1e-6, atol=1e-6)
    assert J.shape == (4,) and diff.shape == (4, 9, 11) and corr.shape == (4, 12)


def test_batch_of_one():
    a, b = related_maps(np.random.default_rng(1), (1, 6, 5, 7))
    J, diff, corr = highlight_maps.min_correlation_diff(a, b)
    want_J, want_diff, want_corr = numpy_min_correlation_diff(a.astype(np.float64), b)
    assert J.shape == (1,) and diff.shape == (1, 6, 5) and corr.shape == (1, 7)
    assert int(J[0]) == int(want_J[0])
    np.testing.assert_allclose(corr, want_corr, atol=1e-5)
    np.testing.assert_allclose(diff, want_diff, rtol=1e-6, atol=1e-6)


def test_constant_channels_get_plus_one_and_are_never_chosen():
    rng = np.random.default_rng(2)
    a, b = related_maps(rng, (2, 8, 8, 5))
    a[..., 0] = 1e4  # constant in a, large
    a[0, ::2, :, 1] = np.nextafter(np.float32(1e4), np.float32(np.inf))  # only rounding noise
    a[0, 1::2, :, 1] = np.float32(1e4)
    b[..., 2] = 0.0  # constant zero in b
    b[..., 3] = a[..., 3]  # identical maps: corr exactly 1, a real candidate
    a[1] = b[1] = np.zeros_like(a[1])  # photo 1: every channel constant
    a[1, ..., 4] = b[1, ..., 4] = 7.0
    J, diff, corr = highlight_maps.min_correlation_diff(a, b)
    corr, J = np.asarray(corr), np.asarray(J)
    assert np.all(np.isfinite(corr)) and np.all(np.isfinite(diff))
    np.testing.assert_array_equal(corr[0, :3], 1.0)
    np.testing.assert_array_equal(corr[1], 1.0)
    assert J[0] not in (0, 1, 2) and J[0] == np.argmin(corr[0, 3:]) + 3
    assert J[1] == 0  # all constant: the first channel, and its (zero) difference
    np.testing.assert_array_equal(diff[1], 0.0)


def test_scale_invariant_and_finite_at_extreme_magnitudes():
    a, b = related_maps(np.random.default_rng(3), (2, 7, 7, 6))
    J, _, corr = highlight_maps.min_correlation_diff(a, b)
    J_big, diff_big, corr_big = highlight_maps.min_correlation_diff(a * 1e30, b * 1e-30)
    np.testing.assert_allclose(corr_big, corr, atol=1e-5)
    np.testing.assert_array_equal(J_big, J)
    assert np.all(np.isfinite(corr_big)) and np.all(np.isfinite(diff_big))


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\[B,H,W,C\]"):
        highlight_maps.min_correlation_diff(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 2)))
    with pytest.raises(ValueError, match=r"\[B,H,W,C\]"):
        highlight_maps.min_correlation_diff(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))


@pytest.mark.parametrize("size,grid", [(224, 55), (64, 15)])
def test_conv1_shape_of_the_full_alexnet(size, grid):
    model = AlexNet(num_classes=8)
    x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    out = jax.eval_shape(lambda v, x: model.apply(v, x, method="conv1_maps"), variables, x)
    assert out.shape == (2, grid, grid, 64)
    assert highlight_maps.conv1_grid(size) == grid


def test_conv1_cells_line_up_with_the_photo():
    """A bright pixel at a cell's stated centre lights exactly that cell of a centre-tap conv1."""
    model = AlexNet(num_classes=2, width=1 / 64, fc_dim=4)
    k = highlight_maps.CONV1_KERNEL
    kernel = np.zeros((k, k, 3, 1), np.float32)
    kernel[k // 2, k // 2, 0, 0] = 1.0
    params = {"conv1": {"kernel": kernel, "bias": np.zeros(1, np.float32)}}
    x = np.zeros((1, 64, 64, 3), np.float32)
    cell = (4, 9)
    y_px, x_px = highlight_maps.conv1_cell_centre(np.asarray(cell))
    x[0, y_px, x_px, 0] = 1.0
    maps = np.asarray(model.apply({"params": params}, x, method="conv1_maps"))[0, ..., 0]
    assert np.argwhere(maps != 0).tolist() == [list(cell)]
    # And the upsampled map peaks on that pixel.
    up = highlight_maps.conv1_to_photo(maps, 64)
    assert np.unravel_index(up.argmax(), up.shape) == (y_px, x_px)


def test_mask_scores_on_known_maps():
    masks = np.zeros((3, 64, 64), bool)
    masks[:, 10:30, 20:40] = True
    saliency = np.zeros((3, 15, 15), np.float32)
    cy = cx = highlight_maps.conv1_cell_centre(np.arange(15))
    inside = (np.flatnonzero((cy >= 14) & (cy < 26))[0], np.flatnonzero((cx >= 24) & (cx < 36))[0])
    saliency[0][inside] = 1.0  # one cell well inside the mask
    saliency[1][0, 14] = 1.0  # a corner cell, outside
    # photo 2: all zero, energy counted as spread evenly
    scores = highlight_eval.mask_scores(saliency, masks)
    np.testing.assert_array_equal(scores["pointing_hit"], [1.0, 0.0, 0.0])
    assert scores["energy_share"][0] == pytest.approx(1.0)
    assert scores["energy_share"][1] == 0.0
    assert scores["energy_share"][2] == pytest.approx(masks[2].mean())


def test_png_names_never_collide():
    paths = ["a/x.jpg", "b/x.png", "x_2.jpg", "c/.hidden", "y.jpeg"]
    names = highlight.unique_png_names(paths)
    assert names == ["x.png", "x_2.png", "x_2_2.png", ".hidden.png", "y.png"]


def test_panels_are_skipped_for_a_single_round(tmp_path):
    no_photos = np.zeros((0, 64, 64, 3), np.uint8)
    skipped = highlight.write_highlight_panels(
        str(tmp_path), no_photos, np.zeros(0, int), [], 64, 8, num_rounds=1
    )
    assert skipped == []
    assert not (tmp_path / "report").exists()


@pytest.fixture(scope="module")
def run_dir(tiny_run):
    """The workdir of the session's tiny two-round run (tests/conftest.py)."""
    return tiny_run[0]


def run_module(module, *args):
    cmd = [sys.executable, "-m", module, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_run_writes_a_highlight_panel(run_dir):
    with Image.open(run_dir / "report" / "highlights_fold0.png") as im:
        im.load()
        assert im.width >= 400 and im.height >= 200


def test_rounds_default_to_the_chosen_one_and_bad_ones_are_named(run_dir, tmp_path):
    workdir = str(run_dir)
    chosen = checkpoints.chosen_round(workdir, 0)
    assert pair_rounds(workdir, 0) == ((chosen, chosen - 1) if chosen > 1 else (2, 1))
    assert pair_rounds(workdir, 0, 2, 1) == (2, 1)
    with pytest.raises(ValueError, match="I - k = 0"):
        pair_rounds(workdir, 0, 1, 1)
    with pytest.raises(ValueError, match="k=0"):
        pair_rounds(workdir, 0, 2, 0)
    with pytest.raises(ValueError, match=r"no checkpoint of round 4 \(saved: \[1, 2\]\)"):
        pair_rounds(workdir, 0, 4, 1)
    with pytest.raises(FileNotFoundError, match="fold_1"):
        pair_rounds(workdir, 1)
    # A chosen round 1 has no earlier network: round 2 vs 1 stands in.
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    summary = json.loads((copy / "summary.json").read_text())
    summary["folds"][0]["chosen_round"] = 1
    (copy / "summary.json").write_text(json.dumps(summary))
    assert pair_rounds(str(copy), 0) == (2, 1)


def test_cli_draws_each_photo_and_reports_unreadable_ones(run_dir, tmp_path):
    scene = synthetic.generate(num_examples=2, image_size=80, seed=7)
    paths = [tmp_path / "first.jpg", tmp_path / "broken.jpg", tmp_path / "second.jpg"]
    Image.fromarray(scene.images[0]).save(paths[0], quality=95)
    paths[1].write_bytes(b"\xff\xd8 this is not a photo")
    Image.fromarray(scene.images[1]).save(paths[2], quality=95)
    out = tmp_path / "out"
    result = run_module(
        "rsrl_jax.highlight", f"--workdir={run_dir}", "--round=2", f"--out={out}", *paths
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == [str(p) for p in paths]
    assert "broken.jpg" in lines[1]["error"] and "png" not in lines[1]

    config, model, params_i, scores = checkpoints.load_network(str(run_dir), 0, 2)
    params_prev = checkpoints.load_network(str(run_dir), 0, 1)[2]
    for line, path in zip((lines[0], lines[2]), (paths[0], paths[2]), strict=True):
        assert (line["round_I"], line["round_I_minus_k"]) == (2, 1)
        assert len(line["corr"]) == 16  # conv1 channels at width 0.25
        # The CLI's figures are those of the two restored networks on the decoded photo.
        x = preprocess.normalize(preprocess.network_photo(str(path), config)[None])
        a = model.apply({"params": params_i}, x, method="conv1_maps")
        b = model.apply({"params": params_prev}, x, method="conv1_maps")
        J, _, corr = highlight_maps.min_correlation_diff(a, b)
        assert line["J"] == int(J[0])
        np.testing.assert_allclose(line["corr"], np.asarray(corr[0]), atol=1e-5)
        assert line["min_corr"] == pytest.approx(min(line["corr"]), abs=1e-6)
        logits = model.apply({"params": params_i}, x)
        assert line["score"] == scores[int(np.argmax(logits))]
        with Image.open(line["png"]) as im:
            im.load()
            assert im.format == "PNG" and im.width >= 800 and 200 <= im.height < im.width


def test_cli_fails_only_when_no_photo_can_be_read(run_dir, tmp_path):
    bad = tmp_path / "empty.jpg"
    bad.write_bytes(b"")
    result = run_module("rsrl_jax.highlight", f"--workdir={run_dir}", f"--out={tmp_path}", bad)
    assert result.returncode == 1
    (line,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert line["path"] == str(bad) and "empty.jpg" in line["error"]
    result = run_module(
        "rsrl_jax.highlight", f"--workdir={run_dir}", "--round=1", f"--out={tmp_path}", bad
    )
    assert result.returncode == 2 and "I - k = 0" in result.stderr


def test_eval_prints_figures_in_unit_range(run_dir):
    result = run_module("rsrl_jax.highlight_eval", f"--workdir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads((run_dir / "report" / "highlight_eval_fold0.json").read_text())
    assert figures["num_photos"] > 0 and figures["conv1_grid"] == 15
    assert set(figures["maps"]) == {"diff", "diff_centred", "activation", "chance"}
    for name, m in figures["maps"].items():
        for key in ("energy_share", "pointing_hit_rate"):
            assert np.isfinite(m[key]) and 0.0 <= m[key] <= 1.0, (name, key)
            assert f"{m[key]:.3f}" in result.stdout
    assert 0.0 <= figures["diff_beats_activation"] <= 1.0
