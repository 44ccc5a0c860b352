"""`field=value` overrides of a config, as a user writes them (`--config.field=value`, the
benchmark's `--demo_overrides`): one message naming the item when a field or value is wrong."""

import ast
import difflib
from collections.abc import Iterable

import ml_collections

from rsrl_jax.errors import ConfigError


def missing_field(config, path: str) -> str | None:
    """Why the dotted `path` names no field of `config` (with the likely field or the fields
    there are), or None if it names one."""
    node, parts = config, path.split(".")
    for i, key in enumerate(parts):
        here = ".".join(parts[:i])
        if not hasattr(node, "keys"):
            missing = ".".join(parts[: i + 1])
            return f"the config has no field '{missing}' ('{here}' is a {type(node).__name__})"
        fields = sorted(node.keys())
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            if close:
                hint = f"did you mean '{'.'.join([*parts[:i], close[0]])}'?"
            else:
                hint = f"{here or 'it'} has: {', '.join(fields)}"
            return f"the config has no field '{'.'.join(parts[: i + 1])}' ({hint})"
        node = node[key]
    return None


def parse_value(current, text: str):
    """`text` as a value of the field whose value is `current`; ValueError if it is not one.

    Strings stay as written; anything else is a Python literal (`3`, `1e-3`, `True`,
    `(0.9,0.9,0.9)`) of the field's type (an int is a valid float).
    """
    if isinstance(current, str):
        return text
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"{text!r} is not a valid {type(current).__name__}") from e
    if isinstance(current, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) and isinstance(current, bool)
    elif isinstance(current, float):
        ok = isinstance(value, int | float)
        value = float(value) if ok else value
    elif isinstance(current, tuple | list):
        ok = isinstance(value, tuple | list)
        value = type(current)(value) if ok else value
    else:
        ok = isinstance(value, type(current))
    if not ok:
        raise ValueError(f"{text!r} is not a valid {type(current).__name__}")
    return value


def regroup(pieces: Iterable[str]) -> list[str]:
    """`field=value` items from a comma-split list flag: a piece without `=` continues the
    item before it (`rsrl.thresholds=(0.6,0.6,0.6)` arrives as three pieces); empty pieces
    are dropped (`--demo_overrides=` is no override)."""
    items: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        if "=" not in piece and items:
            items[-1] += "," + piece
        else:
            items.append(piece)
    return items


def apply(config: ml_collections.ConfigDict, items: Iterable[str]) -> None:
    """Sets each `field=value` of `items` in `config`; ConfigError naming the item when it has
    no `=`, names no field (with the likely spelling) or holds no value of the field's type."""
    for item in items:
        field, eq, text = item.partition("=")
        if not eq:
            raise ConfigError(f"{item!r}: an override is field=value, e.g. rsrl.rounds=3")
        why = missing_field(config, field)
        if why is not None:
            raise ConfigError(f"{item}: {why}")
        try:
            value = parse_value(config[field], text)
        except ValueError as e:
            raise ConfigError(f"{item}: {e}") from None
        config.update_from_flattened_dict({field: value})


_GIVEN: dict[str, str] = {}  # set by the command line's parser (`cli`), read by the checks


def remember_given(given: dict[str, str]) -> None:
    """Called by `cli` once the command line is parsed: the fields it set, in its order."""
    _GIVEN.clear()
    _GIVEN.update(given)


def given_on_command_line() -> dict[str, str]:
    """The config fields the command line set, in its order: {'rsrl.num_majority':
    '--config.rsrl.num_majority'}; {} for a library caller (no command line parsed).

    Messages lead with these (`lead`): the user wrote them and looks for them first.
    """
    return dict(_GIVEN)


def lead(fields, given: dict[str, str]) -> str:
    """Which of `fields` (the ones a check relates, its own field first) a message leads with:
    the one the command line set (`given`, the first written when several), else the check's
    own field."""
    return next((field for field in given if field in fields), fields[0])


def named(config, field: str, given: dict[str, str]) -> str:
    """`--config.a.b=v` as the command line set it, else `config.a.b=v` (from the config)."""
    return f"{given.get(field, f'config.{field}')}={config[field]!r}"


def apply_values(config: ml_collections.ConfigDict, values: dict) -> None:
    """Sets `{'rsrl.rounds': 2, ...}` in `config` (the Python API's overrides): a value is the
    field's own (an int for a float field too), or a string written as on the command line
    (`parse_value`); ConfigError naming the field when it names none or the value does not fit."""
    for field, value in values.items():
        why = missing_field(config, field)
        if why is not None:
            raise ConfigError(f"overrides[{field!r}]: {why}")
        current = config[field]
        try:
            if isinstance(value, str) and not isinstance(current, str):
                value = parse_value(current, value)
            elif (
                isinstance(current, float)
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                value = float(value)
            elif isinstance(current, tuple | list) and isinstance(value, tuple | list):
                value = type(current)(value)
            config.update_from_flattened_dict({field: value})
        except (ValueError, TypeError):
            raise ConfigError(
                f"overrides[{field!r}]={value!r}: not a valid {type(current).__name__}"
            ) from None
