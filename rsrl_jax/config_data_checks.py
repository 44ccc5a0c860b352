"""`config.validate`'s checks of the data section (data.*, and the seed that draws the
generated data), and `validate_with_data`'s: the config against the classes the data have.

Each `check_*(config, check)` raises errors.ConfigError through `check`
(`config_checks.checker`) at the first field with a value the run cannot use.
"""

import os

import ml_collections
from absl import logging

from rsrl_jax import overrides
from rsrl_jax.config_checks import SEVERAL, real_numbers
from rsrl_jax.data import inputs
from rsrl_jax.models import vit

DATA_SETS = ("synthetic", "folder", "ava", inputs.EMBEDDINGS, inputs.SYNTHETIC_EMBEDDINGS)
# Data sets made in memory from the seed (no data.dir): the photos, the vectors (a known rater)
GENERATED = ("synthetic", inputs.SYNTHETIC_EMBEDDINGS)
NEAR_DUPLICATE_MAX = 16  # pHash bits; beyond, photos are unrelated more often than not


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


# The data fields that decide how many classes the data have (validate_with_data).
CLASS_FIELDS = ("data.name", "data.dir", "data.ava_bins", "data.score_range", "data.num_examples")


def check_data_classes(config: ml_collections.ConfigDict, class_scores, counts, check) -> None:
    """Raise errors.ConfigError naming the first field whose value does not fit the data's
    classes: `class_scores` [C] (the scores present, sorted) and `counts` [C] (photos each).

    The checks `validate` cannot make before the data are read. RSRL thins the
    `rsrl.num_majority` largest classes and keeps the rest, so it needs more classes than that.
    An `eval.good_threshold` that puts every score on one side is logged as a warning.
    A data field the command line set (`check.given`) leads the message.
    """
    given = check.given
    num_classes = len(class_scores)
    n = config.rsrl.num_majority
    photos = dict(zip(class_scores, (int(c) for c in counts), strict=True))
    classes = f"{num_classes} classes (scores {tuple(class_scores)}, photos {photos})"
    fix = f"set --config.rsrl.num_majority={num_classes - 1} or less (0 to {num_classes - 1})"
    data_reason = (
        f"the data have {classes}, but RSRL needs more classes than rsrl.num_majority={n}, "
        f"the majority classes it thins: {fix}"
    )
    check(
        n < num_classes,
        # A config file's data fields are its data set; one set on the command line leads.
        ("rsrl.num_majority", *(f for f in CLASS_FIELDS if f in given)),
        {
            "rsrl.num_majority": f"must be below the number of classes in the data ({classes})"
            f"; {fix}",
            **dict.fromkeys(CLASS_FIELDS, data_reason),
            SEVERAL: f"the data have {classes}, and RSRL needs more classes than "
            f"rsrl.num_majority={n}: {fix}, or data with more classes",
        },
    )
    threshold, low, high = config.eval.good_threshold, min(class_scores), max(class_scores)
    if not low <= threshold < high:  # told, not refused: only one figure depends on it
        side = "good" if threshold < low else "not good"
        bins = " (with data.ava_bins the scores are bin indices)" if config.data.ava_bins else ""
        logging.warning(
            "%s does not split the data's scores %s%s: every photo is %s, so binary_accuracy "
            "only counts the expected scores on that side; set --config.eval.good_threshold=T "
            "with %s <= T < %s",
            overrides.named(config, "eval.good_threshold", given),
            tuple(class_scores),
            bins,
            side,
            low,
            high,
        )
