"""Interruptions and disks that cannot be written end a command in one line, losing nothing.

The signal handling and the error lines are tried on a small command (no JAX import: fast);
the training loop's save on SIGTERM and its resume in tests/test_resume.py; a full disk is
simulated by failing writes in-process (a full file system needs a mount, which CI lacks).
"""

import errno
import json
import os
import pathlib
import subprocess
import sys

import pytest

from rsrl_jax import errors, files
from rsrl_jax.run import stops
from rsrl_jax.run.recorder import Recorder

ROOT = pathlib.Path(__file__).resolve().parent.parent

# A command like the package's CLIs: --do picks what its main does.
FAKE_CLI = """
import errno, gc, os, signal, time
from absl import flags
from rsrl_jax import commands, files
from rsrl_jax.run import stops

flags.DEFINE_string("do", "", "What to do.")
flags.DEFINE_string("workdir", "", "The workdir.")


def main(argv):
    do, workdir = flags.FLAGS.do, flags.FLAGS.workdir
    if workdir:
        stops.writing(workdir)
    if do == "sigint":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)
    if do == "two_sigterms_in_a_save":
        with stops.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
    if do == "sigterm_in_a_save":
        with stops.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            print("the save ended", flush=True)
        time.sleep(30)
    if do == "sigterm_in_gc_callback":  # as in JAX's gc callback: Python ignores its errors
        def callback(phase, info):
            if phase == "start":  # one signal
                os.kill(os.getpid(), signal.SIGTERM)
                sum(range(100_000))  # the handler runs here, inside the callback
        gc.callbacks.append(callback)
        gc.collect()
        gc.callbacks.remove(callback)
        time.sleep(30)
    if do == "no_space":  # Orbax's threads calling back into closed loops, then the error
        import asyncio

        def late_callback():
            loop = asyncio.new_event_loop()
            loop.close()
            loop.call_soon_threadsafe(print)

        class Late:
            def __del__(self):
                late_callback()

        Late()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(workdir, "x"))
    if do == "read_only":
        path = os.path.join(workdir, "config.json.123.tmp")
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)


commands.run(main)
"""


def run_fake(*args):
    return subprocess.run(
        [sys.executable, "-c", FAKE_CLI, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture(autouse=True)
def fresh_state():
    stops.reset()
    yield
    stops.reset()


def test_ctrl_c_outside_training_is_one_line_with_exit_130_and_what_the_workdir_holds(tmp_path):
    (tmp_path / "fold_0" / "round_01").mkdir(parents=True)
    (tmp_path / "fold_0" / "round_02").mkdir()
    result = run_fake("--do=sigint", f"--workdir={tmp_path}")
    assert result.returncode == 130
    assert result.stderr.splitlines() == [
        f"interrupted (SIGINT): saved in {tmp_path}: fold 0 up to round 2; run the same "
        "command to resume"
    ]


def test_ctrl_c_of_a_command_without_a_workdir_is_one_line():
    result = run_fake("--do=sigint")
    assert result.returncode == 130
    assert result.stderr.splitlines() == [
        "interrupted (SIGINT): stopped before finishing; run the same command again"
    ]


def test_a_signal_during_a_save_waits_for_its_end_then_stops():
    result = run_fake("--do=sigterm_in_a_save")
    assert result.returncode == 143
    assert result.stdout == "the save ended\n"
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("interrupted (SIGTERM)")


def test_a_second_signal_stops_at_once_even_inside_a_save():
    result = run_fake("--do=two_sigterms_in_a_save")
    assert result.returncode == 143
    assert result.stderr.splitlines() == [
        "interrupted again (SIGTERM): stopped at once; what was saved before is intact; run "
        "the same command to resume"
    ]


def test_a_signal_inside_a_gc_callback_still_stops_in_one_line():
    result = run_fake("--do=sigterm_in_gc_callback")
    assert result.returncode == 143
    assert result.stderr.splitlines() == [
        "interrupted (SIGTERM): stopped before finishing; run the same command again"
    ]


def test_a_full_disk_is_one_line_without_the_background_threads_tracebacks(tmp_path):
    result = run_fake("--do=no_space", f"--workdir={tmp_path}")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: no space left on the device of {tmp_path} (writing x): free space, or use "
        "another --workdir; what was saved before is intact"
    ]


def test_a_read_only_workdir_is_one_line_naming_it_and_the_file(tmp_path):
    result = run_fake("--do=read_only", f"--workdir={tmp_path}")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {tmp_path} is read-only (writing config.json): make it writable, or use "
        "another --workdir; what was saved before is intact"
    ]


