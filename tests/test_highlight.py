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
from rsrl_jax.analysis.highlight_draw import draw_highlight, draw_panel
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


# Red on the ImageNet scale (`data.preprocess.normalize`): a dark pixel and a bright one.
DARK_RED, BRIGHT_RED = (0.0 - 0.485) / 0.229, (1.0 - 0.485) / 0.229


def spike_networks(tap_shift: int = 0, gain: float = 1.0):
    """A 2-channel conv1 AlexNet and its params, conv1 set by hand: channel 0 reads the red
    pixel `tap_shift` px right of each cell's centre, times `gain`; channel 1 three times the
    red pixel at the centre. No bias, so conv1 is plain arithmetic on the photo; the other
    layers are zero."""
    model = AlexNet(num_classes=2, width=2 / 64, fc_dim=4)
    x = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
    params = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)  # only conv1 matters
    k, centre = highlight_maps.CONV1_KERNEL, highlight_maps.CONV1_KERNEL // 2
    kernel = np.zeros((k, k, 3, 2), np.float32)
    kernel[centre, centre + tap_shift, 0, 0] = gain
    kernel[centre, centre, 0, 1] = 3.0
    conv1 = {"kernel": kernel, "bias": np.zeros(2, np.float32)}
    return model, {**params, "conv1": conv1}


def spike_photo(cell=(6, 8)):
    """A black 64px photo, one bright red pixel at conv1 cell `cell`'s centre."""
    photo = np.zeros((1, 64, 64, 3), np.uint8)
    y, x = highlight_maps.conv1_cell_centre(np.asarray(cell))
    photo[0, y, x, 0] = 255
    return photo


def highlight_of(params_i, params_prev, model, photo):
    maps = highlight_maps.run_highlights(
        highlight_maps.make_highlight_fn(model), params_i, params_prev, photo, 1
    )
    return maps, highlight_maps.sizes_of(maps)


def figure_text(fig) -> str:
    from matplotlib.text import Text

    return "\n".join(t.get_text() for t in fig.findobj(Text))


def test_clearly_different_networks_have_their_scale_computed_by_hand(tmp_path):
    # net_I's channel 0 reads the pixel one cell to the right: its spike moves one cell left.
    model, params_prev = spike_networks()
    params_i = spike_networks(tap_shift=highlight_maps.CONV1_STRIDE)[1]
    maps, sizes = highlight_of(params_i, params_prev, model, spike_photo())
    assert int(maps["J"][0]) == 0  # channel 1 is the same in both: corr 1
    # Two maps of 15 x 15 = 225 cells, each one spike on a flat floor, at different cells:
    # Pearson's r of two such indicators is -1 / (n - 1).
    assert sizes["min_corr"][0] == pytest.approx(-1 / 224, abs=1e-5)
    # diff = +(BRIGHT - DARK) at the new cell, -(BRIGHT - DARK) at the old, 0 elsewhere.
    assert sizes["max_abs_difference"][0] == pytest.approx(BRIGHT_RED - DARK_RED, rel=1e-5)
    # The activation scale: channel 1's bright cell, 3 x BRIGHT (|3 x DARK| is smaller).
    assert sizes["activation_scale"][0] == pytest.approx(3 * BRIGHT_RED, rel=1e-5)
    want = (BRIGHT_RED - DARK_RED) / (3 * BRIGHT_RED)  # = 1 / (3 x 0.515) = 0.647
    assert sizes["relative_difference"][0] == pytest.approx(want, rel=1e-5)
    assert not sizes["negligible"][0]
    assert highlight_maps.negligible_reason(1.0, want, -1 / 224) is None

    one = {key: value[0] for key, value in maps.items()}
    size = {key: value[0].item() for key, value in sizes.items()}
    fig = draw_highlight(str(tmp_path / "clear.png"), spike_photo()[0], one, (2, 1), size)
    text = figure_text(fig)
    assert "max |diff| 4.4 = 6.5e-01 of max |conv1| 6.75" in text
    assert "noise" not in text and "barely differ" not in text


@pytest.mark.parametrize("gain", [1.0, 1.0 + 1e-6])
def test_identical_or_nearly_identical_networks_are_flagged_as_noise(gain, tmp_path):
    model, params_prev = spike_networks()
    params_i = spike_networks(gain=gain)[1]
    photo = spike_photo()
    maps, sizes = highlight_of(params_i, params_prev, model, photo)
    # diff = (gain - 1) x channel 0's map: at most (gain - 1) x BRIGHT, against 3 x BRIGHT.
    want = (gain - 1) / 3
    assert sizes["relative_difference"][0] == pytest.approx(want, rel=0.2, abs=1e-12)
    assert sizes["min_corr"][0] > highlight_maps.NEGLIGIBLE_CORRELATION
    assert sizes["negligible"][0]
    reason = highlight_maps.negligible_reason(
        sizes["max_abs_difference"][0], sizes["relative_difference"][0], sizes["min_corr"][0]
    )
    small = "identical (max |diff| 0)" if gain == 1 else "of the activation scale (< 0.001)"
    assert small in reason
    assert "every channel's maps correlate above 0.999" in reason

    one = {key: value[0] for key, value in maps.items()}
    size = {key: value[0].item() for key, value in sizes.items()}
    fig = draw_highlight(str(tmp_path / "same.png"), photo[0], one, (2, 1), size)
    text = figure_text(fig)
    assert "networks barely differ — treat this map as noise, not a region" in text
    assert reason in text and "\nnoise" in "\n" + text

    # The run's panel stamps the same map, and counts it.
    rows = [
        (4, photo, maps["diff"], sizes),
        (
            5,
            photo,
            maps["diff"] * 0 + 1,
            {
                "max_abs_difference": np.array([1.0]),
                "relative_difference": np.array([0.5]),
                "negligible": np.array([False]),
            },
        ),
    ]
    fig = draw_panel(str(tmp_path / "panel.png"), rows, "panel", 1)
    text = figure_text(fig)
    assert "1 of 2 maps negligible" in text and text.count("noise") == 2


