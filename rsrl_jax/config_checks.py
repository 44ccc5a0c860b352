"""`config.validate`'s checks, one function per section of the config (data, protocol,
train, the run's bookkeeping), and the checker that words their messages.

Each `check_*(config, check)` raises errors.ConfigError through `check` (`checker`) at the
first field of its section with a value the run cannot use; `config.validate` calls them
in the config's order, so the first bad field is the one named. The model's checks are in
config_model_checks, the method's (rsrl.*, method.*) in config_method_checks.
"""

import math
import os

import jax
import ml_collections

from rsrl_jax import overrides
from rsrl_jax.data import inputs
from rsrl_jax.errors import ConfigError
from rsrl_jax.models import vit

DATA_SETS = ("synthetic", "folder", "ava", inputs.EMBEDDINGS, inputs.SYNTHETIC_EMBEDDINGS)
# Data sets made in memory from the seed (no data.dir): the photos, the vectors (a known rater)
GENERATED = ("synthetic", inputs.SYNTHETIC_EMBEDDINGS)
CHECKPOINT_KEEP = ("all", "needed")  # which round checkpoints a run keeps (rsrl_jax.run.retention)
COMPUTE_DTYPES = ("float32", "bfloat16")
NEAR_DUPLICATE_MAX = 16  # pHash bits; beyond, photos are unrelated more often than not


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


def max_classes(config: ml_collections.ConfigDict) -> tuple[int, str]:
    """The most classes `config`'s data can have, and why (before the data are read): the
    synthetic photos' scores, data.score_range's integers, AVA's ten scores or its bins."""
    data = config.data
    if data.name in GENERATED:
        from rsrl_jax.data.synthetic import SCORE_SHARES  # the synthetic rater's scores

        low, high = min(SCORE_SHARES), max(SCORE_SHARES)
        return len(SCORE_SHARES), f"the synthetic photos score {low}..{high}"
    if data.name == "ava":
        if data.ava_bins:
            return len(data.ava_bins) + 1, f"data.ava_bins={tuple(data.ava_bins)!r} makes"
        return 10, "AVA's scores are 1..10"
    low, high = data.score_range
    return high - low + 1, f"data.score_range={tuple(data.score_range)!r} allows"


def real_numbers(values) -> bool:
    """Whether `values` is a tuple or list of real numbers (not bools, not strings)."""
    return isinstance(values, tuple | list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )


def check_source(config: ml_collections.ConfigDict, check) -> None:
    """seed; data.name, and data.dir against the synthetic photos."""
    data = config.data
    check(config.seed >= 0, "seed", "must be an integer >= 0")
    check(data.name in DATA_SETS, "data.name", f"must be one of {DATA_SETS}")
    made = "the embedded synthetic photos" if data.name == "synthetic" else "vectors it generates"
    check(
        data.name not in GENERATED or not data.dir,
        ("data.dir", "data.name"),
        {
            "data.dir": "a photo folder is read with data.name='folder' or 'ava' (a folder of "
            f"embeddings.npz with 'embeddings'), but data.name={data.name!r} trains on "
            f"{made}: add --config.data.name=folder (or ava, embeddings), or "
            "leave data.dir empty",
            "data.name": f"trains on {made}, but data.dir={data.dir!r} "
            "names a folder to read: set data.name to 'folder', 'ava' or 'embeddings' to read "
            "it, or --config.data.dir='' for the synthetic photos",
            SEVERAL: f"data.name={data.name!r} trains on {made} and reads "
            "no folder: set data.name to 'folder', 'ava' or 'embeddings' to read data.dir, or "
            "leave data.dir out",
        },
    )


