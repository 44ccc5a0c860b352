"""The console a person reads: plain lines, chatter and repeats kept off it, an ETA without
the compile, the whole log in WORKDIR/log.txt (units; the tiny run's console at the end)."""

import logging
import re

from rsrl_jax import console, workdir_files
from rsrl_jax.run import progress


def record(message, level=logging.INFO, path="/x/rsrl_jax/engine/rounds.py", name="absl"):
    return logging.LogRecord(name, level, path, 1, message, None, None)


def test_the_first_step_is_timed_apart_from_the_eta(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    p = progress.Progress("fold 0 round 1 training", 1000, "img", interval_s=1e9)
    now[0] = 100.0  # the first step: 100 s of compiling
    p.update(10)
    # then 10 steps of 10 images, 0.1 s each
    for _ in range(10):
        now[0] += 0.1
        p.update(10)
    # 110 of 1000 done; 100 images in the 1.0 s after the first step: 100 img/s, ETA 8.9 s
    # (with the compile in the rate it would say 110 img / 101 s: about 817 s).
    assert p.figures() == "110/1000 img (11%), 100.0 img/s, ETA 9s (first step 100.0s, compiling)"
    assert p.figures() == "110/1000 img (11%), 100.0 img/s, ETA 9s"  # said once


def test_no_progress_line_right_after_an_epoch_line(monkeypatch):
    now, logged = [0.0], []
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    monkeypatch.setattr(progress.logging, "info", lambda *a: logged.append(a))
    p = progress.Progress("training", 100, "img", interval_s=10.0)
    for t in (1.0, 12.0):  # the first step, then one past the interval: a line
        now[0] = t
        p.update(10)
    assert len(logged) == 1
    p.mark()  # an epoch's line told the progress at 12 s
    now[0] = 21.0
    p.update(10)
    assert len(logged) == 1  # not due until 22 s
    now[0] = 22.5
    p.update(10)
    assert len(logged) == 2


def test_chatty_libraries_are_kept_off_the_console():
    quiet = console.QuietLibraries()
    assert quiet.filter(record("fold 0 round 1/2: trained on 42"))
    assert not quiet.filter(record("Saving checkpoint", path="/site/orbax/checkpoint/x.py"))
    orbax_warning = record("slow save", logging.WARNING, "/site/orbax/checkpoint/x.py")
    assert not quiet.filter(orbax_warning)
    assert not quiet.filter(record("Load dataset info", path="/site/tensorflow_datasets/a.py"))
    assert not quiet.filter(record("compiling", path="/site/jax/_src/x.py"))  # INFO: file only
    assert quiet.filter(record("a jax warning", logging.WARNING, "/site/jax/_src/x.py"))
    tfds = "/site/tensorflow_datasets/core/x.py:3: DeprecationWarning: old"
    assert not quiet.filter(record(tfds, logging.WARNING, name="py.warnings"))
    mine = "/x/rsrl_jax/data/photos.py:3: UserWarning: odd"
    assert quiet.filter(record(mine, logging.WARNING, name="py.warnings"))


def test_a_warning_repeated_every_round_is_said_once_with_its_count():
    repeats = console.Repeats()
    shown = [
        repeats.filter(record(f"fold 0 round {r}: only {30 - r} samples kept", logging.WARNING))
        for r in (2, 3, 4)
    ]
    assert shown == [True, False, False]
    assert repeats.filter(record("fold 0 round 2 epoch 1/1: loss 1.2"))  # INFO: never held
    assert repeats.filter(record("another warning", logging.WARNING))
    assert repeats.summary() == [
        "warning: (repeated 2 more times, all in log.txt) fold 0 round 2: only 28 samples kept"
    ]
    plain = console.Plain("%(message)s")
    assert plain.format(record("x", logging.WARNING)) == "warning: x"
    assert plain.format(record("y")) == "y"


def test_a_python_warning_is_one_console_line_its_message():
    import warnings

    logged = warnings.formatwarning(
        "May not flag all label issues in class: 0", UserWarning, "/s/cleanlab/filter.py", 890
    )
    assert logged.count("\n") >= 1  # formatwarning's location, source line, blank line
    warning = record(logged, logging.WARNING, "/usr/lib/warnings.py", name="py.warnings")
    plain = console.Plain("%(message)s")
    assert plain.format(warning) == "warning: May not flag all label issues in class: 0"
    repeats = console.Repeats()
    assert repeats.filter(warning)
    assert not repeats.filter(record(logged.replace("0", "3"), logging.WARNING, name="py.warnings"))
    assert repeats.summary() == [
        "warning: (repeated 1 more time, all in log.txt) May not flag all label issues in class: 0"
    ]
    not_a_warning = record("odd: text\nmore", logging.WARNING, name="py.warnings")
    assert plain.format(not_a_warning) == "warning: odd: text"


def test_the_log_file_waits_for_the_lock_and_appends(tmp_path):
    from rsrl_jax.run import workdir_lock

    workdir = tmp_path / "run"
    handler = console.WorkdirLog(str(workdir))
    try:
        handler.emit(record("before the workdir"))
        assert not workdir.exists()  # a refused command leaves no folder behind
        workdir.mkdir()
        handler.emit(record("a reader's line"))  # the workdir exists, its lock is not ours
        assert not (workdir / workdir_files.LOG).exists()
        held = workdir_lock.take(str(workdir))
        handler.emit(record("after it", logging.WARNING))
        held.release()
        handler.emit(record("after the release"))  # the run's last lines, once it has begun
    finally:
        handler.close()
    reader = console.WorkdirLog(str(workdir))  # a finished run rerun: a reader, no lock
    reader.emit(record("rerun"))
    reader.close()
    with workdir_lock.hold(str(workdir)):  # a resumed run appends
        again = console.WorkdirLog(str(workdir))
        again.emit(record("resumed"))
        again.close()
    lines = (workdir / workdir_files.LOG).read_text().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "before the workdir",
        "a reader's line",
        "after it",
        "after the release",
        "resumed",
    ]
    assert re.match(r"W\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ rounds.py:1\]", lines[2])


