"""`config.validate`'s checks, one function per section of the config (protocol, train,
the run's bookkeeping; `config.validate_pretext`'s pretraining config), and the checker
that words their messages.

Each `check_*(config, check)` raises errors.ConfigError through `check` (`checker`) at the
first field of its section with a value the run cannot use; `config.validate` calls them
in the config's order, so the first bad field is the one named. The data's checks are in
config_data_checks, the model's in config_model_checks, the method's (rsrl.*, method.*) in
config_method_checks.
"""

import math

import jax
import ml_collections

from rsrl_jax import overrides
from rsrl_jax.errors import ConfigError

CHECKPOINT_KEEP = ("all", "needed")  # which round checkpoints a run keeps (rsrl_jax.run.retention)
COMPUTE_DTYPES = ("float32", "bfloat16")


# The key of a check's reason for when the command line set several of its fields.
SEVERAL = "*"


def checker(config: ml_collections.ConfigDict, given: dict[str, str]):
    """`check(ok, fields, why)`: ConfigError when not ok, led by the field the user set.

    `fields`: the check's own field, or a tuple of it and the fields the check relates; the
    message leads with the one the command line set (`given`: `overrides.lead`), as
    `--config.a.b=v`; without one, with the check's own field. `why`: the
    reason, or {field: reason} worded for each lead; a lead without its own wording gets the
    own field's value and reason after it. When the command line set several of `fields`, all
    of them are named (`--config.a=1 and --config.b=2 disagree: ...`) with the reason under
    `SEVERAL` (a plain `why` serves every case): neither alone is the culprit. Each field's
    own range is checked before a relation, so a relation's advice stays within the ranges.
    """

    def check(ok: bool, fields, why):
        if ok:
            return
        fields = (fields,) if isinstance(fields, str) else tuple(fields)
        reasons = why if isinstance(why, dict) else {fields[0]: why, SEVERAL: why}
        set_here = sorted(f for f in fields if f in given)
        if len(set_here) > 1:
            names = " and ".join(overrides.named(config, f, given) for f in set_here)
            raise ConfigError(f"{names} disagree: {reasons[SEVERAL]}")
        lead = overrides.lead(fields, given)
        own = fields[0]
        text = reasons.get(lead) or f"does not fit {own}={config[own]!r}: {reasons[own]}"
        raise ConfigError(f"{overrides.named(config, lead, given)}: {text}")

    check.given = given
    return check


def real_numbers(values) -> bool:
    """Whether `values` is a tuple or list of real numbers (not bools, not strings)."""
    return isinstance(values, tuple | list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )


def check_protocol(config: ml_collections.ConfigDict, check) -> None:
    """protocol.*: folds and the validation and test shares."""
    check(config.protocol.folds >= 1, "protocol.folds", "must be >= 1 (1 = a single split)")
    check(0 < config.protocol.val_fraction < 1, "protocol.val_fraction", "must be in (0, 1)")
    check(0 < config.protocol.test_fraction < 1, "protocol.test_fraction", "must be in (0, 1)")
    check(config.protocol.max_folds >= 0, "protocol.max_folds", "must be >= 0 (0 = all folds)")


def check_train(config: ml_collections.ConfigDict, check) -> None:
    """train.*: batches, epochs, the optimizer."""
    train = config.train
    check(train.batch_size >= 1, "train.batch_size", "must be >= 1")
    check(train.eval_batch_size >= 1, "train.eval_batch_size", "must be >= 1")
    check(train.epochs_per_round >= 1, "train.epochs_per_round", "must be >= 1")
    check(
        train.first_round_epochs >= 0,
        "train.first_round_epochs",
        "must be >= 0 (0 = train.epochs_per_round)",
    )
    check(train.optimizer in ("sgd", "adam"), "train.optimizer", "must be 'sgd' or 'adam'")
    check(train.learning_rate > 0, "train.learning_rate", "must be positive")
    check(0 <= train.momentum < 1, "train.momentum", "must be in [0, 1)")
    check(train.weight_decay >= 0, "train.weight_decay", "must be >= 0")
    check(train.head_lr_multiplier > 0, "train.head_lr_multiplier", "must be positive")


def check_run(config: ml_collections.ConfigDict, check) -> None:
    """eval.*, checkpoint.*, resume, and the batches against the devices."""
    threshold = config.eval.good_threshold
    check(
        isinstance(threshold, int | float)
        and not isinstance(threshold, bool)
        and math.isfinite(threshold),
        "eval.good_threshold",
        "must be a finite number: a photo is good when its score is above it (AVA: 5.0)",
    )
    check(
        config.checkpoint.every_steps >= 0,
        "checkpoint.every_steps",
        "must be >= 0 (0 = at round ends only)",
    )
    check(
        config.checkpoint.keep in CHECKPOINT_KEEP,
        "checkpoint.keep",
        "must be 'all' (every round) or 'needed' (the chosen round, its net_(I-1) and the last "
        "round of each fold)",
    )
    check(config.resume in ("auto", "force"), "resume", "must be 'auto' or 'force'")
    devices = jax.device_count()
    for field in ("train.batch_size", "train.eval_batch_size"):
        check(
            config[field] % devices == 0,
            field,
            f"the global batch must be divisible by the {devices} devices",
        )


def check_pretext(config: ml_collections.ConfigDict, check) -> None:
    """A `configs/pretext.py` config (`python -m rsrl_jax.pretrain`): the fields
    pretraining reads (seed, data.image_size, model.*, train.*) and pretext.*."""
    check(config.seed >= 0, "seed", "must be an integer >= 0")
    check(
        63 <= config.data.image_size <= 512,
        "data.image_size",
        "must be 63 (the smallest AlexNet input) to 512 pixels",
    )
    check(config.model.width > 0, "model.width", "must be positive")
    check(config.model.fc_dim >= 1, "model.fc_dim", "must be >= 1")
    check(0 <= config.model.dropout_rate < 1, "model.dropout_rate", "must be in [0, 1)")
    check(
        config.model.compute_dtype in COMPUTE_DTYPES,
        "model.compute_dtype",
        f"must be one of {COMPUTE_DTYPES}",
    )
    check(config.train.batch_size >= 1, "train.batch_size", "must be >= 1")
    check(config.train.eval_batch_size >= 1, "train.eval_batch_size", "must be >= 1")
    check(config.train.learning_rate > 0, "train.learning_rate", "must be positive")
    check(config.train.weight_decay >= 0, "train.weight_decay", "must be >= 0")
    check(config.train.epochs >= 1, "train.epochs", "must be >= 1")
    check(config.pretext.seed >= 0, "pretext.seed", "must be >= 0")
    check(config.pretext.num_train >= 1, "pretext.num_train", "must be >= 1")
    check(
        config.pretext.num_train >= config.train.batch_size,
        ("pretext.num_train", "train.batch_size"),
        {
            "pretext.num_train": f"must be at least one batch (train.batch_size="
            f"{config.train.batch_size}): {config.train.batch_size} or more",
            "train.batch_size": f"must be at most pretext.num_train={config.pretext.num_train}"
            f" (one batch of the pretext corpus): 1 to {config.pretext.num_train}",
            SEVERAL: f"one batch (train.batch_size={config.train.batch_size}) must fit in the "
            f"pretext corpus (pretext.num_train={config.pretext.num_train}): set "
            f"--config.pretext.num_train={config.train.batch_size} or more, or "
            f"--config.train.batch_size={config.pretext.num_train} or less",
        },
    )
    check(config.pretext.num_heldout >= 1, "pretext.num_heldout", "must be >= 1")
