"""Any folder name a file system allows works as a workdir, data folder or data cache.

Orbax lists checkpoint folders with a glob that takes the folder's own path as part of the
pattern, and TensorStore reads `\\` as a separator, so such names once made every checkpoint
unrestorable.
"""

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import photo_factory as pf
import pytest
from test_data_folder_run import write_photo_folder
from test_highlight import run_module

from conftest import TINY_OVERRIDES, read_records, run_cli, tiny_config
from rsrl_jax.data import datasets
from rsrl_jax.run import checkpoints

# Every character Linux allows in a folder name that some library may parse: glob syntax,
# URL syntax, shell syntax, escapes, quotes, white space and non-ASCII.
SPECIAL = [
    "[v1]", "[", "]", " ", "#", "%", "%20", "?", "*", ":", "é", "😀", "{a,b}", "~", "!", "'",
    '"', "\\", "$HOME", "&", ";", "=", "+", "^", "|", "<>", "`", "@", ",", "\t", "\n",
]  # fmt: skip


@pytest.mark.parametrize("char", SPECIAL, ids=[repr(c) for c in SPECIAL])
def test_checkpoints_save_restore_and_resume_under_any_folder_name(tmp_path, char):
    workdir = tmp_path / f"run{char}x"
    mngr = checkpoints.manager(str(workdir), 0)
    meta = {"record": {"round": 1, "a": 1}}
    checkpoints.save_round(mngr, 1, {"w": np.arange(3, dtype=np.float32)}, meta)
    mngr.close()
    progress = checkpoints.progress_manager(str(workdir), 0)
    checkpoints.save_progress(progress, 7, {"s": np.ones(2, np.float32)}, {"round": 2})
    progress.close()
    # Written under the folder as named, not elsewhere.
    assert sorted(p.name for p in (workdir / "fold_0").iterdir()) == ["in_progress", "round_01"]
    assert (workdir / "fold_0" / "in_progress" / "step_7").is_dir()

    reader = checkpoints.manager(str(workdir), 0, read_only=True)
    params, meta = checkpoints.restore_round(reader, 1)
    np.testing.assert_array_equal(params["w"], np.arange(3, dtype=np.float32))
    assert meta == {"record": {"round": 1, "a": 1}}
    assert checkpoints.round_records(reader) == [{"round": 1, "a": 1}]
    assert checkpoints.saved_rounds(str(workdir), 0) == [1]
    progress = checkpoints.progress_manager(str(workdir), 0)
    state, progress_meta = checkpoints.restore_progress(progress, None)
    np.testing.assert_array_equal(state["s"], np.ones(2, np.float32))
    assert progress_meta == {"round": 2}


def test_orbax_gets_a_plain_path_to_the_same_folder(tmp_path):
    plain = tmp_path / "run_v1.2-a+b"
    assert checkpoints.orbax_path(str(plain)) == str(plain)
    special = tmp_path / "run [v1]"
    special.mkdir()
    link = checkpoints.orbax_path(str(special))
    assert re.fullmatch(r"[A-Za-z0-9._+/-]+", link)
    assert os.path.samefile(link, special)
    assert checkpoints.orbax_path(str(special)) == link  # one link per folder
    # A link whose folder is gone is dropped when another link is made.
    special.rmdir()
    other = tmp_path / "run [v2]"
    other.mkdir()
    checkpoints.orbax_path(str(other))
    assert not os.path.lexists(link)


# All of them in one folder name, as Linux allows (any character but `/` and NUL).
NAME = "run [v1] #%?*:é😀{a,b}~!'\"\\$HOME&;=+^|<>`@,\t\nx"


def test_a_run_in_a_folder_named_with_every_special_character(tmp_path):
    """Trains, resumes mid-round, predicts and highlights; prepared data under such a name."""
    root = tmp_path / NAME
    workdir = root / "work"
    overrides = {
        **TINY_OVERRIDES,
        "data.cache_dir": root / "cache",
        "train.epochs_per_round": 3,
        "checkpoint.every_steps": 1,  # a checkpoint after each step: the kill lands mid-round
    }
    cmd = [sys.executable, "-m", "rsrl_jax.main", "--config=configs/demo.py"]
    cmd += [f"--workdir={workdir}"] + [f"--config.{k}={v}" for k, v in overrides.items()]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "fold 0 round 2 epoch 1/3" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    resumed = run_cli(workdir, {**overrides, "log.progress": False})
    assert "fold 0 round 2: resuming at epoch" in resumed.stderr
    assert [r["round"] for r in read_records(workdir)] == [1, 2]
    assert "highlights_fold0.png" in (workdir / "report" / "report.md").read_text()
    assert sorted(os.listdir(root)) == ["cache", "work"]
    assert os.listdir(tmp_path) == [NAME]  # nothing written under a mangled name

    photo = root / "a [1].jpg"
    pf.save_rgb_jpeg(str(photo))
    predicted = run_module("rsrl_jax.predict", f"--workdir={workdir}", photo)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert json.loads(predicted.stdout)["path"] == str(photo)
    out = root / "highlights"
    drawn = run_module("rsrl_jax.highlight", f"--workdir={workdir}", f"--out={out}", photo)
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    assert os.listdir(out) == ["a [1].png"]


def test_a_photo_folder_and_its_cache_named_with_every_special_character(tmp_path):
    root = tmp_path / NAME
    scores = write_photo_folder(root / "photos")
    config = tiny_config(
        {"data.name": "'folder'", "data.on_bad_example": "'skip'", "protocol.folds": 1}
    )
    config.data.dir = str(root / "photos")
    config.data.cache_dir = str(root / "cache")
    data = datasets.load(config, str(root / "work"))
    assert len(data) == len(scores)
    assert "broken.jpg" in (root / "work" / "skipped.jsonl").read_text()
    assert sorted(os.listdir(root)) == ["cache", "photos", "work"]