def check_data(config: ml_collections.ConfigDict, check) -> None:
    """data.*: sizes (against the network's least), columns, duplicates, scores."""
    data = config.data
    check(
        data.on_bad_example in ("error", "skip"),
        "data.on_bad_example",
        "must be 'error' or 'skip'",
    )
    model_name = config.model.get("name")
    least, network = (32, "ResNet-50") if model_name == "resnet50" else (63, "AlexNet")
    check(
        model_name in vit.SIZES or data.image_size >= least,  # a ViT's size: _check_vit
        ("data.image_size", "model.name"),
        {
            "data.image_size": f"{network} needs at least {least} pixels (model.name="
            f"{model_name!r}; AlexNet 63, ResNet-50 32)",
            "model.name": f"{network} needs data.image_size >= {least}, and it is "
            f"{data.image_size}: set --config.data.image_size={least} or more",
            SEVERAL: f"{network} needs data.image_size >= {least} (AlexNet 63, ResNet-50 32): "
            f"set --config.data.image_size={least} or more"
            + (
                ", or --config.model.name=resnet50"
                if model_name != "resnet50" and data.image_size >= 32
                else ""
            ),
        },
    )
    check(
        data.stored_size == 0 or data.stored_size >= data.image_size,
        ("data.stored_size", "data.image_size"),
        {
            "data.stored_size": f"must be 0 (= image_size) or at least data.image_size="
            f"{data.image_size}",
            "data.image_size": f"must be at most data.stored_size={data.stored_size} (photos "
            f"stored at that side are cropped to image_size): set --config.data.stored_size=0 "
            f"(= image_size) or at least {data.image_size}",
            SEVERAL: "photos stored at data.stored_size are cropped to data.image_size, so "
            f"stored_size must be 0 (= image_size) or at least image_size: set "
            f"--config.data.stored_size=0 or {data.image_size} or more"
            + (
                f", or --config.data.image_size={data.stored_size} or less"
                if data.stored_size >= least
                else ""
            ),
        },
    )
    check(data.num_examples >= 1, "data.num_examples", "must be >= 1")
    check(data.label_noise >= 0, "data.label_noise", "must be >= 0 (0 = a noiseless rater)")
    if data.name == inputs.SYNTHETIC_EMBEDDINGS:
        check(
            _strength_problem(data.feature_strength) is None,
            "data.feature_strength",
            str(_strength_problem(data.feature_strength)),
        )
    if data.name not in GENERATED:
        check(
            bool(data.dir),
            ("data.dir", "data.name"),
            {
                "data.dir": f"a {data.name} data set needs its folder: set "
                "--config.data.dir=FOLDER",
                "data.name": "reads its data from data.dir, which is empty: add "
                "--config.data.dir=FOLDER (or data.name='synthetic' for the synthetic photos)",
                SEVERAL: f"a {data.name} data set reads its folder, data.dir, which is empty: "
                "set --config.data.dir=FOLDER, or --config.data.name=synthetic for the "
                "synthetic photos",
            },
        )
    check(data.max_pixels >= 1, "data.max_pixels", "must be >= 1")
    for field in ("data.filename_column", "data.score_column"):
        check(
            bool(str(config[field]).strip()),
            field,
            "must name a column of scores.csv (defaults: 'filename', 'score')",
        )
    check(
        data.filename_column.strip().lower() != data.score_column.strip().lower(),
        ("data.score_column", "data.filename_column"),
        {
            "data.score_column": "must be another column than data.filename_column="
            f"{data.filename_column!r}",
            "data.filename_column": "must be another column than data.score_column="
            f"{data.score_column!r}",
            SEVERAL: "they name one column of scores.csv: give the photos' column and the "
            "scores' column (defaults: 'filename', 'score')",
        },
    )
    check(
        isinstance(data.near_duplicate_distance, int)
        and 0 <= data.near_duplicate_distance <= NEAR_DUPLICATE_MAX,
        "data.near_duplicate_distance",
        f"must be an integer number of pHash bits, 0..{NEAR_DUPLICATE_MAX} (4: re-encoded "
        "and resized copies)",
    )
    check(
        isinstance(data.group_near_duplicates, bool),
        "data.group_near_duplicates",
        "must be True or False",
    )
    check(
        real_numbers(data.score_range)
        and len(data.score_range) == 2
        and all(isinstance(s, int) for s in data.score_range)
        and data.score_range[0] <= data.score_range[1],
        "data.score_range",
        "must be two integers, the lowest first: (lowest, highest), e.g. '(1,10)'",
    )
    check(
        real_numbers(data.ava_bins)
        and all(a < b for a, b in zip(data.ava_bins[:-1], data.ava_bins[1:], strict=True))
        and all(1 < e <= 10 for e in data.ava_bins),
        "data.ava_bins",
        "must be increasing edges on the mean vote, within (1, 10], e.g. '(5.0,)' or () for "
        "the rounded mean vote",
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


def check_data_folder(config: ml_collections.ConfigDict, check) -> None:
    """data.dir exists (last: the cheap checks speak first)."""
    data = config.data
    if data.name not in GENERATED:
        check(
            not (inputs.reads_features(config) and os.path.isfile(data.dir)),
            ("data.dir", "data.name"),
            "the folder holding embeddings.npz, not a file: name the file embeddings.npz and "
            "pass its folder",
        )
        check(os.path.isdir(data.dir), "data.dir", "no such folder")


def _strength_problem(strength) -> str | None:
    """Why `data.feature_strength` is unusable, or None (`synthetic_embeddings.noise_std`)."""
    from rsrl_jax.data.synthetic_embeddings import noise_std

    try:
        noise_std(strength)
    except ValueError as e:
        return f"{e}, e.g. --config.data.feature_strength=strong"
    return None
