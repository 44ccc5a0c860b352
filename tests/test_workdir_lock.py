"""One writer per workdir: a second writer refused in one line, a killed holder's lock taken
over, one lock for a multi-process run, readers that write nothing into the workdir."""

import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap

import filelock
import jax
import numpy as np
import pytest

from conftest import TINY_OVERRIDES, read_records
from rsrl_jax import errors, workdir_files
from rsrl_jax.run import workdir_lock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_second_writer_is_refused_at_once_naming_the_first(tmp_path):
    workdir = str(tmp_path / "run")
    held = workdir_lock.take(workdir)
    try:
        holder = json.loads((tmp_path / "run" / workdir_files.LOCK_HOLDER).read_text())
        assert holder["host"] == socket.gethostname() and holder["pid"] == os.getpid()
        with pytest.raises(errors.DataError) as refused:
            workdir_lock.take(workdir)  # another open of the lock file: refused like a process
        line = str(refused.value)
        assert "\n" not in line
        assert line.startswith(f"{workdir} is in use by another run (host {holder['host']}, ")
        assert f"process {os.getpid()}, started {holder['started']}, command: " in line
        assert line.endswith("): wait for it to end, or use another --workdir")
    finally:
        held.release()
    # Released: the description goes, the lock file stays; a refused first run leaves nothing.
    assert sorted(os.listdir(tmp_path)) == []
    (tmp_path / "run").mkdir()
    workdir_lock.take(workdir).release()
    assert os.listdir(workdir) == [workdir_files.LOCK]


def test_the_command_is_named_as_typed():
    main = os.path.join(ROOT, "rsrl_jax", "main.py")
    assert workdir_lock.command_line([main, "--config=configs/demo.py", "--workdir=a b"]) == (
        "python -m rsrl_jax.main --config=configs/demo.py '--workdir=a b'"
    )
    assert workdir_lock.command_line(["train.py", "-x"]).endswith(" train.py -x")


def test_a_workdir_that_cannot_be_written_is_one_line_naming_it(tmp_path):
    (tmp_path / "file").write_text("")
    workdir = str(tmp_path / "file" / "run")  # under a file: no user can write there
    with pytest.raises(errors.DataError) as refused:
        workdir_lock.take(workdir)
    assert str(refused.value).startswith(f"cannot lock {workdir} for this run (Not a directory")


# A run that takes the lock through the library and is killed (SIGKILL) while holding it.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from rsrl_jax.run import workdir_lock
    held = workdir_lock.take(sys.argv[1])  # kept: a lock object collected is released
    print("held", flush=True)
    time.sleep(600)
    """
)


def test_the_lock_of_a_killed_run_is_taken_over_with_a_warning(tmp_path, caplog):
    workdir = str(tmp_path / "run")
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, workdir], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert child.stdout.readline() == "held\n"
        with pytest.raises(errors.DataError, match=f"process {child.pid}, started "):
            workdir_lock.take(workdir)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    with caplog.at_level(logging.WARNING):
        held = workdir_lock.take(workdir)
    held.release()
    taken_over = [r.getMessage() for r in caplog.records if "took over the lock" in r.getMessage()]
    assert len(taken_over) == 1 and f"process {child.pid}, started " in taken_over[0]
    assert taken_over[0].startswith(f"{workdir}: took over the lock left by a run that ended")


def test_a_held_lock_whose_recorded_holder_has_ended_is_told_so(tmp_path, monkeypatch):
    # The OS lock is held (here by this process) but its description names a process of this
    # host that has ended: the line says so rather than naming that run as running.
    monkeypatch.setattr(workdir_lock, "HOLDER_WAIT_S", 0.1)
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    lock = filelock.FileLock(str(tmp_path / workdir_files.LOCK), blocking=False)
    lock.acquire()
    try:
        holder = {**workdir_lock.this_holder(), "pid": gone.pid}
        (tmp_path / workdir_files.LOCK_HOLDER).write_text(json.dumps(holder))
        with pytest.raises(errors.DataError, match=f"process {gone.pid}, .*has ended: a process"):
            workdir_lock.take(str(tmp_path))
    finally:
        lock.release()


def test_a_multi_process_run_locks_once_and_every_process_hears_a_refusal(tmp_path, monkeypatch):
    """Process 0 takes the lock; the others take none and stop with process 0's line."""
    from jax.experimental import multihost_utils

    sent = {}

    def broadcast(buffer):  # process 0's buffer reaches everyone
        if jax.process_index() == 0:
            sent["buffer"] = np.array(buffer)
        return sent.get("buffer", np.zeros_like(buffer))

    monkeypatch.setattr(multihost_utils, "broadcast_one_to_all", broadcast)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    workdir = str(tmp_path / "run")
    for process in (0, 1):  # a free workdir: process 0 holds it, process 1 takes nothing
        monkeypatch.setattr(jax, "process_index", lambda p=process: p)
        with workdir_lock.hold(workdir):
            if process == 0:
                assert os.listdir(workdir) == [workdir_files.LOCK_HOLDER, workdir_files.LOCK]
            else:
                assert not os.path.exists(workdir)
    held = workdir_lock.take(workdir)  # another run holds it: both processes stop, one line
    try:
        lines = []
        for process in (0, 1):
            monkeypatch.setattr(jax, "process_index", lambda p=process: p)
            with pytest.raises(errors.DataError) as refused:
                with workdir_lock.hold(workdir):
                    pass
            lines.append(str(refused.value))
        assert lines[0] == lines[1] and "is in use by another run" in lines[0]
    finally:
        held.release()


