"""A mistake a user can fix ends a command with one readable line, not a traceback.

Every CLI runs its `main` through `rsrl_jax.commands.run`: a `UserError` (errors.ConfigError: exit
2, errors.DataError: exit 1), a bad flag or config override (exit 2) prints `error: ...` on
one stderr line; --traceback or RSRL_JAX_TRACEBACK=1 adds the traceback; any other exception
keeps its traceback. The wrapper is tried on a small program (fast: no JAX import); the real
CLIs on one representative mistake each, started together.
"""

import ast
import os
import pathlib
import re
import subprocess
import sys
import types

import numpy as np
import pytest

from conftest import tiny_config
from rsrl_jax import config, errors, overrides
from rsrl_jax.analysis import report
from rsrl_jax.data import builders, photos
from rsrl_jax.data.listing import BadSource
from rsrl_jax.engine import rounds
from rsrl_jax.experiments import compare
from rsrl_jax.models import convert
from rsrl_jax.run import checkpoints, distributed, resume, round_pairs
from rsrl_jax.run.recorder import Recorder

ROOT = pathlib.Path(__file__).resolve().parent.parent

# A command like the package's CLIs: --fail picks what its main raises.
FAKE_CLI = """
from absl import app, flags
from ml_collections import config_flags
from rsrl_jax import commands, errors

config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
flags.DEFINE_enum(
    "fail", "none", ["none", "config", "data", "usage", "bug", "lines"], "What to raise."
)


def main(argv):
    fail = flags.FLAGS.fail
    if fail == "config":
        raise errors.ConfigError("config.rsrl.rounds=0: must be >= 1")
    if fail == "data":
        raise errors.DataError("photos/a.jpg: empty file (0 bytes)")
    if fail == "usage":
        raise app.UsageError("give at least one PHOTO")
    if fail == "bug":
        raise RuntimeError("a bug, not the user's mistake")
    if fail == "lines":  # as predict's JSON lines, read by `| head -1`
        for i in range(10**6):
            print(i)
    print("rounds", flags.FLAGS.config.rsrl.rounds if flags.FLAGS.config else None)


commands.run(main)
"""

SMALL_CONFIG = """
import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.rsrl = ml_collections.ConfigDict({"rounds": 12, "num_majority": 3})
    c.data = ml_collections.ConfigDict({"name": "synthetic", "dir": ""})
    return c
"""


