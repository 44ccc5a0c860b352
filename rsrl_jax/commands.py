"""What every command-line entry point shares: how it runs, logs and reports mistakes.

The command modules (`python -m rsrl_jax.X`, rsrl_jax/X.py) hold their flags and one library
call; how their command line is parsed is `command_flags`, how their log reads `console`.
"""

import os
import re
import signal
import sys
import traceback
import warnings

from absl import app, flags

from rsrl_jax import command_flags, errors
from rsrl_jax.run import stops


def quiet_libraries() -> None:
    """Call from an absl `main`: library INFO lines would bury the run's own progress
    (`console.setup`: plain lines, chatty libraries and repeated warnings kept off the
    console; `log_to_file` keeps them all).

    Also silences Pillow's DecompressionBombWarning (a photo above Pillow's own default
    limit): the limit that counts is `data.max_pixels`, checked on each photo's header
    (`data.photos.open_photo`), and a photo within it is wanted.
    """
    from PIL import Image

    from rsrl_jax import console

    console.setup()
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def log_to_file(workdir: str) -> None:
    """The whole log, absl-prefixed, appended to WORKDIR/log.txt (`console.log_to_file`)."""
    from rsrl_jax import console

    console.log_to_file(workdir)


CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"


def default_compilation_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rsrl_jax", "xla")


def enable_compilation_cache() -> str:
    """Keeps compiled steps on disk, so a rerun or a resumed run does not compile again.

    The folder is $JAX_COMPILATION_CACHE_DIR when set (set it empty to turn the cache off),
    else `default_compilation_cache_dir()`. Returns the folder in use ('' = off). Call before
    the first compile. Every program is kept, not only those that took JAX's default
    second to compile: a study's dozens of small ones (state set-up, selection, stacking of
    lanes) added up to seconds a process.
    """
    import jax

    path = os.environ.get(CACHE_ENV, default_compilation_cache_dir())
    if path:
        os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path or None)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path


TRACEBACK_ENV = "RSRL_JAX_TRACEBACK"
_TRACEBACK_HELP = (
    "On a mistake the user can fix (a bad flag, config value, data or workdir), print the "
    f"Python traceback before the one-line error (also {TRACEBACK_ENV}=1)."
)


def run(main, help_config: str | None = None) -> None:
    """Runs an absl `main` as a command; use it instead of `app.run(main)`.

    `--help` (and --helpshort, --helpfull, -?) prints the command's flags and, for a command
    that takes a config, the config's fields with their defaults and meanings, and exits 0:
    the fields of --config's file, else of `help_config` (default `configs/demo.py`; a
    command without a config flag lists fields only when given one).

    A mistake the user can fix ends the command with ONE line `error: ...` on stderr and exit
    status 2 (a flag, a config override or value, usage: `errors.ConfigError`) or 1 (data,
    weights, a workdir's state: `errors.DataError`), without a traceback unless asked for
    (--traceback or RSRL_JAX_TRACEBACK=1). A full disk or a folder that cannot be written is
    such a mistake (`stops.disk_problem`, exit 1). SIGINT and SIGTERM end it with one line
    saying what was saved, exit status 130 and 143 (`stops`). Both leave through `stops.leave`:
    nothing is printed after the line. Any other exception is
    unexpected and keeps its traceback (exit 1), and so does an exception raised by a config
    file's own code (the user's Python: the traceback names its line).
    """
    if "traceback" not in flags.FLAGS:
        # Listed under the command's own flags in --help (absl names __main__ by argv[0]).
        flags.DEFINE_bool("traceback", False, _TRACEBACK_HELP, module_name=sys.argv[0])
    argv = command_flags.shipped_configs(sys.argv)
    if command_flags.help_asked(argv):
        try:
            command_flags.print_help(argv, help_config)
        except BrokenPipeError:  # `--help | head`: the reader has what it wanted
            _stdout_closed()
        sys.exit(0)
    stops.install()
    try:
        app.run(_user_mistakes_as_errors(main), argv=argv, flags_parser=command_flags.parse_flags)
    except BrokenPipeError:  # `predict ... | head`: the reader stopped reading, as for cat
        _stdout_closed()
        stops.leave(128 + signal.SIGPIPE)
    except errors.UserError as e:
        _exit_with(e)
    except KeyboardInterrupt as e:  # stops.Interrupted, or one raised before the handlers
        sys.stdout.flush()
        if traceback_wanted(sys.argv):
            traceback.print_exception(e)
        line = str(e) if isinstance(e, stops.Interrupted) else stops.stopped_line(signal.SIGINT)
        print(line, file=sys.stderr, flush=True)
        stops.leave(getattr(e, "exit_code", 128 + signal.SIGINT))  # the line, nothing after


