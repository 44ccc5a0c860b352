"""constraints.txt: the lock the Quickstart and CI install with, complete and in force."""

import importlib.metadata
import pathlib
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from rsrl_jax import compiler

ROOT = pathlib.Path(__file__).resolve().parent.parent


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version and "+" not in version, f"not an exact public pin: {line!r}"
        out[canonicalize_name(name)] = version
    return out


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    return [Requirement(r) for r in project["dependencies"] + [r for e in extras for r in e]]


def test_every_declared_dependency_is_pinned_within_its_range():
    pinned = pins()
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is a dependency but not in constraints.txt"
        assert req.specifier.contains(pinned[name], prereleases=True), (req, pinned[name])


def test_installed_versions_are_the_pinned_ones():
    # The README's commands install with `-c constraints.txt`: what the tests run against is
    # what the file says (a local label such as torch's +cpu is the same release).
    for name, version in pins().items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # pinned for an extra this install left out
        assert installed.split("+")[0] == version, f"{name} {installed} installed, {version} pinned"


def test_pinned_jaxlib_accepts_the_step_options():
    # The train and forward steps' XLA:CPU library choice (rsrl_jax/compiler.py) is an
    # experimental flag a jaxlib may rename; the pinned one must take it.
    assert importlib.metadata.version("jaxlib") == pins()["jaxlib"]
    for options in compiler.CPU_OPTIONS.values():
        if options:  # {}: XLA's own defaults, no flag to accept
            assert compiler.compiler_options(options) == dict(options)
