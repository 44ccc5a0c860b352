"""What every command-line entry point shares: how it runs, logs and reports mistakes."""

import os
import re
import signal
import sys
import traceback
import warnings

from absl import app, flags

from rsrl_jax import errors, overrides
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

    from rsrl_jax.cli import console

    console.setup()
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def log_to_file(workdir: str) -> None:
    """The whole log, absl-prefixed, appended to WORKDIR/log.txt (`console.log_to_file`)."""
    from rsrl_jax.cli import console

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
    argv = shipped_configs(sys.argv)
    if _help_asked(argv):
        _print_help(argv, help_config)
        sys.exit(0)
    stops.install()
    try:
        app.run(_user_mistakes_as_errors(main), argv=argv, flags_parser=_parse_flags)
    except errors.UserError as e:
        _exit_with(e)
    except KeyboardInterrupt as e:  # stops.Interrupted, or one raised before the handlers
        sys.stdout.flush()
        if traceback_wanted(sys.argv):
            traceback.print_exception(e)
        line = str(e) if isinstance(e, stops.Interrupted) else stops.stopped_line(signal.SIGINT)
        print(line, file=sys.stderr, flush=True)
        stops.leave(getattr(e, "exit_code", 128 + signal.SIGINT))  # the line, nothing after


def shipped_configs(argv: list[str]) -> list[str]:
    """`argv` with `--config=demo` (a name, not a file) as the shipped config's file, so the
    installed package runs its configs from any folder (`rsrl_jax.configs.resolve`)."""
    from rsrl_jax import configs

    out = list(argv)
    for i, arg in enumerate(out[1:], 1):
        if arg == "--":
            break
        given = re.fullmatch(r"(--?config=)(.*)", arg)
        if given:
            out[i] = given.group(1) + configs.resolve(given.group(2))
        elif re.fullmatch(r"--?config", arg) and i + 1 < len(out):
            out[i + 1] = configs.resolve(out[i + 1])
    return out


HELP_FLAGS = ("help", "helpshort", "helpfull", "?")
DEFAULT_HELP_CONFIG = "configs/demo.py"


def _help_asked(argv: list[str]) -> str | None:
    """The help flag in `argv` before any `--` (absl's own would exit 1), or None."""
    for arg in argv[1:]:
        if arg == "--":
            return None
        asked = re.fullmatch(r"--?(help|helpshort|helpfull|\?)", arg)
        if asked:
            return asked.group(1)
    return None


def _print_help(argv: list[str], help_config: str | None) -> None:
    """absl's usage text (flags of the command; every module's with --helpfull), then the
    config's fields (`config_help.listing`)."""
    from rsrl_jax.cli import config_help

    app.usage(shorthelp=_help_asked(argv) != "helpfull", writeto_stdout=True)
    for flag in _config_flags():
        given = _given_config_file(flag, argv)
        file = config_help.find(given or help_config or DEFAULT_HELP_CONFIG)
        if given and file is None:
            print(f"\n--{flag.name}={given}: no such config file")
            return
        print("\n" + config_help.listing(file, default=not given, flag=flag.name))
        return
    if help_config is not None:
        print("\n" + config_help.listing(config_help.find(help_config), default=True))


def _given_config_file(flag, argv: list[str]) -> str | None:
    """The config file `argv` gives `flag` (`--config=FILE` or `--config FILE`, no `:arg`)."""
    name = re.escape(flag.name)
    for i, arg in enumerate(argv[1:], 1):
        given = re.fullmatch(rf"--?{name}=(.*)", arg)
        if given or (re.fullmatch(rf"--?{name}", arg) and i + 1 < len(argv)):
            return (given.group(1) if given else argv[i + 1]).split(":", 1)[0]
    return None


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


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with every mistake in the flags raised as one-line ConfigError."""
    try:
        rest = flags.FLAGS(argv)
    except flags.Error as e:
        raise errors.ConfigError(_flag_error_text(e)) from e
    except (AttributeError, KeyError) as e:
        # ml_collections raises these for an override of a field the config lacks, with a
        # message that names neither the flag nor the path (and escapes its quotes).
        unknown = _unknown_config_field(argv)
        if unknown is None:
            raise
        raise errors.ConfigError(unknown) from e
    _check_config_files()
    overrides.remember_given(_given_fields())
    return rest


def _given_fields() -> dict[str, str]:
    """{'rsrl.num_majority': '--config.rsrl.num_majority'}: the config fields the parsed
    command line set, in its order (`overrides.given_on_command_line`)."""
    from ml_collections import config_flags
    from ml_collections.config_flags.config_flags import UnparsedFlagError

    given = {}
    for flag in _config_flags():
        try:
            fields = config_flags.get_override_values(flag)
        except UnparsedFlagError:  # a config flag this command line left out
            continue
        for field in fields:
            given.setdefault(field, f"--{flag.name}.{field}")
    return given


def _flag_error_text(e: Exception) -> str:
    """absl's message without its 'flag ' prefix (a missing required flag said plainly), with
    a pointer to --help."""
    text = str(e)
    text = text[len("flag ") :] if text.startswith("flag --") else text
    required = re.fullmatch(r"--(\w+)=None: Flag --\1 must have a value other than None\.", text)
    if required:
        text = f"--{required.group(1)} is required"
    if "\n" in text:  # a config file's own exception, with its traceback: shown whole
        return text
    return f"{text} (see --help)"


def _config_flags() -> list:
    """The ml_collections config flags defined (is_config_flag: public, in the submodule)."""
    from ml_collections.config_flags.config_flags import is_config_flag

    return [flags.FLAGS[n] for n in flags.FLAGS if is_config_flag(flags.FLAGS[n])]


def _unknown_config_field(argv: list[str]) -> str | None:
    """'ARG: the config has no field ...' for the first override in `argv` of a field its
    config lacks, or None when every override names a field (the error was another one)."""
    for flag in _config_flags():
        config = _reload_config(flag, argv)
        if config is None:
            continue
        for arg in argv[1:]:
            override = re.match(rf"--?(?:no)?{re.escape(flag.name)}\.([^=]+)", arg)
            if override:
                problem = overrides.missing_field(config, override.group(1))
                if problem:
                    return f"{arg}: {problem}"
    return None


def _reload_config(flag, argv: list[str]):
    """The config file `argv` gives `flag` (loaded again: a failed parse keeps no value)."""
    name = re.escape(flag.name)
    for i, arg in enumerate(argv[1:], 1):
        given = re.fullmatch(rf"--?{name}=(.*)", arg)
        if given or (re.fullmatch(rf"--?{name}", arg) and i + 1 < len(argv)):
            try:
                return flag.parser.parse(given.group(1) if given else argv[i + 1])
            except Exception:  # noqa: BLE001 - only to word a message; the original error stands
                return None
    return None


def _check_config_files() -> None:
    """ml_collections defers a config file it cannot read to the first use of the config:
    say so now, before any work, naming the file."""
    from ml_collections import config_flags

    for flag in _config_flags():
        try:
            getattr(flag.value, "keys", None)
        except OSError as e:
            given = config_flags.get_config_filename(flag)
            file = given.split(":", 1)[0]
            if not os.path.exists(file):
                from rsrl_jax import configs

                why = "no such config file"
                if os.sep not in file:  # a name: the user may mean a shipped config
                    why += f" (shipped: {', '.join(configs.names())})"
            elif os.path.isdir(file):
                why = "a folder, not a config file"
            else:
                why = f"cannot read it ({str(e.__cause__ or e).strip().splitlines()[-1].strip()})"
            raise errors.ConfigError(f"--{flag.name}={given}: {why}") from e


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
