"""A run's log lines are true: no selection for a round that will not run, a finished run
says it is complete, progress never passes 100%, no empty folder is left behind."""

import shutil

from conftest import TINY_OVERRIDES, read_records, run_cli
from rsrl_jax.run import checkpoints, progress


def test_selection_warnings_only_for_rounds_that_will_run(tiny_run):
    """The tiny run's selections drop a whole class: logged for round 2, not for round 3."""
    workdir, _, stderr = tiny_run
    assert "fold 0 round 2: the selection keeps no photo of" in stderr
    assert "round 3" not in stderr
    assert sorted(p.name for p in (workdir / "fold_0").iterdir()) == ["round_01", "round_02"]


def test_raising_rounds_logs_the_recorded_selection_when_its_round_runs(tiny_run, tmp_path):
    workdir = tmp_path / "more_rounds"
    shutil.copytree(tiny_run[0], workdir)
    more = {**TINY_OVERRIDES, "rsrl.rounds": 3, "resume": "force", "log.progress": False}
    result = run_cli(workdir, more)
    assert "fold 0: rounds 1-2 done, resuming at round 3" in result.stderr
    assert "fold 0 round 3: the selection keeps no photo of" in result.stderr  # recorded by round 2
    assert "round 4" not in result.stderr
    meta = checkpoints.restore_round(checkpoints.manager(str(workdir), 0, read_only=True), 3)[1]
    assert meta["selection_warnings"][0].startswith(
        "fold 0 round 4: the selection keeps"
    )  # unlogged
    assert "nothing to train" not in result.stderr
    assert [r["round"] for r in read_records(workdir)] == [1, 2, 3]
    assert not (workdir / "fold_0" / "in_progress").exists()

    again = run_cli(workdir, more)
    assert "fold 0: rounds 1-3 done, all of rsrl.rounds=3; nothing to train" in again.stderr
    assert "resuming" not in again.stderr
    assert "selection keeps" not in again.stderr
    assert not (workdir / "fold_0" / "in_progress").exists()


def test_images_left_of_a_resumed_round_count_only_what_it_trains():
    # 3 epochs of 36 images in batches of 16 (3 batches an epoch, the last one of 4 images).
    assert progress.images_left(3, 36, 16, start_epoch=1, start_batch=0) == 108
    assert progress.images_left(3, 36, 16, start_epoch=1, start_batch=1) == 92
    assert progress.images_left(3, 36, 16, start_epoch=1, start_batch=3) == 72  # epoch 1 done
    assert progress.images_left(3, 36, 16, start_epoch=3, start_batch=2) == 4


def test_a_resumed_run_says_what_it_resumes_or_that_it_is_complete():
    assert progress.rounds_status(1, 3) == "round 1 done, resuming at round 2"
    assert progress.rounds_status(2, 3) == "rounds 1-2 done, resuming at round 3"
    assert progress.rounds_status(3, 3) == "rounds 1-3 done, all of rsrl.rounds=3; nothing to train"
    assert progress.rounds_status(4, 3) == (
        "rounds 1-4 done, more than rsrl.rounds=3; nothing to train"
    )