def test_relative_difference_against_the_scale_and_zero_networks():
    diff = np.zeros((3, 2, 2), np.float32)
    diff[0, 1, 0] = -0.5  # max |diff| counts negative values
    diff[1, 0, 1] = 2e-3
    sizes = highlight_maps.difference_size(diff, [10.0, 4.0, 0.0], [0.5, 0.2, 1.0])
    np.testing.assert_allclose(sizes["max_abs_difference"], [0.5, 2e-3, 0.0])
    np.testing.assert_allclose(sizes["relative_difference"], [0.05, 5e-4, 0.0])
    # photo 1: small against its scale; photo 2: both networks silent (corr 1 by rule).
    np.testing.assert_array_equal(sizes["negligible"], [False, True, True])


def test_channel_share_against_a_hand_count():
    share = highlight_maps.channel_share([3, 1, 3, 3, 0, 1])
    assert share == {"photos": 6, "most_common_J": 3, "count": 3, "share": 0.5, "distinct": 3}
    assert highlight_maps.format_channel_share(share) == (
        "channel J = 3 for 3 of 6 photos (50 %), 3 distinct J"
    )
    assert highlight_maps.channel_share([5, 2, 2, 5])["most_common_J"] == 2  # ties: smallest
    assert highlight_maps.channel_share([17] * 40)["share"] == 1.0
    assert highlight_maps.channel_share([])["photos"] == 0


def test_summary_of_highlight_lines_against_a_hand_count():
    def drawn(J, relative, negligible):
        return {"png": "x.png", "J": J, "relative_difference": relative, "negligible": negligible}

    lines = [
        drawn(7, 2e-6, True),
        {"path": "bad.jpg", "error": "unreadable"},
        drawn(7, 3e-6, True),
        drawn(2, 0.2, False),
        {"path": "notes.txt", "skipped": "not a photo"},
    ]
    summary = highlight.summarize(lines)
    assert summary["files"] == 5 and summary["drawn"] == 3 and summary["negligible"] == 2
    assert summary["channel_J"]["most_common_J"] == 7 and summary["channel_J"]["count"] == 2
    assert summary["relative_difference"] == [2e-6, 0.2]
    assert highlight.format_summary(summary) == (
        "highlight: 3 of 5 files drawn; channel J = 7 for 2 of 3 photos (67 %), 2 distinct J; "
        "max |diff| 2.0e-06 to 2.0e-01 of the activation scale; 2 of 3 maps negligible "
        "(the networks barely differ there: noise, not regions)"
    )
    nothing = highlight.summarize(lines[1:2])
    assert highlight.format_summary(nothing) == "highlight: 0 of 1 files drawn"


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
    with pytest.raises(ValueError, match=r"round 4 does not exist: the run plans rounds 1-2"):
        pair_rounds(workdir, 0, 4, 1)
    with pytest.raises(FileNotFoundError, match="fold 1 does not exist"):
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
    # The summary (stderr, stdout stays JSON): J counted by hand over the drawn lines.
    J = [lines[0]["J"], lines[2]["J"]]
    top = min(J, key=lambda j: (-J.count(j), j))
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith(
        f"highlight: 2 of 3 files drawn; channel J = {top} for {J.count(top)} of 2 photos "
        f"({50 * J.count(top)} %), {len(set(J))} distinct J; "
    )
    assert summary.endswith("0 of 2 maps negligible")  # two trained rounds: real maps

    config, model, params_i, scores = checkpoints.load_network(str(run_dir), 0, 2)
    params_prev = checkpoints.load_network(str(run_dir), 0, 1)[2]
    for line, path in zip((lines[0], lines[2]), (paths[0], paths[2]), strict=True):
        assert (line["round_I"], line["round_I_minus_k"]) == (2, 1)
        assert len(line["corr"]) == 16  # conv1 channels at width 0.25
        # The CLI's figures are those of the two restored networks on the decoded photo.
        x = preprocess.normalize(preprocess.network_photo(str(path), config)[None])
        a = model.apply({"params": params_i}, x, method="conv1_maps")
        b = model.apply({"params": params_prev}, x, method="conv1_maps")
        J, diff, corr = highlight_maps.min_correlation_diff(a, b)
        assert line["J"] == int(J[0])
        # The absolute size: max |diff| of channel J against max |conv1| of both networks.
        scale = max(float(np.abs(a).max()), float(np.abs(b).max()))
        assert line["max_abs_difference"] == pytest.approx(float(np.abs(diff).max()), rel=1e-5)
        assert line["activation_scale"] == pytest.approx(scale, rel=1e-5)
        assert line["relative_difference"] == pytest.approx(
            line["max_abs_difference"] / line["activation_scale"], rel=1e-9
        )
        assert line["negligible"] is False and line["negligible_reason"] is None
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
    share = figures["channel_J"]
    assert share["photos"] == figures["num_photos"] and 1 <= share["distinct"] <= 16
    assert highlight_maps.format_channel_share(share) in result.stdout
    assert 0 <= figures["negligible_maps"] <= figures["num_photos"]
