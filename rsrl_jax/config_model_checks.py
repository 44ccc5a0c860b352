"""`config.validate`'s checks of model.*: the network against the data's kind, a ViT's
sizes, and the pretrained weights' file against the network (read before any work).

`check_model(config, check)` raises errors.ConfigError through `check`
(`config_checks.checker`) at the first model field the run cannot use.
"""

import ml_collections
from absl import logging

from rsrl_jax.config_checks import COMPUTE_DTYPES, SEVERAL
from rsrl_jax.data import inputs
from rsrl_jax.models import pretrained, vit
from rsrl_jax.models.network import BATCH_NORM, FEATURE_MODELS, MODELS

PHOTO_MODELS = {"alexnet": "AlexNet", "resnet50": "ResNet-50"}  # model.name -> its name


def _check_network(config: ml_collections.ConfigDict, check) -> None:
    """model.name against the data's kind (photos or feature vectors), and its own fields."""
    name, data_name = config.model.name, config.data.name
    check(name in MODELS, "model.name", f"must be one of {MODELS}")
    if inputs.reads_features(config):
        check(
            name in FEATURE_MODELS,
            ("model.name", "data.name"),
            {
                "model.name": f"{PHOTO_MODELS.get(name, name)} reads photos, but data.name="
                f"{inputs.EMBEDDINGS!r} feeds feature vectors: set --config.model.name=mlp or "
                "linear (configs/embeddings.py)",
                "data.name": f"feeds feature vectors, but model.name={name!r} "
                f"({PHOTO_MODELS.get(name, name)}) reads photos: set --config.model.name=mlp or "
                "linear (configs/embeddings.py), or a data.name of photos: 'synthetic', "
                "'folder' or 'ava'",
                SEVERAL: f"data.name={inputs.EMBEDDINGS!r} feeds feature vectors, which "
                f"{PHOTO_MODELS.get(name, name)} cannot read: set --config.model.name=mlp or "
                "linear, or a data.name of photos: 'synthetic', 'folder' or 'ava'",
            },
        )
        check(
            not config.model.pretrained,
            ("model.pretrained", "data.name"),
            {
                "model.pretrained": f"pretrained weights are AlexNet's; the {name} head over "
                "embeddings starts from random init: set --config.model.pretrained=''",
                "data.name": f"feeds feature vectors to the {name} head, which starts from "
                f"random init, but model.pretrained={config.model.pretrained!r} names AlexNet "
                "weights: set --config.model.pretrained=''",
                SEVERAL: f"the {name} head over embeddings starts from random init; pretrained "
                "weights are AlexNet's: set --config.model.pretrained=''",
            },
        )
    else:
        check(
            name not in FEATURE_MODELS,
            ("model.name", "data.name"),
            {
                "model.name": f"reads feature vectors (data.name={inputs.EMBEDDINGS!r}), but "
                f"data.name={data_name!r} feeds photos: set --config.model.name=alexnet "
                "(or resnet50), or --config.data.name=embeddings with a folder of "
                "embeddings.npz",
                "data.name": f"feeds photos, but model.name={name!r} reads feature vectors "
                f"(data.name={inputs.EMBEDDINGS!r}): set --config.model.name=alexnet (or "
                "resnet50), or --config.data.name=embeddings",
                SEVERAL: f"model.name={name!r} reads feature vectors (data.name="
                f"{inputs.EMBEDDINGS!r}), and data.name={data_name!r} feeds photos: set "
                "--config.model.name=alexnet (or resnet50), or --config.data.name=embeddings "
                "with a folder of embeddings.npz",
            },
        )
    check(
        config.model.get("batch_norm", "frozen") in BATCH_NORM,
        "model.batch_norm",
        f"must be one of {BATCH_NORM} (resnet50's BatchNorm while fine-tuning)",
    )
    if name == "resnet50" and not config.model.pretrained and config.model.batch_norm == "frozen":
        logging.warning(
            "model.name='resnet50' from scratch (model.pretrained='') with "
            "model.batch_norm='frozen': the running statistics stay at their initial mean 0, "
            "variance 1, so BatchNorm does not normalise; set --config.model.batch_norm=updated "
            "to train from scratch"
        )
    widths = config.model.hidden_widths
    check(
        name != "mlp"
        or (
            len(widths) >= 1
            and all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths)
        ),
        ("model.hidden_widths", "model.name"),
        {
            "model.hidden_widths": "model.name='mlp' needs one or more positive integer "
            "widths, e.g. '(512,)' or '(1024,256)' (model.name='linear' for none)",
            "model.name": f"needs one or more positive integer model.hidden_widths, and they "
            f"are {widths!r}: set e.g. --config.model.hidden_widths='(512,)', or "
            "--config.model.name=linear for none",
            SEVERAL: "model.name='mlp' needs one or more positive integer hidden widths: set "
            "e.g. --config.model.hidden_widths='(512,)', or --config.model.name=linear for none",
        },
    )
    check(0 <= config.model.dropout_rate < 1, "model.dropout_rate", "must be in [0, 1)")
    if name in vit.SIZES:
        _check_vit(config, check)


def _check_vit(config: ml_collections.ConfigDict, check) -> None:
    """A ViT's input side is its size's (the position embeddings'), float32, a known
    activation."""
    name, side = config.model.name, vit.SIZES[config.model.name].image_size
    check(
        config.data.image_size == side,
        ("data.image_size", "model.name"),
        {
            "data.image_size": f"model.name={name!r} reads {side}px photos: set "
            f"--config.data.image_size={side}",
            "model.name": f"reads {side}px photos, but data.image_size="
            f"{config.data.image_size}: set --config.data.image_size={side}",
            SEVERAL: f"model.name={name!r} reads {side}px photos: set "
            f"--config.data.image_size={side}",
        },
    )
    check(
        config.model.vit_act in ("", *vit.ACTIVATIONS),
        "model.vit_act",
        f"must be '' (the family's) or one of {tuple(vit.ACTIVATIONS)}",
    )
    check(
        config.model.compute_dtype == "float32",
        ("model.compute_dtype", "model.name"),
        f"the ViT model.name={name!r} computes in float32: set "
        "--config.model.compute_dtype=float32",
    )


def check_model(config: ml_collections.ConfigDict, check) -> None:
    """model.*: the network, its size, its compute dtype, its pretrained weights."""
    _check_network(config, check)
    check(config.model.width > 0, "model.width", "must be positive, e.g. 1.0 (torchvision)")
    check(config.model.fc_dim >= 1, "model.fc_dim", "must be >= 1 (torchvision: 4096)")
    check(
        config.model.compute_dtype in COMPUTE_DTYPES,
        "model.compute_dtype",
        f"must be one of {COMPUTE_DTYPES}",
    )
    if config.model.pretrained:  # the weights must exist and fit the network's size
        model = config.model
        why = pretrained.problem(
            model.pretrained, model.width, model.fc_dim, model.name, model.get("vit_act", "")
        )
        # The size or network the message names are fields the user may have set instead.
        named = ("model.width", "model.fc_dim", "model.name", "model.vit_act")
        sizes = [f for f in named if f in (why or "")]
        check(why is None, ("model.pretrained", *sizes), why)
