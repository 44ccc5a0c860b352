"""The network a config names, built in one place, and its state as the engine carries it.

`make_model` builds `model.name`'s network (AlexNet, ResNet-50, a ViT, the MLP or linear
head); `init_params` / `abstract_params` give its initial state or its shapes for restoring.
Below the engine, the config's checks, the pretrained weights and the checkpoints, which all
need the network's names or construction; `engine.train` re-exports these names.
"""

from types import MappingProxyType

import jax
import jax.numpy as jnp
import ml_collections

from rsrl_jax import compiler
from rsrl_jax.models import resnet, vit
from rsrl_jax.models.alexnet import AlexNet
from rsrl_jax.models.heads import MLP

# model.name; mlp and linear read feature vectors, the others photos (ViTs: vit.SIZES' names)
MODELS = ("alexnet", "resnet50", "mlp", "linear", *vit.SIZES)
FEATURE_MODELS = ("mlp", "linear")
BATCH_NORM = ("frozen", "updated")  # model.batch_norm: ResNet's statistics while fine-tuning

# The network's state as the engine carries it (train state, checkpoints, rounds): one tree,
# its parameters, plus BatchNorm's running statistics under this key for a network that has
# them (ResNet). The optimizer sees only the parameters (`trainable`); `variables` splits
# the tree back into flax's collections for `apply`.
STATS = "batch_stats"


def trainable(params) -> dict:
    """The parameters the optimizer updates: `params` without the BatchNorm statistics."""
    return {k: v for k, v in params.items() if k != STATS}


def variables(params) -> dict:
    """flax's variables {"params", ["batch_stats"]} of the engine's network state."""
    if STATS in params:
        return {"params": trainable(params), STATS: params[STATS]}
    return {"params": params}


def network_state(variables_: dict) -> dict:
    """The engine's network state of flax's variables (`variables`' inverse)."""
    if STATS in variables_:
        return {**variables_["params"], STATS: variables_[STATS]}
    return variables_["params"]


def resnet_width(config: ml_collections.ConfigDict) -> int:
    """ResNet's stem width: `model.width` times torchvision's 64 channels."""
    return max(1, round(resnet.TORCHVISION_WIDTH * config.model.width))


def make_model(
    config: ml_collections.ConfigDict, num_classes: int, *, fast_gradients: bool | None = None
) -> AlexNet | resnet.ResNet | MLP | vit.ViTClassifier:
    """The network `model.name` names; `model.compute_dtype` is its activations' (parameters
    stay float32).

    'alexnet' (photos): `model.width`, `model.fc_dim`, `model.dropout_rate`.
    'resnet50' (photos): torchvision's ResNet-50 with `model.width` times its channels;
    `model.batch_norm` 'frozen' (the running statistics while fine-tuning) or 'updated'
    (the batch's statistics, running ones updated). `model.fc_dim` and `model.dropout_rate`
    are not used.
    A ViT size of `models.vit.SIZES` (photos of its `image_size`; e.g. 'clip_vit_b16'):
    `vit.ViTClassifier` with `model.vit_act` ('' = the family's activation), float32.
    'mlp' (feature vectors): `model.hidden_widths` hidden layers with dropout
    `model.dropout_rate`; 'linear': the N-way head alone (`models.heads.MLP`).
    `fast_gradients`: the max-pools' gradient (`AlexNet.fast_gradients`); None = the
    choice for this backend (`compiler.fast_pool_gradients`), fixed here, so tracing reads
    no global.
    """
    dtype = jnp.dtype(config.model.compute_dtype)
    name = config.model.get("name", "alexnet")  # a run recorded before model.name existed
    if name in FEATURE_MODELS:
        widths = tuple(int(w) for w in config.model.hidden_widths) if name == "mlp" else ()
        return MLP(num_classes, widths, float(config.model.dropout_rate), dtype)
    if name in vit.SIZES:
        return vit.ViTClassifier(vit.spec(name, config.model.get("vit_act", "")), num_classes)
    if fast_gradients is None:
        fast_gradients = compiler.fast_pool_gradients()
    if name == "resnet50":
        return resnet.ResNet50(
            num_classes,
            width=resnet_width(config),
            dtype=dtype,
            fast_gradients=fast_gradients,
            frozen_stats=config.model.get("batch_norm", "frozen") == "frozen",
        )
    return AlexNet(
        num_classes=num_classes,
        width=config.model.width,
        fc_dim=config.model.fc_dim,
        dropout_rate=config.model.dropout_rate,
        dtype=dtype,
        fast_gradients=fast_gradients,
    )


def abstract_params(model, view, sharding):
    """Shapes and dtypes of `model`'s parameters for the input `view` (`data.inputs`; an int S:
    photos of side S), placed with `sharding`, for restoring."""
    x = example_input(view)
    shapes = network_state(jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x))
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def init_params(model, view, seed: int, skip=frozenset()):
    """`model`'s initial network state from `seed` (parameters, and BatchNorm's statistics
    under `STATS` for a network that has them), for the input `view` (an int S: photos of
    side S).

    `skip`: top-level entries not wanted (a pretrained backbone's layers): they are left out
    of the result and XLA never draws their random bits, while every other entry is bit for
    bit that of the whole network's init (each layer's key comes from its name).
    """
    example = example_input(view)
    x = jnp.zeros(example.shape, example.dtype)
    options = compiler.compiler_options(CPU_INIT_OPTIONS)  # None off CPU or if unknown

    def init(key, x):
        state = network_state(model.init(key, x))
        return {name: entry for name, entry in state.items() if name not in skip}

    return jax.jit(init, compiler_options=options)(jax.random.key(seed), x)


# Compiling the initializers (their random bits) takes longer than the train step (AlexNet:
# 5-8 s vs 3-4 s on CPU); without LLVM's expensive passes it compiles in 2/3 of the time
# and the parameters are bit for bit the same (run once, they take no longer).
CPU_INIT_OPTIONS = MappingProxyType({"xla_llvm_disable_expensive_passes": True})


def updates_stats(model) -> bool:
    """Whether training `model` updates BatchNorm's running statistics (a ResNet with
    model.batch_norm='updated')."""
    return isinstance(model, resnet.ResNet) and not model.frozen_stats


def example_input(view) -> jax.ShapeDtypeStruct:
    """One input of the network, for shaping its parameters: `view.example()` of a
    `data.inputs` view; an int S: photos of side S, float32 [1, S, S, 3]."""
    if isinstance(view, int):
        return jax.ShapeDtypeStruct((1, view, view, 3), jnp.float32)
    return view.example()
