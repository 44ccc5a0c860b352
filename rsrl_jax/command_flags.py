"""How a command reads its command line: flags and config overrides parsed with every mistake
as one ConfigError line, `--config=NAME` as a shipped config, `--help` with the config's fields.
"""

import os
import re

from absl import app, flags

from rsrl_jax import errors, overrides


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


def help_asked(argv: list[str]) -> str | None:
    """The help flag in `argv` before any `--` (absl's own would exit 1), or None."""
    for arg in argv[1:]:
        if arg == "--":
            return None
        if arg == "-h":  # the usual spelling, as `python -m rsrl_jax -h` takes it
            return "help"
        asked = re.fullmatch(r"--?(help|helpshort|helpfull|\?)", arg)
        if asked:
            return asked.group(1)
    return None


def print_help(argv: list[str], help_config: str | None) -> None:
    """absl's usage text (flags of the command; every module's with --helpfull), then the
    config's fields (`config_help.listing`)."""
    from rsrl_jax import config_help

    app.usage(shorthelp=help_asked(argv) != "helpfull", writeto_stdout=True)
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


def parse_flags(argv: list[str]) -> list[str]:
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
    lines = [line.removeprefix("flag ") for line in text.splitlines()]
    text = "\n".join(lines)
    required = [
        re.fullmatch(r"--(\w+)=None: Flag --\1 must have a value other than None\.", line)
        for line in lines
    ]
    if required and all(required):  # absl gives one line per missing required flag
        names = [f"--{match.group(1)}" for match in required]
        text = f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'} required"
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
