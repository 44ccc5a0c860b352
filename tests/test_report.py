"""The run's report, TensorBoard scalars and predictions, read as a user would."""

import glob
import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from tensorboardX.proto import event_pb2

from rsrl_jax.analysis import report


def test_report_has_every_figure_and_the_table(tiny_run):
    workdir, records, _ = tiny_run
    out = workdir / "report"
    for name in report.FIGURES.values():
        with Image.open(out / name) as im:
            im.load()
            assert im.format == "PNG" and im.width >= 400 and im.height >= 300, name
            assert np.asarray(im.convert("L")).std() > 5  # not a blank canvas
    text = (out / "report.md").read_text()
    for name in report.FIGURES.values():
        assert f"]({name})" in text
    assert "| score | precision | recall | F | support |" in text
    scores = json.loads((workdir / "classes.json").read_text())["class_scores"]
    summary = json.loads((workdir / "summary.json").read_text())
    chosen = records[summary["folds"][0]["chosen_round"] - 1]
    for s in scores:
        c = chosen["test"]["per_class"][str(s)]
        row = f"| {s} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |"
        if c["present"]:
            assert row in text
    assert '"rounds": 2' in text  # the config used
    # the aesthetic figures: SRCC and PLCC per round in the table, all five in one line
    assert "| test SRCC | test PLCC | chosen |" in text
    (line,) = [t for t in text.splitlines() if t.startswith("Aesthetic figures on test")]
    srcc = chosen["test"]["srcc"]
    assert f"the chosen round, round {chosen['round']}: SRCC " in line or (
        "the chosen round: SRCC " in line and "; round 1: SRCC " in line
    )
    assert f"SRCC {'–' if srcc is None else f'{srcc:.3f}'}, PLCC" in line
    assert f"MAE {chosen['test']['mae']:.3f}" in line and "good above 5:" in line


def test_rebuilding_the_report_from_metrics_gives_the_same_report(tiny_run, tmp_path):
    workdir, _, _ = tiny_run
    before = (workdir / "report" / "report.md").read_text()
    result = subprocess.run(
        [sys.executable, "-m", "rsrl_jax.report", f"--workdir={workdir}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (workdir / "report" / "report.md").read_text() == before


def read_scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    """Scalars of TensorBoard event files, read with the record framing and Event proto."""
    scalars = {}
    for path in sorted(glob.glob(str(logdir / "events.out.tfevents.*"))):
        data = open(path, "rb").read()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            for v in event.summary.value:
                scalars.setdefault(v.tag, []).append((event.step, v.simple_value))
    return scalars


def test_tensorboard_has_training_and_round_scalars(tiny_run):
    workdir, records, _ = tiny_run
    scalars = read_scalars(workdir / "tensorboard" / "fold_0")
    assert [step for step, _ in scalars["train/epoch_loss"]] == [1, 2, 3]  # 2 + 1 epochs
    assert all(np.isfinite(v) for _, v in scalars["train/epoch_loss"])
    assert scalars["round/train_size"] == [(r["round"], r["train_size"]) for r in records]
    got = dict(scalars["val/macro_f1"])
    for r in records:
        assert got[r["round"]] == pytest.approx(r["val"]["macro_f1"], abs=1e-6)
    for part in ("train", "val", "test"):  # the aesthetic figures, where defined
        for name in ("srcc", "plcc", "mae", "rmse", "binary_accuracy"):
            got = dict(scalars.get(f"{part}/{name}", []))
            want = {r["round"]: r[part][name] for r in records if r[part][name] is not None}
            assert got == pytest.approx(want, abs=1e-6), (part, name)
    assert dict(scalars["train/srcc"])  # D's correlations are defined (a trained network)


def test_predict_scores_photos_and_reports_unreadable_ones(tiny_run, tmp_path):
    workdir, _, _ = tiny_run
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "b.png"):
        Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(photos / name)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsrl_jax.predict",
            f"--workdir={workdir}",
            str(photos),
            str(tmp_path / "missing.jpg"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"].rsplit("/", 1)[-1] for line in lines] == [
        "a.jpg",
        "b.png",
        "broken.jpg",
        "missing.jpg",
    ]
    scores = json.loads((workdir / "classes.json").read_text())["class_scores"]
    chosen = json.loads((workdir / "summary.json").read_text())["folds"][0]["chosen_round"]
    for line in lines[:2]:
        probs = line["probabilities"]
        assert list(probs) == [str(s) for s in scores]
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert line["score"] in scores
        assert line["score"] == int(max(probs, key=probs.get))
        expected = sum(int(s) * p for s, p in probs.items())
        assert line["expected_score"] == pytest.approx(expected, rel=1e-5)
        assert line["round"] == chosen
    assert "broken.jpg" in lines[2]["error"] and "missing" in lines[3]["error"]


def test_training_loads_matplotlib_only_to_draw():
    """A run imports the report and highlight modules, but matplotlib only when it draws."""
    code = (
        "import sys\n"
        "import rsrl_jax.main, rsrl_jax.engine.rsrl, rsrl_jax.engine.predict\n"
        "import rsrl_jax.analysis.highlight, rsrl_jax.analysis.highlight_eval\n"
        "before = 'matplotlib' in sys.modules\n"
        "import rsrl_jax.analysis.highlight_draw\n"
        "print(before, 'matplotlib' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["False", "True"]


def test_the_tensorboard_writer_never_imports_torch_and_leaves_it_importable(tmp_path):
    """tensorboardX imports torch when it is installed (seconds of a run's time); the
    recorder's writer is imported with torch hidden, and torch stays importable after."""
    code = (
        "import sys\n"
        "from rsrl_jax.run import recorder\n"
        "writer = recorder.summary_writer()(sys.argv[1])\n"
        "writer.add_scalar('val/macro_f1', 0.5, 1)\n"
        "writer.close()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "import torch\n"
        "print(torch.tensor([1.0]).sum().item())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "1.0"
    assert read_scalars(tmp_path)["val/macro_f1"] == [(1, 0.5)]