def test_saved_text_names_each_folds_last_round_and_mid_round_state(tmp_path):
    for folder in ("fold_0/round_01", "fold_0/round_03", "fold_1/in_progress/step_7", "fold_2"):
        (tmp_path / folder).mkdir(parents=True)
    assert stops.saved_text(str(tmp_path)) == (
        f"saved in {tmp_path}: fold 0 up to round 3; fold 1: a mid-round state (step 7); "
        "fold 2: no round yet"
    )
    (tmp_path / "folds_in_progress" / "step_12").mkdir(parents=True)
    assert stops.saved_text(str(tmp_path)).endswith("the folds' mid-round state (step 12)")
    # Nothing but a lock (a workdir removed when its lock is released), or no workdir.
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / ".lock").write_text("")
    for new in (tmp_path / "new", tmp_path / "none"):
        assert stops.saved_text(str(new)) == f"nothing was saved yet for {new}"
    (tmp_path / "new" / "config.json").write_text("{}")
    assert (
        stops.saved_text(str(tmp_path / "new")) == f"no round was saved yet in {tmp_path / 'new'}"
    )


# TensorStore's error inside Orbax's save when the disk filled (as raised, abridged).
TENSORSTORE_FULL = (
    'RESOURCE_EXHAUSTED: Error writing "conv2.bias/0" in OCDBT database at local file '
    '"{w}/fold_0/round_03.orbax-checkpoint-tmp/params.orbax-checkpoint-tmp/ocdbt.process_0/": '
    'Failed writing: "{w}/fold_0/round_03.orbax-checkpoint-tmp/params.orbax-checkpoint-tmp/'
    'ocdbt.process_0/d/6d9dce9e": Failed to write 4390912 bytes to file 14: No space left on '
    "device [os_error_code='28']"
)


def test_a_full_disk_inside_orbax_names_the_workdir_and_the_round(tmp_path):
    stops.writing(str(tmp_path))
    try:
        try:
            raise ValueError(TENSORSTORE_FULL.format(w=tmp_path))
        except ValueError as inner:
            raise RuntimeError("a save's thread failed") from inner
    except RuntimeError as e:
        problem = stops.disk_problem(e)
    assert isinstance(problem, errors.DataError)
    assert str(problem) == (
        f"no space left on the device of {tmp_path} (writing fold_0/round_03): free space, or "
        "use another --workdir; what was saved before is intact"
    )


@pytest.mark.parametrize(
    ("code", "start"),
    [
        (errno.ENOSPC, "no space left on the device of {d}"),
        (errno.EDQUOT, "the disk quota of {d} is exceeded"),
        (errno.EROFS, "{d} is read-only"),
        (errno.EACCES, "{d} cannot be written by this user (permission denied)"),
        (errno.EPERM, "{d} cannot be written by this user (operation not permitted)"),
    ],
)
def test_each_disk_error_outside_a_workdir_names_the_folder(tmp_path, code, start):
    problem = stops.disk_problem(OSError(code, os.strerror(code), str(tmp_path / "out.png")))
    assert str(problem).startswith(start.format(d=tmp_path) + f" (writing {tmp_path}/out.png): ")
    assert str(problem).endswith(", or write elsewhere; what was saved before is intact")


def test_other_errors_are_not_disk_problems(tmp_path):
    assert stops.disk_problem(OSError(errno.ENOENT, "No such file", str(tmp_path))) is None
    assert stops.disk_problem(ValueError("INVALID_ARGUMENT: [os_error_code='22']")) is None
    assert stops.disk_problem(RuntimeError("a bug")) is None


def _fail_fsync(monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    path.write_text("old")
    _fail_fsync(monkeypatch)
    with pytest.raises(OSError):
        files.write_atomic(str(path), "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["summary.json"]


def test_writing_what_a_file_holds_already_writes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    files.write_atomic(str(path), "{}")
    before = path.stat()
    _fail_fsync(monkeypatch)  # any write would fail
    files.write_atomic(str(path), "{}")
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_failed_metrics_line_leaves_the_lines_before_it_whole(tmp_path, monkeypatch):
    recorder = Recorder(str(tmp_path), is_writer=True)
    recorder._append("metrics.jsonl", {"round": 1}, sync=True)
    _fail_fsync(monkeypatch)
    with pytest.raises(OSError) as raised:
        recorder._append("metrics.jsonl", {"round": 2, "big": "x" * 100_000}, sync=True)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"round": 1}]
    stops.writing(str(tmp_path))
    assert str(stops.disk_problem(raised.value)).startswith(
        f"no space left on the device of {tmp_path}: free space"
    )
