"""The XLA compiler options the jitted steps compile with: values, given to each step.

The step builders (`engine.train.make_train_step`, `make_eval_step`) take `compiler_options`;
`default_compiler_options(kind)` is what a run uses ('train' also for the round engine's
fold step), decided when a step is built from the backend and this XLA, never while it is
traced. Nothing here is meant to be changed: a benchmark variant passes its own options.
"""

import functools
from collections.abc import Mapping
from types import MappingProxyType

import jax
from absl import logging

# Which XLA:CPU library runs the steps' matmuls and convolutions (measured with
# `python -m benchmarks`; the same products and sums, in another order). The train
# step: YNNPACK's matmuls (its g @ W.T, fc6's and fc7's backward, is 7x Eigen's) and Eigen's
# convolutions, 6% faster than YNNPACK's for both (XLA's default). The forward-only step:
# Eigen's for both, 1.5x the default (Eigen's x @ W is 2.5x YNNPACK's). Read-only: a step
# that wants other options is given them (`make_train_step(..., compiler_options=...)`).
YNN_TYPES = "xla_cpu_experimental_ynn_fusion_type"
CPU_TRAIN_OPTIONS = MappingProxyType({YNN_TYPES: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"})
CPU_FORWARD_OPTIONS = MappingProxyType({YNN_TYPES: ""})
# A network of dense layers only (the heads over feature vectors): XLA's own choice. YNNPACK's
# dot made the MLP head's step 4x slower at batch 64 (1.0 against 4.6 ms; 20 against 15k
# examples/s with 30 lanes vmapped), Eigen's 1.7 ms (a timing of the step alone, loaded machine).
CPU_OPTIONS = MappingProxyType(
    {
        "train": CPU_TRAIN_OPTIONS,
        "forward": CPU_FORWARD_OPTIONS,
        "dense_train": MappingProxyType({}),
    }
)


@functools.cache
def _accepted(options: tuple) -> bool:
    """Whether this XLA knows the options (another jaxlib may name them otherwise)."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=dict(options)).lower(1.0).compile()
    except Exception as e:  # noqa: BLE001 - XLA raises its own error types
        logging.warning("XLA options %s not used: %s", dict(options), str(e).splitlines()[0])
        return False
    return True


def compiler_options(cpu_options: Mapping[str, str] | None) -> dict | None:
    """`cpu_options` (a copy) on the CPU backend when this XLA accepts them, else None."""
    if not cpu_options or jax.default_backend() != "cpu":
        return None
    return dict(cpu_options) if _accepted(tuple(sorted(cpu_options.items()))) else None


def default_compiler_options(kind: str) -> dict | None:
    """The XLA options a `kind` step ('train' or 'forward') compiles with by default.

    'dense_train': the train step of a network of dense layers only ({}: XLA's defaults on
    every backend). Else, on the CPU backend, the measured library choice
    (`CPU_OPTIONS[kind]`) when this XLA accepts it; None (XLA's defaults) on other backends
    or when it does not. Decided when a
    step is built, never while it is traced.
    """
    if kind not in CPU_OPTIONS:
        raise ValueError(f"step kind {kind!r}: one of {sorted(CPU_OPTIONS)}")
    if not CPU_OPTIONS[kind]:  # XLA's own defaults, said explicitly ({}, not None)
        return {}
    return compiler_options(CPU_OPTIONS[kind])


def step_options(given: Mapping[str, str] | None, kind: str) -> dict | None:
    """A step builder's `compiler_options` argument: None -> the default for `kind`, a
    mapping -> as given ({} = XLA's own defaults)."""
    return default_compiler_options(kind) if given is None else dict(given)


def fast_pool_gradients(backend: str | None = None) -> bool:
    """Whether the max-pools take `models.pooling`'s gradient on `backend` (default: JAX's).

    XLA:CPU runs its own max-pool gradient as a scalar loop (3-4x slower); GPUs and TPUs have
    a fast library gradient.
    """
    return (backend or jax.default_backend()) == "cpu"