def _stdout_closed() -> None:
    """stdout's reader has gone: what is left in its buffer goes nowhere (no second
    BrokenPipeError when it is flushed at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _exit_with(error: errors.UserError) -> None:
    sys.stdout.flush()
    if traceback_wanted(sys.argv):
        traceback.print_exception(error)
    print(f"error: {error}", file=sys.stderr, flush=True)
    stops.leave(error.exit_code)  # the line, nothing after (`stops.leave`)


def traceback_wanted(argv: list[str]) -> bool:
    """--traceback (read from `argv` when the flags did not parse) or RSRL_JAX_TRACEBACK=1."""
    if os.environ.get(TRACEBACK_ENV, "").lower() not in ("", "0", "false", "no"):
        return True
    if flags.FLAGS.is_parsed() and "traceback" in flags.FLAGS:
        return flags.FLAGS.traceback
    return any(re.fullmatch(r"--?traceback(=(1|t|true|yes))?", a, re.I) for a in argv[1:])


def _user_mistakes_as_errors(main):
    """`main` with app.UsageError raised as ConfigError (absl would print the whole usage
    text and exit 1), and a full disk or unwritable folder as one DataError line."""

    def wrapped(argv):
        try:
            return main(argv)
        except app.UsageError as e:
            raise errors.ConfigError(f"{e} (see --help)") from e
        except errors.UserError:
            raise
        except Exception as e:
            problem = stops.disk_problem(e)
            if problem is None:
                raise
            raise problem from e

    return wrapped


def default_workdir(config_flag: str = "config", prefix: str = "") -> str:
    """`runs/<prefix><config file name>`: where a command writes when --workdir is not given.

    `configs/demo.py` (the value of the config flag named `config_flag`, any `:arg` aside)
    gives `runs/demo`, or `runs/compare_demo` with prefix 'compare_'.
    """
    from ml_collections import config_flags

    config_file = config_flags.get_config_filename(flags.FLAGS[config_flag])
    return os.path.join("runs", prefix + os.path.splitext(os.path.basename(config_file))[0])


def define_recursive_flag() -> None:
    """--recursive: how predict and highlight expand a folder (data.user_photos.expand_paths)."""
    flags.DEFINE_bool(
        "recursive",
        True,
        "A folder stands for every file under it, subfolders included; --norecursive: only "
        "its own files (subfolders are listed as skipped).",
    )


def define_lane_flags() -> None:
    """--equal_steps and --lanes: how compare's and study's runs train (`experiments`); listed
    under the command's own flags in --help."""
    main = {"module_name": sys.argv[0]}  # absl names __main__ by argv[0]
    flags.DEFINE_bool(
        "equal_steps",
        True,
        "Every epoch as long as a pass over all of D, so all methods spend the same steps.",
        **main,
    )
    flags.DEFINE_integer(
        "lanes",
        0,
        "Lanes (runs' folds) trained as one program: 0 = as many as fit in memory, 1 = one "
        "at a time (each run on its own), N = at most N.",
        **main,
    )


def define_pair_flags(workdir_help: str, fold_help: str) -> None:
    """--workdir, --fold, --round and --k: which two networks (`pair_rounds`) highlight and
    highlight_eval compare; listed under the command's own flags in --help."""
    main = {"module_name": sys.argv[0]}  # absl names __main__ by argv[0]
    flags.DEFINE_string("workdir", None, workdir_help, **main)
    flags.DEFINE_integer("fold", 0, fold_help, **main)
    flags.DEFINE_integer(
        "round", None, "Round I of net_I; default: the round chosen on val.", **main
    )
    flags.DEFINE_integer("k", 1, "Compare net_I with net_(I-k).", **main)
