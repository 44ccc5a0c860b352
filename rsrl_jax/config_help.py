"""The config fields a command's `--help` lists: each with its default and its meaning.

A field's meaning is the comment beside its assignment in the config's source (`c.a.b = v  #
meaning`), or else the comment lines right above it (never both: a block comment may speak of
several fields): the base config's (`rsrl_jax/config.py`), and
the config file's own where it adds one. The comments are the fields' only documentation, so
`--help` cannot drift from them; a test keeps every field commented.
"""

import ast
import io
import os
import runpy
import textwrap
import tokenize

import ml_collections

from rsrl_jax import config as config_lib
from rsrl_jax import configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the clone
BASE_FILE = os.path.abspath(config_lib.__file__)


def _dotted(node) -> str | None:
    """'a.b' for an assignment target `c.a.b` (any root name), else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    return ".".join(parts) if parts and isinstance(node, ast.Name) else None


def comments(path: str) -> dict[str, str]:
    """{'a.b': comment} for each `c.a.b = ...` in the Python file `path`, in its order: the
    comment on its lines, else the comment lines right above it ('' if none; sections too)."""
    with open(path) as f:
        source = f.read()
    lines = source.splitlines()
    found = {}  # line number -> (text, whether the comment is the whole line)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            found[row] = (token.string.lstrip("#").strip(), not lines[row - 1][:col].strip())
    out = {}
    nodes = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Assign)]
    for node in sorted(nodes, key=lambda n: n.lineno):
        if len(node.targets) != 1:
            continue
        field = _dotted(node.targets[0])
        if field is None:
            continue
        above, row = [], node.lineno - 1
        while row in found and found[row][1]:
            above.insert(0, found[row][0])
            row -= 1
        beside = [
            found[r][0]
            for r in range(node.lineno, node.end_lineno + 1)
            if r in found and not found[r][1]
        ]
        # The comment beside a field is its own; the lines above may speak of several fields.
        out.setdefault(field, " ".join(t for t in (beside if any(beside) else above) if t))
    return out


def meanings(config_file: str | None) -> dict[str, str]:
    """{field: meaning}. A config file built on `base_config()` keeps the base's meanings and
    adds its own comments ('meaning (demo.py: why this value)'); another (configs/pretext.py)
    has its own, the base's filling in the fields it leaves uncommented."""
    base = comments(BASE_FILE)
    if config_file is None or os.path.abspath(config_file) == BASE_FILE:
        return base
    config_file = source(config_file)
    own, name = comments(config_file), os.path.basename(config_file)
    with open(config_file) as f:
        built_on_base = "base_config(" in f.read()
    out = dict(base)
    for field, text in own.items():
        if not out.get(field) or (text and not built_on_base):
            out[field] = text
        elif text and text != out[field]:
            out[field] += f" ({name}: {text})"
    return out


def find(path: str) -> str | None:
    """`path` as given, else under the repository root (`configs/demo.py` from anywhere),
    else a shipped config's name (`demo`)."""
    for candidate in (path, os.path.join(ROOT, path), configs.resolve(path)):
        if os.path.isfile(candidate):
            return candidate
    return None


def source(config_file: str) -> str:
    """The file that defines `config_file`'s `get_config` (where its comments are): itself,
    or the shipped config a top-level `configs/NAME.py` re-exports."""
    return runpy.run_path(config_file)["get_config"].__code__.co_filename


def load(path: str) -> ml_collections.ConfigDict:
    """The config of the config file `path` (its `get_config()`)."""
    return runpy.run_path(path)["get_config"]()


def listing(config_file: str | None, default: bool, flag: str = "config") -> str:
    """The text --help prints: every field of the config of `config_file` (None: the base
    config) with its default and meaning. `default`: the file is the command's default, not
    given with --config."""
    if config_file is None:
        config, source = config_lib.base_config(), "the base config, rsrl_jax/config.py"
    else:
        config, source = load(config_file), config_file
    if default:
        source += f"; another with --{flag}=FILE"
    known = meanings(config_file)
    order = {field: i for i, field in enumerate(known)}  # as the sources assign them
    values = config_lib.flatten(config.to_dict())
    out = [f"Config fields ({source}), each set with --{flag}.FIELD=VALUE:"]
    section = None
    for field in sorted(values, key=lambda f: (order.get(f, len(order)), f)):
        head = field.rsplit(".", 1)[0] if "." in field else None
        if head != section:
            out.append("")
            if head is not None:
                out.append(_wrap(f"{head}: {known[head]}" if known.get(head) else head, 2))
        section = head
        value = values[field]
        out.append(f"    {field} = {tuple(value) if isinstance(value, list) else value!r}")
        out.append(_wrap(known.get(field) or "(undocumented)", 8))
    return "\n".join(out)


def _wrap(text: str, indent: int) -> str:
    return textwrap.fill(text, 100, initial_indent=" " * indent, subsequent_indent=" " * indent)