def test_the_console_shows_plain_lines_and_the_log_file_all(tiny_run):
    workdir, records, stderr = tiny_run
    lines = stderr.splitlines()
    assert not [line for line in lines if re.match(r"[IWEF]\d{4} \d\d:", line)]
    assert sum(bool(re.match(r"fold 0 round \d/2: trained on", line)) for line in lines) == 2
    assert not [line for line in lines if "checkpoint" in line.lower()]  # Orbax's chatter
    log = (workdir / workdir_files.LOG).read_text()
    assert re.search(r"^I\d{4} .*\] fold 0 round 2/2: trained on", log, re.M)
    assert re.search(r"^I\d{4} .*checkpoint_manager.py:\d+\]", log, re.M)  # kept in the file


def test_python_callers_get_the_commands_lines_unless_they_set_up_logging():
    """The API's console (`console.for_python`): `warning: ...`, not `WARNING:absl:...`, and
    Orbax's read-only notice dropped; a caller's own handler is kept as it is."""
    import subprocess
    import sys

    script = (
        "import logging, sys\n"
        "from absl import logging as absl_logging\n"
        "from rsrl_jax import console\n"
        "if sys.argv[1] == 'own': logging.basicConfig(format='OWN %(message)s')\n"
        "console.for_python()\n"
        "absl_logging.warning('Given directory is read only=/w/fold_0')\n"
        "absl_logging.warning('a partial run')\n"
    )
    for mode, line in (("none", "warning: a partial run"), ("own", "OWN a partial run")):
        done = subprocess.run(
            [sys.executable, "-c", script, mode], capture_output=True, text=True, check=True
        )
        assert done.stderr.splitlines() == [line]
