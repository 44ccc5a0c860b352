"""checkpoint.keep='needed' keeps only the rounds still usable; each round carries its contract."""

import io
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from conftest import TINY_OVERRIDES, read_records, run_cli, tiny_config
from rsrl_jax import config as config_lib
from rsrl_jax import errors, workdir_files
from rsrl_jax.analysis import highlight
from rsrl_jax.data import synthetic
from rsrl_jax.engine import predict, rsrl
from rsrl_jax.models import network, pretrained
from rsrl_jax.run import checkpoints, contract, resume, retention

# Four rounds (so 'needed' always drops one), three steps an epoch, a mid-round checkpoint
# after every step so that a kill lands mid-round.
OVERRIDES = {
    **TINY_OVERRIDES,
    "rsrl.rounds": 4,
    "train.epochs_per_round": 3,
    "checkpoint.every_steps": 1,
}


def kept_by_hand(records) -> set[int]:
    """What 'needed' keeps at the end, from metrics.jsonl alone: the best validation macro F
    (earliest on ties), the highlight pair (I, I - 1; rounds 2 and 1 for a chosen round 1)
    and the last round."""
    best = max(records, key=lambda r: (r["val"]["macro_f1"], -r["round"]))["round"]
    pair = {best, best - 1} if best > 1 else {1, 2}
    return {best} | pair | {records[-1]["round"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(kept, resume stderr, reference): a keep='needed' run (with its
    own data cache, which the copied-workdir test removes) killed mid-round 4 and resumed
    through the CLI, and the same run uninterrupted, in-process, keeping every round."""
    root = tmp_path_factory.mktemp("keep")
    kept = root / "kept"
    needed = {**OVERRIDES, "checkpoint.keep": "needed", "data.cache_dir": str(root / "cache")}
    cmd = [sys.executable, "-m", "rsrl_jax.main", "--config=configs/demo.py"]
    cmd += [f"--workdir={kept}"] + [f"--config.{k}={v}" for k, v in needed.items()]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # kill once round 4 has finished its first epoch
        if "fold 0 round 4 epoch 1/3" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert len(read_records(kept)) == 3  # rounds 1-3 done, round 4 under way
    resumed = run_cli(kept, needed)

    reference = root / "reference"  # the run without report: records and checkpoints
    config = tiny_config({**OVERRIDES, "checkpoint.every_steps": 0})
    experiment = rsrl.Experiment.build(config, str(reference))
    experiment.run_folds(resume.start_or_resume(config, experiment.recorder, experiment.data))
    experiment.recorder.close()
    return kept, resumed.stderr, reference


def photos(folder):
    folder.mkdir()
    scene = synthetic.generate(num_examples=2, image_size=80, seed=7)
    paths = [str(folder / f"p{i}.jpg") for i in range(2)]
    for image, path in zip(scene.images, paths, strict=True):
        Image.fromarray(image).save(path, quality=95)
    return paths


def test_needed_rounds_never_drop_a_round_needed_later():
    """Every validation history of 5 rounds with ties: a round dropped after round n is not
    needed after any later round, and at most 3 rounds are kept."""
    for scores in itertools.product((0.0, 0.5, 1.0), repeat=5):
        records = [{"round": r + 1, "val": {"macro_f1": s}} for r, s in enumerate(scores)]
        kept = [retention.needed_rounds(records[:n], n) for n in range(1, 6)]
        for n, now in enumerate(kept, start=1):
            assert len(now) <= 3 and n in now
            for later in kept[n:]:
                assert {r for r in later if r <= n} <= now, (scores, n)
        assert kept[-1] == kept_by_hand(records), scores


def test_keep_is_validated_in_one_line():
    config = tiny_config({"checkpoint.keep": "'some'"})
    with pytest.raises(errors.ConfigError, match=r"^config.checkpoint.keep='some': must be 'all'"):
        config_lib.validate(config)


@pytest.mark.parametrize("name", ["run", "run [v1]\\x"])  # plain, and reached through a link
def test_a_kill_during_a_deletion_leaves_every_round_whole_or_gone(tmp_path, name):
    """Orbax renames a dropped round out of the round folders in one step; a kill while
    its files are removed leaves it in .dropped/, never listed, and the next deletion
    empties it."""
    workdir = str(tmp_path / name)
    mngr = checkpoints.manager(workdir, 0)
    for r in (1, 2, 3):
        checkpoints.save_round(mngr, r, {"w": np.full(4, r, np.float32)}, {"record": {"round": r}})
    fold = tmp_path / name / "fold_0"
    # The state after the rename of round 1, a kill halfway through removing its files.
    (fold / workdir_files.DROPPED).mkdir()
    os.rename(fold / "round_01", fold / workdir_files.DROPPED / "round_01")
    shutil.rmtree(fold / workdir_files.DROPPED / "round_01" / "params")
    mngr.close()
    mngr = checkpoints.manager(workdir, 0)
    assert mngr.all_steps() == [2, 3]
    checkpoints.drop_rounds(mngr, [2])
    assert mngr.all_steps() == [3] and sorted(os.listdir(fold)) == ["round_03"]
    params, meta = checkpoints.restore_round(mngr, 3)
    np.testing.assert_array_equal(params["w"], np.full(4, 3, np.float32))
    mngr.close()


def test_needed_keeps_the_rounds_computed_by_hand_and_resumes_as_if_never_killed(runs):
    kept, resumed, reference = runs
    assert "fold 0 round 4: resuming at epoch" in resumed
    assert (kept / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()
    records = read_records(kept)
    want = sorted(kept_by_hand(records))
    assert checkpoints.saved_rounds(str(kept), 0) == want
    assert checkpoints.saved_rounds(str(reference), 0) == [1, 2, 3, 4]
    assert sorted(os.listdir(kept / "fold_0")) == [f"round_{r:02d}" for r in want]
    for r in want:  # the kept networks are the uninterrupted run's
        a = checkpoints.load_network(str(kept), 0, r)[2]
        b = checkpoints.load_network(str(reference), 0, r)[2]
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # The records of dropped rounds live on in the kept ones: a resume rebuilds them all.
    mngr = checkpoints.manager(str(kept), 0, read_only=True)
    assert checkpoints.round_records(mngr) == records
    mngr.close()
    assert (kept / "report" / "highlights_fold0.png").is_file()  # drawn from the kept pair


def test_a_round_not_kept_is_one_line_in_predict_and_highlight(runs, tmp_path):
    kept = runs[0]
    saved = checkpoints.saved_rounds(str(kept), 0)
    dropped = min({1, 2, 3, 4} - set(saved))
    line = (
        f"round {dropped} of fold 0 was not kept (checkpoint.keep='needed' keeps rounds "
        f"{saved}: the chosen round, its net_(I-1) and the last); use one of those, or "
        "--config.checkpoint.keep=all for a run that keeps every round"
    )
    (photo,) = photos(tmp_path / "photos")[:1]
    cmd = [sys.executable, "-m", "rsrl_jax.predict", f"--workdir={kept}", f"--round={dropped}"]
    result = subprocess.run([*cmd, photo], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {line}"]
    # highlight: the dropped round as the net_(I-k) of the last round, which is kept
    with pytest.raises(errors.DataError) as e:
        highlight.highlight_photos(str(kept), [photo], str(tmp_path / "h"), 0, 4, 4 - dropped)
    assert str(e.value) == line


def outputs(workdir, paths, out_dir):
    """predict's lines (paths made relative) and highlight's lines and PNG pixels."""
    out = io.StringIO()
    assert predict.predict(str(workdir), paths, out=out) == len(paths)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    drawn = highlight.highlight_photos(str(workdir), paths, str(out_dir))
    pixels = []
    for line in drawn:
        with Image.open(line.pop("png")) as im:
            pixels.append(np.asarray(im.convert("RGB")))
    return lines, drawn, pixels


def test_a_copied_workdir_predicts_and_highlights_the_same_without_config_or_data(runs, tmp_path):
    """The round's contract is all predict and highlight read: the copy has no config.json
    or classes.json, the run's data cache and original workdir are gone."""
    kept = runs[0]
    paths = photos(tmp_path / "photos")[:1]
    before = outputs(kept, paths, tmp_path / "h1")
    mngr = checkpoints.manager(str(kept), 0, read_only=True)
    meta = checkpoints.restore_meta(mngr, 4)
    mngr.close()
    assert (
        meta["contract"]["class_scores"]
        == json.loads((kept / "classes.json").read_text())["class_scores"]
    )
    assert meta["contract"]["model"]["width"] == 0.25 and meta["contract"]["image_size"] == 64
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(kept, copy)
    for name in ("config.json", "classes.json"):
        (copy / name).unlink()
    shutil.rmtree(kept.parent / "cache")  # the run's prepared data
    moved = kept.parent / "moved"
    os.rename(kept, moved)
    try:
        after = outputs(copy, paths, tmp_path / "h2")
    finally:
        os.rename(moved, kept)
    assert after[:2] == before[:2]  # every figure of every line
    for a, b in zip(after[2], before[2], strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_round_without_a_contract_falls_back_on_the_runs_config(runs, tmp_path):
    """Rounds saved before contracts: config.json and classes.json stand in; without
    them, one line says what to copy."""
    kept = runs[0]
    copy = tmp_path / "old"
    shutil.copytree(kept, copy)
    for meta_file in copy.glob("fold_0/round_*/meta/metadata"):
        meta = json.loads(meta_file.read_text())
        del meta["contract"], meta["class_scores"]
        meta_file.write_text(json.dumps(meta))
    paths = photos(tmp_path / "photos")
    new, old = io.StringIO(), io.StringIO()
    predict.predict(str(kept), paths, out=new)
    predict.predict(str(copy), paths, out=old)
    assert old.getvalue().replace(str(copy), "") == new.getvalue().replace(str(kept), "")
    (copy / "config.json").unlink()
    with pytest.raises(errors.DataError, match="without a model contract, and .*config.json"):
        checkpoints.load_network(str(copy), 0, 4)


def test_the_contract_rebuilds_the_network_and_refuses_what_it_cannot_honour():
    config = tiny_config()
    made = contract.model_contract(config, (2, 3, 4))
    again = contract.Contract.from_json(json.loads(json.dumps(made.to_json())))
    assert again == made
    assert made.photo_options().image_size == 64 and made.pretrained is None
    shapes = network.abstract_params(network.make_model(made.config(), 3), 64, None)
    want = network.abstract_params(network.make_model(config, 3), 64, None)
    assert jax.tree.map(lambda s: s.shape, shapes) == jax.tree.map(lambda s: s.shape, want)
    # A newer version's extra field reads; a model field this version lacks does not.
    assert contract.Contract.from_json({**made.to_json(), "embedding_dim": 8}) == made
    with pytest.raises(errors.DataError, match="model.hidden=.*does not know"):
        contract.Contract.from_json({**made.to_json(), "model": {"hidden": [8]}}).config()
    with pytest.raises(errors.DataError, match="normalised with mean"):
        contract.Contract.from_json({**made.to_json(), "mean": [0.5, 0.5, 0.5]}).check("r")
    shipped = contract.model_contract(
        tiny_config({"model.pretrained": "'shipped:demo_alexnet'"}), (1, 2)
    )
    assert shipped.pretrained == {
        "source": "shipped:demo_alexnet",
        "file": "demo_alexnet.npz",
        "sha256": pretrained.provenance("shipped:demo_alexnet")["sha256"],
    }