def test_two_runs_started_together_one_trains_the_other_is_refused(tmp_path):
    """Two tiny runs on one workdir at once: one trains to the end, the other exits 1 at once
    naming the first's process; the records are whole and the report rebuilds from them
    into another folder, leaving the workdir untouched."""
    workdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "rsrl_jax.main", "--config=configs/demo.py"]
    cmd += [f"--workdir={workdir}"]
    cmd += [f"--config.{k}={v}" for k, v in {**TINY_OVERRIDES, "log.progress": False}.items()]
    runs = [
        subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(2)
    ]
    results = [(p, *p.communicate(timeout=900)) for p in runs]
    assert sorted(p.returncode for p, _, _ in results) == [0, 1], [e[-2000:] for *_, e in results]
    (winner, _, trained), (_, _, refused) = sorted(results, key=lambda r: r[0].returncode)
    assert "fold 0 round 2/2" in trained and "round 1/2" not in refused
    last = refused.strip().splitlines()[-1]
    assert last.startswith(f"error: {workdir} is in use by another run (host ")
    assert f", process {winner.pid}, started " in last
    assert "command: python -m rsrl_jax.main --config=configs/demo.py" in last
    assert "Traceback" not in refused
    assert [(r["fold"], r["round"]) for r in read_records(workdir)] == [(0, 1), (0, 2)]
    assert sorted(os.listdir(workdir / "fold_0")) == ["round_01", "round_02"]
    assert not (workdir / workdir_files.LOCK_HOLDER).exists()  # released

    before = {p: p.stat().st_mtime_ns for p in workdir.rglob("*")}
    out = tmp_path / "report_elsewhere"
    report = subprocess.run(
        [sys.executable, "-m", "rsrl_jax.report", f"--workdir={workdir}", f"--out={out}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert report.returncode == 0, report.stderr[-2000:]
    assert report.stdout.strip() == str(out / "report.md")
    text = (out / "report.md").read_text()
    assert "highlights_fold0.png" in text and (out / "highlights_fold0.png").is_file()
    assert {p: p.stat().st_mtime_ns for p in workdir.rglob("*")} == before


def test_both_processes_of_a_run_stop_with_the_line_when_the_workdir_is_held(tmp_path):
    """Two jax.distributed processes of one run on a workdir another run holds: process 0 is
    refused, and process 1 hears it and stops with the same line instead of waiting."""
    workdir = str(tmp_path / "run")
    held = workdir_lock.take(workdir)
    try:
        with socket.socket() as s:
            s.bind(("localhost", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "rsrl_jax.main", "--config=configs/demo.py"]
                + [f"--workdir={workdir}", "--distributed=on", "--num_processes=2"]
                + [f"--coordinator_address=localhost:{port}", f"--process_id={i}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env=env,
            )
            for i in (0, 1)
        ]
        results = []
        for p in procs:  # neither may hang: each ends within the timeout
            _, stderr = p.communicate(timeout=300)
            results.append((p.returncode, stderr))
    finally:
        held.release()
    line = f"error: {workdir} is in use by another run (host {socket.gethostname()}, "
    line += f"process {os.getpid()}, "
    for code, stderr in results:
        assert code == 1, stderr[-3000:]
        assert stderr.strip().splitlines()[-1].startswith(line), stderr[-3000:]
    assert results[0][1].strip().splitlines()[-1] == results[1][1].strip().splitlines()[-1]


def test_compare_and_study_refuse_a_folder_a_run_holds(tmp_path):
    """A study or compare and a run on one folder exclude each other (refused before any run)."""
    from conftest import tiny_config
    from rsrl_jax.experiments import compare, study

    held = workdir_lock.take(str(tmp_path))
    try:
        with pytest.raises(
            errors.DataError, match=f"is in use by another run .*process {os.getpid()}"
        ):
            compare.compare(tiny_config(), str(tmp_path), ["plain"])
        with pytest.raises(errors.DataError, match="is in use by another run"):
            study.study(tiny_config(), str(tmp_path), ["plain"], [0], [0.1])
    finally:
        held.release()
    assert os.listdir(tmp_path) == [workdir_files.LOCK]  # no run started


def test_a_read_only_workdir_without_a_finished_run_is_refused_before_any_work(
    tmp_path, monkeypatch
):
    """A file system that refuses writes (EROFS): a run that has work to do is refused at
    once, before its data are read (a finished run rerun takes no lock: tests/test_resume.py)."""
    from conftest import tiny_config
    from rsrl_jax.data import datasets
    from rsrl_jax.engine import rsrl

    def refuse(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", self.lock_file)

    def no_data(*args, **kwargs):
        raise AssertionError("the data were read")

    monkeypatch.setattr(filelock.FileLock, "acquire", refuse)
    monkeypatch.setattr(datasets, "load", no_data)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(tiny_config().to_json())  # rounds left
    for workdir in (tmp_path / "empty", tmp_path / "run"):
        workdir.mkdir(exist_ok=True)
        with pytest.raises(errors.DataError) as refused:
            rsrl.run(tiny_config(), str(workdir))
        assert str(refused.value).startswith(
            f"cannot lock {workdir} for this run (Read-only file system: "
        )
    assert sorted(os.listdir(tmp_path / "empty")) == []
    with pytest.raises(errors.DataError, match=r"^cannot lock .*new .*Read-only file system"):
        workdir_lock.take(str(tmp_path / "new"))