def run_fake(*args, env=None):
    return subprocess.run(
        [sys.executable, "-c", FAKE_CLI, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "small.py"
    path.write_text(SMALL_CONFIG)
    return path


def assert_one_line(result, code: int, line: str | None = None, contains=()):
    """Exit status `code`, nothing on stderr but one `error: ...` line (`line` if given)."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    if line is not None:
        assert lines[0] == line
    for text in contains:
        assert text in lines[0]


def test_fake_cli_runs_when_nothing_is_wrong(small_config):
    result = run_fake(f"--config={small_config}", "--config.rsrl.rounds=3")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "rounds 3\n"


@pytest.mark.parametrize(
    ("fail", "code", "line"),
    [
        ("config", 2, "error: config.rsrl.rounds=0: must be >= 1"),
        ("data", 1, "error: photos/a.jpg: empty file (0 bytes)"),
        ("usage", 2, "error: give at least one PHOTO (see --help)"),
    ],
)
def test_user_errors_of_main_are_one_line(fail, code, line):
    assert_one_line(run_fake(f"--fail={fail}"), code, line)


def test_an_unknown_flag_is_one_line_naming_it_and_its_likely_spelling():
    result = run_fake("--fial=data")
    assert_one_line(result, 2, contains=("'fial'", "fail", "--help"))


def test_a_bad_flag_value_is_one_line():
    assert_one_line(run_fake("--fail=often"), 2, contains=("--fail=often", "--help"))


def test_a_missing_required_flag_is_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "rsrl_jax.report"], capture_output=True, text=True, timeout=60
    )
    assert_one_line(result, 2, "error: --workdir is required (see --help)")


@pytest.mark.parametrize("args", [["--fail=lines"], ["--help"]])
def test_a_reader_that_stops_reading_gets_no_traceback(args):
    """`python -m rsrl_jax.predict ... | head -1`, `--help | head`: no BrokenPipeError."""
    process = subprocess.Popen(
        [sys.executable, "-c", FAKE_CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read()
    process.wait(timeout=60)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert process.returncode == (0 if args == ["--help"] else 141)


def test_dash_h_is_help():
    result = subprocess.run(
        [sys.executable, "-m", "rsrl_jax.report", "-h"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "--workdir" in result.stdout and not result.stderr


def test_two_missing_required_flags_are_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "rsrl_jax.highlight"], capture_output=True, text=True, timeout=60
    )
    assert_one_line(result, 2, "error: --workdir and --out are required (see --help)")


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (  # the example: one line, no escaped quotes or literal \n
            "--config.rsrl.round=3",
            "error: --config.rsrl.round=3: the config has no field 'rsrl.round' "
            "(did you mean 'rsrl.rounds'?)",
        ),
        (
            "--config.data.nme.x=1",
            "error: --config.data.nme.x=1: the config has no field 'data.nme' "
            "(did you mean 'data.name'?)",
        ),
        (
            "--config.rsrl.zzz=1",
            "error: --config.rsrl.zzz=1: the config has no field 'rsrl.zzz' "
            "(rsrl has: num_majority, rounds)",
        ),
        (
            "--config.seed=1",
            "error: --config.seed=1: the config has no field 'seed' (it has: data, rsrl)",
        ),
    ],
)
def test_an_unknown_config_field_is_one_line_naming_it(small_config, override, line):
    assert_one_line(run_fake(f"--config={small_config}", override), 2, line)


def test_a_config_value_of_the_wrong_type_is_one_line(small_config):
    result = run_fake(f"--config={small_config}", "--config.rsrl.rounds=abc")
    assert_one_line(result, 2, contains=("--config.rsrl.rounds=abc", "'abc'"))


def test_a_missing_config_file_is_one_line(tmp_path):
    missing = tmp_path / "confg.py"
    result = run_fake(f"--config={missing}")
    assert_one_line(result, 2, f"error: --config={missing}: no such config file")


def test_an_unexpected_error_keeps_its_traceback():
    result = run_fake("--fail=bug")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "RuntimeError: a bug, not the user's mistake" in result.stderr


def test_a_config_file_that_does_not_run_keeps_its_traceback(tmp_path):
    """The config file is the user's Python code: its traceback names the line."""
    bad = tmp_path / "bad.py"
    bad.write_text("def get_config(:\n    pass\n")
    result = run_fake(f"--config={bad}")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "SyntaxError" in result.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--fail=data", "--traceback"], None), (["--fail=data"], {"RSRL_JAX_TRACEBACK": "1"})],
)
def test_a_traceback_comes_when_asked_for(args, env):
    result = run_fake(*args, env=env)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "main" in result.stderr
    assert result.stderr.splitlines()[-1] == "error: photos/a.jpg: empty file (0 bytes)"


def test_a_traceback_of_a_flag_error_comes_when_asked_for(small_config):
    result = run_fake(
        f"--config={small_config}", "--config.rsrl.round=3", env={"RSRL_JAX_TRACEBACK": "1"}
    )
    assert result.returncode == 2 and "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: --config.rsrl.round=3: ")
    result = run_fake(f"--config={small_config}", "--config.rsrl.round=3", "--traceback")
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_every_cli_runs_its_main_through_commands_run():
    """A new CLI that calls app.run would print tracebacks again. Each command has one home:
    its module (no module forwards `python -m` to another)."""
    clis = []
    for path in sorted([*(ROOT / "rsrl_jax").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                body = ast.unparse(node)
                # workers the benchmark starts with a JSON spec, no CLI
                if path.name in ("bench_workers.py", "study_side.py", "torch_loop.py"):
                    continue
                if path.relative_to(ROOT).as_posix() == "rsrl_jax/__main__.py":
                    continue  # the list of commands
                assert "runpy" not in body, path  # a forwarder: the command lives elsewhere
                clis.append(path.relative_to(ROOT).as_posix())
                assert re.search(r"commands\.run\(main\b", body) and "app.run" not in body, path
    assert len(clis) == 15, clis  # benchmarks/vit.py the fifteenth


# Real CLIs, one representative mistake each; started together to share the import time.
# (A bad config value such as rsrl.rounds=0 takes the path of data.dir and model.pretrained:
# config.validate, tested in-process below.)
def real_cli_cases(tmp_path):
    """name -> (python -m arguments, exit status, the start of the error line)."""
    missing = tmp_path / "no_such_run"
    demo = "--config=configs/demo.py"
    return {
        "typo": (
            ["rsrl_jax.main", demo, "--config.rsrl.round=3"],
            2,
            "error: --config.rsrl.round=3: the config has no field 'rsrl.round' "
            "(did you mean 'rsrl.rounds'?)",
        ),
        "data_dir": (
            [
                "rsrl_jax.main",
                demo,
                "--config.data.name=folder",
                f"--config.data.dir={tmp_path / 'photos'}",
            ],
            2,
            f"error: --config.data.dir='{tmp_path / 'photos'}': no such folder",
        ),
        "weights": (
            [
                "rsrl_jax.main",
                demo,
                "--config.model.width=1.0",
                "--config.model.fc_dim=4096",
                f"--config.model.pretrained={tmp_path / 'weights'}",
            ],
            2,
            f"error: --config.model.pretrained='{tmp_path / 'weights'}': no converted weights at",
        ),
        "predict": (
            ["rsrl_jax.predict", f"--workdir={missing}", "photo.jpg"],
            1,
            f"error: {missing} not found: give the workdir of a finished run",
        ),
        "convert": (
            ["rsrl_jax.convert", f"--torch_weights={tmp_path / 'a.pth'}", f"--out={tmp_path}"],
            1,
            f"error: {tmp_path / 'a.pth'}: no such file",
        ),
        "report": (
            ["rsrl_jax.report", f"--workdir={missing}"],
            1,
            f"error: {missing} not found: give the workdir of a finished run",
        ),
    }


def run_together(commands: dict) -> dict:
    """name -> result of `python -m ARGS...` for each name -> ARGS, all started at once."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for name, args in commands.items()
    }
    results = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        results[name] = types.SimpleNamespace(
            returncode=proc.returncode, stdout=stdout, stderr=stderr
        )
    return results


def error_lines(stderr: str) -> list[str]:
    """stderr's error lines (the run's own log lines before it aside)."""
    return [line for line in stderr.splitlines() if line.startswith(("error", "Traceback"))]


def test_real_clis_print_one_line_for_a_user_error(tmp_path):
    cases = real_cli_cases(tmp_path)
    commands = {name: args for name, (args, _, _) in cases.items()}
    commands["traceback"] = [*cases["report"][0], "--traceback"]
    commands["help"] = ["rsrl_jax.report", "--help"]
    results = run_together(commands)
    for name, (_, code, start) in cases.items():
        result = results[name]
        assert result.returncode == code, (name, result.stderr)
        assert "Traceback" not in result.stderr, (name, result.stderr)
        (line,) = error_lines(result.stderr)
        assert line.startswith(start), (name, line)
        assert result.stderr.splitlines()[-1] == line, (name, result.stderr)  # the last word
    shown = results["traceback"]
    assert shown.returncode == 1 and "Traceback" in shown.stderr
    assert shown.stderr.splitlines()[-1].startswith(cases["report"][2])
    assert "--[no]traceback" in results["help"].stdout  # absl's --help: exit status 1
    assert "--workdir" in results["help"].stdout and not results["help"].stderr


def test_highlight_names_a_round_the_run_did_not_save(tiny_run, tmp_path):
    workdir = tiny_run[0]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsrl_jax.highlight",
            f"--workdir={workdir}",
            "--round=7",
            f"--out={tmp_path}",
            "photo.jpg",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert_one_line(
        result,
        1,
        "error: round 7 does not exist: the run plans rounds 1-2 (rsrl.rounds=2); pick a round "
        "in that range, or leave the round out (the one chosen on validation)",
    )


# The raise sites: each user-fixable error is a ConfigError (exit 2) or DataError (exit 1).
def test_bad_input_classes_are_data_errors():
    for cls in (BadSource, builders.BadExample, photos.BadPhoto):
        assert issubclass(cls, errors.DataError) and issubclass(cls, ValueError)


@pytest.mark.parametrize(
    "overrides",
    [
        {"rsrl.rounds": 0},
        {"data.name": "'folder'", "data.dir": "'/no/such/photos'"},
        {"model.pretrained": "'/no/such/weights'", "model.width": 1.0, "model.fc_dim": 4096},
    ],
)
def test_validation_raises_config_errors(overrides):
    with pytest.raises(errors.ConfigError):
        config.validate(tiny_config(overrides))


def test_a_missing_workdir_is_a_data_error_that_is_also_file_not_found(tmp_path):
    with pytest.raises(errors.DataError) as e:
        checkpoints.read_json(str(tmp_path), "summary.json")
    assert isinstance(e.value, FileNotFoundError)
    with pytest.raises(errors.DataError, match="holds no run"):
        checkpoints.saved_rounds(str(tmp_path), 3)
    (tmp_path / "fold_0").mkdir()
    with pytest.raises(errors.DataError, match="the run has no fold 3"):
        checkpoints.saved_rounds(str(tmp_path), 3)
    with pytest.raises(errors.DataError, match="metrics.jsonl not found"):
        report.read_records(str(tmp_path))
    with pytest.raises(errors.DataError, match="a.pth: no such file"):
        convert.load_torch_state_dict(str(tmp_path / "a.pth"))


def test_a_run_that_lacks_a_round_is_a_data_error_a_bad_k_a_config_error(tiny_run):
    workdir = str(tiny_run[0])
    with pytest.raises(errors.DataError, match="^round 7 does not exist"):
        round_pairs.pair_rounds(workdir, 0, 7)
    with pytest.raises(errors.DataError, match="^round 7 does not exist"):
        checkpoints.load_network(workdir, 0, 7)
    with pytest.raises(errors.DataError, match=r"fold 4 does not exist: the run has folds 0\.\.0"):
        checkpoints.chosen_round(workdir, 4)
    with pytest.raises(errors.ConfigError, match="k=0"):
        round_pairs.pair_rounds(workdir, 0, 2, 0)
    with pytest.raises(errors.ConfigError, match="I - k = 0"):
        round_pairs.pair_rounds(workdir, 0, 1, 1)


def test_flag_and_method_mistakes_are_config_errors():
    with pytest.raises(errors.ConfigError, match="unknown part 'smote'"):
        compare.method_fields("rsrl+smote")
    with pytest.raises(errors.ConfigError, match="--distributed='maybe'"):
        distributed.settings("maybe")


def test_a_changed_config_on_resume_is_a_config_error(tmp_path):
    (tmp_path / "config.json").write_text(tiny_config({"rsrl.rounds": 3}).to_json())
    with pytest.raises(errors.ConfigError, match="rsrl.rounds: 3 -> 4"):
        data = types.SimpleNamespace(class_scores=(1, 2))
        recorder = Recorder(str(tmp_path), is_writer=False)
        resume.start_or_resume(tiny_config({"rsrl.rounds": 4}), recorder, data)


def test_a_nan_stop_and_an_empty_selection_are_data_errors():
    run = types.SimpleNamespace(workdir="runs/x")
    with pytest.raises(errors.DataError, match="fold 0 round 4 step 2: the loss or a gradient"):
        rounds.check_finite({"first_bad_step": 1}, 0, 4, run.workdir)
    with pytest.raises(FloatingPointError):
        rounds.check_finite({"first_bad_step": 1}, 0, 4, run.workdir)
    fold = types.SimpleNamespace(index=0, split=types.SimpleNamespace(train=np.arange(3)))
    with pytest.raises(errors.DataError, match="the selection kept no sample"):
        rounds.kept_set(fold.index, fold.split.train, 2, np.zeros(3, bool))


def test_a_missing_workdir_is_named_as_such(tmp_path):
    """Not 'the run has no fold 0' when there is no run at all: one line for every reader
    (predict, highlight, highlight_eval: `_check_fold`; report; the API's load)."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "scores.csv").write_text("filename,score\n")
    cases = {
        "nowhere": "nowhere not found: give the workdir of a finished run",
        "empty": "empty holds no run (no config.json, no fold_N/): give the workdir",
        "scores.csv": "scores.csv is a file, not a run's workdir: give the workdir",
    }
    for name, message in cases.items():
        path = str(tmp_path / name)
        for reader in (checkpoints.saved_rounds, checkpoints.chosen_round):
            with pytest.raises(errors.NotFound, match=re.escape(message)):
                reader(path, 0)
        with pytest.raises(errors.NotFound, match=re.escape(message)):
            report.read_records(path)
    study_run = tmp_path / "study" / "noise_0.1" / "seed_0" / "plain"
    study_run.mkdir(parents=True)
    (study_run / "config.json").write_text("{}")
    (tmp_path / "study" / "study.json").write_text("{}")
    with pytest.raises(errors.NotFound, match=re.escape(f"e.g. {study_run}")):
        report.read_records(str(tmp_path / "study"))
    (tmp_path / "run" / "fold_1").mkdir(parents=True)
    with pytest.raises(errors.NotFound, match="the run has no fold 0"):
        checkpoints.saved_rounds(str(tmp_path / "run"), 0)


@pytest.mark.parametrize(
    "item, message",
    [
        ("rsrl.round=2", "rsrl.round=2: the config has no field 'rsrl.round' (did you mean "),
        ("rsrl.rounds=abc", "rsrl.rounds=abc: 'abc' is not a valid int"),
        ("rsrl.rounds", "'rsrl.rounds': an override is field=value"),
        ("train.learning_rate=fast", "'fast' is not a valid float"),
        ("train.flip=1", "'1' is not a valid bool"),
    ],
)
def test_a_wrong_override_is_one_config_error(item, message):
    """`--demo_overrides` of the benchmark (and any field=value list): no traceback."""
    with pytest.raises(errors.ConfigError) as e:
        overrides.apply(tiny_config(), [item])
    assert message in str(e.value)


def test_overrides_take_the_types_of_their_fields():
    config = tiny_config()
    overrides.apply(
        config,
        [
            "rsrl.rounds=3",
            "train.learning_rate=1",
            "rsrl.thresholds=(0.9,0.8,0.7)",
            "data.name=ava",
        ],
    )
    assert config.rsrl.rounds == 3 and config.train.learning_rate == 1.0
    assert config.rsrl.thresholds == (0.9, 0.8, 0.7) and config.data.name == "ava"


def test_overrides_from_a_comma_split_flag_keep_their_tuples():
    pieces = "rsrl.thresholds=(0.6,0.6,0.6),rsrl.rounds=2,".split(",")
    assert overrides.regroup(pieces) == ["rsrl.thresholds=(0.6,0.6,0.6)", "rsrl.rounds=2"]
    assert overrides.regroup([""]) == []
