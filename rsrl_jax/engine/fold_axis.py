"""The fold axis of the round loop: k folds' states, batches and keys stacked on a leading
axis, and the train step over it (`rsrl_jax.engine.rounds`).

Sequential folds are k = 1 with the plain step; parallel folds (`protocol.parallel_folds`)
and lane groups are k folds with the step vmapped over the axis, or, on one CPU device for a
network with convolutions, each fold's own step one after the other in the one program
(`runs_lanes_in_turn`). A fold's keys and batches are its own, so either way it trains on
exactly the batches and keys it would train on alone.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from rsrl_jax import compiler


def make_fold_step(train_step, mesh, k: int, compiler_options=None):
    """The train step over a leading fold axis of length `k`; jitted once per run.

    k = 1: the plain step on the one fold (its axis removed inside the program). k > 1: the
    step vmapped over the folds, or each fold's in turn (`runs_lanes_in_turn`); a fold whose
    batch is all padding (mask 0) keeps its state and sums (its epoch is shorter than the
    longest fold's: the step changes nothing on an empty batch). Batches are [k, B, ...], split
    on `data` along their second axis; on a `placement.lane_mesh` also on `lane` along their
    first, and the stacked state with them. `train_step` is a `train.make_train_step` step (its
    Python function is traced here: only the outer jit takes compiler options);
    `compiler_options` as the step builders take them (None: the default for a train step,
    `compiler.default_compiler_options`; {}: XLA's own defaults).
    """
    step = train_step.__wrapped__

    def one_fold(state, sums, images, labels, mask, key, class_terms):
        # A lane fed an empty batch is left as it was by the step itself (one select with
        # its finite check, not a second pass over the state: docs/speed.md, "What a study
        # does for speed").
        return step(state, sums, images, labels, mask, key, class_terms)

    add_axis = lambda tree: jax.tree.map(lambda leaf: leaf[None], tree)  # noqa: E731

    def train_step(*args):  # the name compile logs and profiles show (benchmarks/run_timing.py)
        if k == 1:
            return add_axis(one_fold(*(lane(a, 0) for a in args)))
        if runs_lanes_in_turn(one_fold, args, mesh):
            outs = [one_fold(*(lane(a, i) for a in args)) for i in range(k)]
            return jax.tree.map(lambda *leaves: jnp.stack(leaves), *outs)
        return jax.vmap(one_fold)(*args)

    if "lane" in mesh.axis_names:  # a group's `placement.lane_mesh`: lanes split on `lane`
        stacked, batch = NamedSharding(mesh, P("lane")), NamedSharding(mesh, P("lane", "data"))
    else:
        stacked, batch = NamedSharding(mesh, P()), NamedSharding(mesh, P(None, "data"))
    return jax.jit(
        train_step,
        in_shardings=(stacked, stacked, batch, batch, batch, stacked, stacked),
        out_shardings=(stacked, stacked),
        donate_argnums=(0, 1),
        compiler_options=compiler.step_options(compiler_options, "train"),
    )


def lane(tree, i: int):
    """Lane `i` of a pytree with a leading lane (fold) axis."""
    return jax.tree.map(lambda leaf: leaf[i], tree)


def runs_lanes_in_turn(step, args, mesh) -> bool:
    """Whether a k-lane step runs each lane's own `step` in turn (one program, the lanes
    unrolled) rather than vmapped: on one CPU device when `step` holds a convolution.
    Vmapped, k convolutions become one grouped convolution, which XLA's CPU backend runs
    slower than k plain ones (docs/speed.md, "Convolutions in a lane group").
    Dense layers batch well vmapped (the embeddings' heads), so they stay so. Either way a
    lane's results equal its single run's to float rounding (XLA fuses one program of k
    lanes otherwise than one of one).
    `args`: the step's arguments with their lane axis (tracers or arrays)."""
    if mesh.size > 1 or mesh.devices.flat[0].platform != "cpu":
        return False  # lanes split over devices stay vmapped: each holds its share
    one = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), args)
    return "conv_general_dilated" in primitives(jax.make_jaxpr(step)(*one).jaxpr)


def primitives(jaxpr) -> set[str]:
    """The names of the primitives of `jaxpr` and of the jaxprs nested in its equations."""
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for value in eqn.params.values():
            for sub in value if isinstance(value, list | tuple) else (value,):
                inner = getattr(sub, "jaxpr", sub)  # a ClosedJaxpr holds its Jaxpr
                if hasattr(inner, "eqns"):
                    names |= primitives(inner)
    return names


@jax.jit
def stack(trees: list):
    """A pytree of arrays with a leading fold axis from a list of one pytree per fold (one
    compiled program, not one dispatch per leaf)."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


@functools.partial(jax.jit, static_argnums=1)
def unstack(tree, n: int) -> list:
    """The `n` pytrees of a pytree with a leading fold axis of length `n`."""
    return [jax.tree.map(lambda leaf, i=i: leaf[i], tree) for i in range(n)]


def round_keys(seeds, folds: list[int], round_: int, sharding):
    """Each lane's round key, fold_in(fold_in(key(seed), fold), round), stacked [k].

    `seeds`: the lanes' seeds (one int: the same for every lane). Made by a jitted function
    (key arrays cannot be put on other processes' devices), compiled once per process: the
    seeds, folds and round are its arguments.
    """
    folds_ = np.asarray(folds, np.uint32)
    seeds_ = np.broadcast_to(np.asarray(seeds, np.uint32), folds_.shape)
    return _round_keys_fn(sharding)(seeds_, folds_, np.uint32(round_))


@functools.cache
def _round_keys_fn(sharding):
    def make(seeds, folds, round_):
        def one(seed, fold):
            return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), fold), round_)

        return jax.vmap(one)(seeds, folds)

    return jax.jit(make, out_shardings=sharding)
