"""Configs that derive: a shipped config starts from its base (`base_config()` or another
shipped config's `get_config()`) and assigns only what differs from it."""

import ast
import runpy

import pytest

from rsrl_jax import configs

# Not a variant of the run's config: the pretraining command's own, built from nothing.
STANDALONE = {"pretext"}
# Restated on purpose, with why: the --help listing's test reads demo.py's comment on it
# (tests/test_messages.py, a config's comment beside the base's meaning).
KNOWN_RESTATED = {"demo": ["c.model.dropout_rate = 0.5"]}


def restated(source: str, namespace: dict) -> list[str]:
    """The assignments `c.a.b = v` of `get_config` whose v equals the field's value in the
    base that its first statement `c = base()` builds (evaluated in `namespace`)."""
    (function,) = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and node.name == "get_config"
    ]
    start, *body = function.body
    assert isinstance(start, ast.Assign) and ast.unparse(start.targets[0]) == "c", "c = base()"
    base = eval(ast.unparse(start.value), namespace)
    found = []
    for node in body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]).startswith("c."):
            field = ast.unparse(node.targets[0])[2:]
            value = eval(ast.unparse(node.value), namespace)
            if base[field] == value:
                found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("name", sorted(set(configs.names()) - STANDALONE))
def test_no_shipped_config_restates_its_bases_value(name):
    file = configs.path(name)
    with open(file) as f:
        source = f.read()
    assert restated(source, runpy.run_path(file)) == KNOWN_RESTATED.get(name, [])


def test_a_restated_value_is_found():
    source = (
        "def get_config():\n"
        "    c = base_config()\n"
        "    c.train.batch_size = 32\n"  # the default: restated
        "    c.train.batch_size = 64\n"
        "    c.model.name = 'mlp'\n"
        "    return c\n"
    )
    from rsrl_jax.config import base_config

    assert restated(source, {"base_config": base_config}) == ["c.train.batch_size = 32"]
