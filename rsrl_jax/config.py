"""The base config every experiment config starts from, and its validation.

Configs under `configs/` call `base_config()` and override fields; each field's meaning is in
its comment below and in README.md ("Configs"), the choices the paper leaves open in
ARCHITECTURE.md ("Design facts"). `validate` runs before any work so a bad value fails in
seconds with a message naming the field; `validate_with_data` checks, once the data are
read, the fields whose valid values depend on the data's classes. (One module, a little over
300 lines: every field and every check of it in one place.)
"""

import math
import os

import jax
import ml_collections
from absl import logging

from rsrl_jax.data import inputs
from rsrl_jax.engine.train import BATCH_NORM, FEATURE_MODELS, MODELS
from rsrl_jax.errors import ConfigError
from rsrl_jax.method import losses, sampling, selection
from rsrl_jax.models import pretrained

DATA_SETS = ("synthetic", "folder", "ava", inputs.EMBEDDINGS)
LIKELIHOODS = ("sigmoid", "softmax")
CHECKPOINT_KEEP = ("all", "needed")  # which round checkpoints a run keeps (rsrl_jax.run.retention)
COMPUTE_DTYPES = ("float32", "bfloat16")
NEAR_DUPLICATE_MAX = 16  # pHash bits; beyond, photos are unrelated more often than not
# data.* fields only some data sets read. Given with another data set, data.dir is an error
# (the run would train on other photos than the user's); the others a warning each.
DATA_SET_FIELDS = {
    "num_examples": ("synthetic",),
    "label_noise": ("synthetic",),
    "on_bad_example": ("folder", "ava", inputs.EMBEDDINGS),
    "max_pixels": ("folder", "ava"),
    "near_duplicate_distance": ("folder", "ava"),
    "group_near_duplicates": ("folder", "ava"),
    "score_range": ("folder", inputs.EMBEDDINGS),
    "filename_column": ("folder",),
    "score_column": ("folder",),
    "ava_bins": ("ava",),
    "ava_official_split": ("ava",),
}


def base_config() -> ml_collections.ConfigDict:
    """The paper's method with torchvision-sized AlexNet on 224px input."""
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.name = "synthetic"  # or 'folder', 'ava', 'embeddings' (data.dir/embeddings.npz)
    c.data.dir = ""
    c.data.num_examples = 3100  # synthetic only
    c.data.label_noise = 0.1  # synthetic only: rater noise, in std of the latent quality
    c.data.image_size = 224  # the square side the network sees
    c.data.stored_size = 0  # side photos are decoded and stored at (random crops); 0 = image_size
    c.data.on_bad_example = "error"  # or 'skip': leave bad photos/rows out, listed in skipped.jsonl
    c.data.cache_dir = ""  # prepared records; '' = $TFDS_DATA_DIR or ~/tensorflow_datasets
    c.data.max_pixels = 89_478_485  # larger photos are refused as decompression bombs
    # Photos whose 64-bit perceptual hashes (pHash) differ in at most this many bits are
    # reported as near-duplicates (duplicates.json): re-encoded or resized copies differ in
    # 0-2, unrelated photos in about 32; 4 leaves a margin and few false pairs (0..16).
    c.data.near_duplicate_distance = 4
    # True: near-duplicates are split together, as byte- or pixel-identical copies always are
    c.data.group_near_duplicates = False
    c.data.score_range = (1, 10)  # folder, embeddings: allowed integer scores, inclusive
    # folder: the columns of scores.csv read, by their header names (any order, case and
    # spaces aside; other columns are ignored)
    c.data.filename_column = "filename"
    c.data.score_column = "score"
    c.data.ava_bins = ()  # ava: edges on the mean vote; () = class is the rounded mean vote
    c.data.ava_official_split = True  # ava: test on generic_test.jpgl when present (one fold)

    c.protocol = ml_collections.ConfigDict()
    c.protocol.folds = 5  # k of stratified k-fold; 1 = a single stratified split
    c.protocol.test_fraction = 0.2  # only when folds == 1
    c.protocol.val_fraction = 0.1  # validation share inside each training fold
    c.protocol.max_folds = 0  # run only the first n folds (0 = all), e.g. for a quick look
    # Train the folds' rounds at once, one step vmapped over a fold axis (rsrl_jax.engine.rounds):
    # the same results to float rounding, faster where one fold leaves the accelerator idle.
    c.protocol.parallel_folds = False

    c.model = ml_collections.ConfigDict()
    # 'alexnet' (photos; the paper's), 'resnet50' (photos; torchvision's ResNet-50), or over
    # feature vectors (data.name='embeddings'): 'mlp' (hidden layers of model.hidden_widths,
    # ReLU and dropout) or 'linear' (the N-way head alone).
    c.model.name = "alexnet"
    c.model.hidden_widths = (512,)  # mlp only
    # resnet50 only: BatchNorm while fine-tuning. 'frozen': the pretrained running statistics
    # throughout, train and eval alike (the usual choice for small batches); 'updated': each
    # batch normalised with its own statistics and the running ones updated (momentum 0.9).
    c.model.batch_norm = "frozen"
    # Converted ImageNet weights (a folder or .npz), 'shipped:NAME' (weights in the package),
    # or '' to train from scratch.
    c.model.pretrained = ""
    c.model.width = 1.0  # conv channel multiplier (1.0 = torchvision)
    c.model.fc_dim = 4096  # alexnet only
    c.model.dropout_rate = 0.5  # alexnet, mlp
    # 'bfloat16': activations and matmuls in bf16 for accelerators; parameters, optimizer
    # state, logits and loss stay float32.
    c.model.compute_dtype = "float32"

    c.train = ml_collections.ConfigDict()
    c.train.batch_size = 32  # global batch
    c.train.eval_batch_size = 128
    c.train.epochs_per_round = 10
    c.train.first_round_epochs = 0  # 0 = epochs_per_round
    c.train.optimizer = "sgd"  # 'sgd' with momentum (the paper's sgdm) or 'adam'
    c.train.learning_rate = 1e-3
    c.train.momentum = 0.9
    c.train.weight_decay = 5e-4
    c.train.head_lr_multiplier = 10.0  # the new N-way head learns faster (transfer learning)
    c.train.flip = True  # random horizontal flips
    c.train.random_crop = True  # random image_size crops of stored_size photos (else central)
    # An epoch is one pass over the round's training set ('kept') or as many samples as all of
    # D ('all': every round spends the same optimizer steps, whatever the selection kept).
    c.train.epoch_samples = "kept"

    c.rsrl = ml_collections.ConfigDict()
    c.rsrl.rounds = 12
    c.rsrl.num_majority = 3
    c.rsrl.thresholds = (0.99, 0.99, 0.99)  # K1, K2, K3
    c.rsrl.likelihood = "sigmoid"  # the paper's sigmoidal fuzzy membership of fc
    # Keep at least this many samples of each majority class, the most likely first (0 = the
    # paper: a round may drop a whole class).
    c.rsrl.min_keep_per_class = 0
    # 0 = the paper: keep a majority sample when its own-class likelihood >= K. q in (0, 1):
    # keep it when >= the q-quantile of its class's likelihoods over D (drops about a share q
    # of each majority class, relative to the class's own distribution; K is then unused).
    c.rsrl.drop_quantile = 0.0

    # What each round trains with (rsrl_jax.compare runs the baselines): the selection of the
    # next round's training set, the loss, and how an epoch samples the round's training set.
    c.method = ml_collections.ConfigDict()
    # 'rsrl' (the paper), 'none' (all of D), 'hardness' (IHT), 'random_drop' (as many of each
    # majority class as RSRL keeps, drawn at random: the control for RSRL's choice of samples)
    c.method.selection = "rsrl"
    c.method.loss = "cross_entropy"  # or 'weighted_cross_entropy', 'focal', 'logit_adjusted'
    c.method.class_weights = "inverse_frequency"  # or 'effective_number' (Cui et al. 2019)
    c.method.effective_number_beta = 0.999
    c.method.focal_gamma = 2.0
    c.method.logit_adjustment_tau = 1.0  # Menon et al. 2021
    c.method.sampling = "uniform"  # or 'class_balanced': every class equally likely per draw
    c.method.hardness_target = 0  # IHT: reduce classes to this size; 0 = the smallest class of D

    # How a round is measured (not how it trains). A photo is "good" when its score is above
    # good_threshold (AVA's convention: mean score > 5), for the binary accuracy of the
    # expected score (rsrl_jax.analysis.aesthetic).
    c.eval = ml_collections.ConfigDict()
    c.eval.good_threshold = 5.0

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.every_steps = 200  # mid-round checkpoints for resume (0 = round ends only)
    # Round checkpoints kept: 'all' (every round of every fold), or 'needed' (at most 3 a fold:
    # the round chosen on validation, its net_(I-1) for highlights, the last for resume).
    c.checkpoint.keep = "all"

    c.log = ml_collections.ConfigDict()
    c.log.progress = True  # per-epoch lines; False = one line per round

    # An existing workdir is resumed. 'auto' refuses a config that would change results;
    # 'force' resumes anyway (the new values apply from where the run stands).
    c.resume = "auto"
    return c


# Fields that may change between a run and its resumption: they do not change results.
RESUMABLE_CHANGES = ("log.", "checkpoint.", "resume", "protocol.max_folds", "data.cache_dir")


def flatten(d: dict, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}; tuples and lists compare as lists."""
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple | list) else value
    return out


def result_changing_fields(recorded: dict, current: dict) -> list[str]:
    """Dotted names of the fields whose values differ and would change a run's results.

    A field absent from `recorded` (added to the code since the run, e.g. rsrl.drop_quantile)
    counts with its `base_config()` default: new fields default to the behaviour before them.
    """
    a, b = {**flatten(base_config().to_dict()), **flatten(recorded)}, flatten(current)
    return sorted(
        f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
        for k in set(a) | set(b)
        if a.get(k) != b.get(k) and not k.startswith(RESUMABLE_CHANGES)
    )


def validate(config: ml_collections.ConfigDict) -> None:
    """Raise errors.ConfigError (a ValueError) naming the first field with a value the run
    cannot use."""

    def check(ok: bool, field: str, why: str):
        if not ok:
            raise ConfigError(f"config.{field}={config[field]!r}: {why}")

    check(config.data.name in DATA_SETS, "data.name", f"must be one of {DATA_SETS}")
    check(
        config.data.name != "synthetic" or not config.data.dir,
        "data.dir",
        "a photo folder is read with data.name='folder' or 'ava' (a folder of embeddings.npz "
        "with 'embeddings'), but data.name='synthetic' trains on the embedded synthetic photos: "
        "add --config.data.name=folder (or ava, embeddings), or leave data.dir empty",
    )
    for warning in ignored_data_fields(config):
        logging.warning("%s", warning)
    check(
        config.data.on_bad_example in ("error", "skip"),
        "data.on_bad_example",
        "must be 'error' or 'skip'",
    )
    if config.model.get("name") == "resnet50":
        check(config.data.image_size >= 32, "data.image_size", "ResNet-50 needs at least 32 pixels")
    else:
        check(config.data.image_size >= 63, "data.image_size", "AlexNet needs at least 63 pixels")
    check(
        config.data.stored_size == 0 or config.data.stored_size >= config.data.image_size,
        "data.stored_size",
        f"must be 0 (= image_size) or at least data.image_size={config.data.image_size}",
    )
    check(config.data.num_examples >= 1, "data.num_examples", "must be positive")
    if config.data.name != "synthetic":
        check(bool(config.data.dir), "data.dir", f"a {config.data.name} data set needs its folder")
    check(config.data.max_pixels >= 1, "data.max_pixels", "must be positive")
    for field in ("data.filename_column", "data.score_column"):
        check(bool(str(config[field]).strip()), field, "must name a column of scores.csv")
    check(
        config.data.filename_column.strip().lower() != config.data.score_column.strip().lower(),
        "data.score_column",
        f"must be another column than data.filename_column={config.data.filename_column!r}",
    )
    check(
        isinstance(config.data.near_duplicate_distance, int)
        and 0 <= config.data.near_duplicate_distance <= NEAR_DUPLICATE_MAX,
        "data.near_duplicate_distance",
        f"must be an integer number of pHash bits, 0..{NEAR_DUPLICATE_MAX} (4: re-encoded "
        "and resized copies)",
    )
    check(
        isinstance(config.data.group_near_duplicates, bool),
        "data.group_near_duplicates",
        "must be True or False",
    )
    check(
        len(config.data.score_range) == 2
        and all(isinstance(s, int) for s in config.data.score_range)
        and config.data.score_range[0] <= config.data.score_range[1],
        "data.score_range",
        "must be two integers, the lowest first: (lowest, highest)",
    )
    check(
        all(a < b for a, b in zip(config.data.ava_bins[:-1], config.data.ava_bins[1:], strict=True))
        and all(1 < e <= 10 for e in config.data.ava_bins),
        "data.ava_bins",
        "must be increasing edges on the mean vote, within (1, 10]",
    )
    check(config.protocol.folds >= 1, "protocol.folds", "must be >= 1")
    check(0 < config.protocol.val_fraction < 1, "protocol.val_fraction", "must be in (0, 1)")
    check(0 < config.protocol.test_fraction < 1, "protocol.test_fraction", "must be in (0, 1)")
    _check_model(config, check)
    check(config.model.width > 0, "model.width", "must be positive")
    check(
        config.model.compute_dtype in COMPUTE_DTYPES,
        "model.compute_dtype",
        f"must be one of {COMPUTE_DTYPES}",
    )
    if config.model.pretrained:  # the weights must exist and fit the network's size
        why = pretrained.problem(
            config.model.pretrained, config.model.width, config.model.fc_dim, config.model.name
        )
        check(why is None, "model.pretrained", why)
    check(config.train.batch_size >= 1, "train.batch_size", "must be >= 1")
    check(config.train.eval_batch_size >= 1, "train.eval_batch_size", "must be >= 1")
    check(config.train.epochs_per_round >= 1, "train.epochs_per_round", "must be >= 1")
    check(config.train.optimizer in ("sgd", "adam"), "train.optimizer", "must be 'sgd' or 'adam'")
    check(config.train.learning_rate > 0, "train.learning_rate", "must be positive")
    check(config.train.head_lr_multiplier > 0, "train.head_lr_multiplier", "must be positive")
    check(config.rsrl.rounds >= 1, "rsrl.rounds", "must be >= 1")
    check(config.rsrl.num_majority >= 0, "rsrl.num_majority", "must be >= 0")
    check(
        len(config.rsrl.thresholds) >= config.rsrl.num_majority,
        "rsrl.thresholds",
        f"needs one threshold per majority class ({config.rsrl.num_majority})",
    )
    check(
        all(0 < k <= 1 for k in config.rsrl.thresholds),
        "rsrl.thresholds",
        "each K must be in (0, 1]",
    )
    check(config.rsrl.likelihood in LIKELIHOODS, "rsrl.likelihood", f"must be one of {LIKELIHOODS}")
    check(config.rsrl.min_keep_per_class >= 0, "rsrl.min_keep_per_class", "must be >= 0")
    check(
        0 <= config.rsrl.drop_quantile < 1,
        "rsrl.drop_quantile",
        "must be in [0, 1): 0 = the paper's absolute K, q drops about a share q of each "
        "majority class",
    )
    check(
        config.train.epoch_samples in sampling.EPOCH_SAMPLES,
        "train.epoch_samples",
        f"must be one of {sampling.EPOCH_SAMPLES}",
    )
    method = config.method
    check(
        method.selection in selection.SELECTIONS,
        "method.selection",
        f"must be one of {selection.SELECTIONS}",
    )
    check(method.loss in losses.LOSSES, "method.loss", f"must be one of {losses.LOSSES}")
    check(
        method.class_weights in losses.CLASS_WEIGHTS,
        "method.class_weights",
        f"must be one of {losses.CLASS_WEIGHTS}",
    )
    check(
        0 <= method.effective_number_beta < 1,
        "method.effective_number_beta",
        "must be in [0, 1)",
    )
    check(method.focal_gamma >= 0, "method.focal_gamma", "must be >= 0")
    check(method.logit_adjustment_tau >= 0, "method.logit_adjustment_tau", "must be >= 0")
    check(
        method.sampling in sampling.SAMPLINGS,
        "method.sampling",
        f"must be one of {sampling.SAMPLINGS}",
    )
    check(
        method.hardness_target >= 0, "method.hardness_target", "must be >= 0 (0 = smallest class)"
    )
    threshold = config.eval.good_threshold
    check(
        isinstance(threshold, int | float)
        and not isinstance(threshold, bool)
        and math.isfinite(threshold),
        "eval.good_threshold",
        "must be a finite number: a photo is good when its score is above it (AVA: 5.0)",
    )
    check(config.checkpoint.every_steps >= 0, "checkpoint.every_steps", "must be >= 0")
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
    if config.data.name != "synthetic":
        check(
            not (inputs.reads_features(config) and os.path.isfile(config.data.dir)),
            "data.dir",
            "the folder holding embeddings.npz, not a file: name the file embeddings.npz and "
            "pass its folder",
        )
        check(os.path.isdir(config.data.dir), "data.dir", "no such folder")


PHOTO_MODELS = {"alexnet": "AlexNet", "resnet50": "ResNet-50"}  # model.name -> its name


def _check_model(config: ml_collections.ConfigDict, check) -> None:
    """model.name against the data's kind (photos or feature vectors), and its own fields."""
    name = config.model.name
    check(name in MODELS, "model.name", f"must be one of {MODELS}")
    if inputs.reads_features(config):
        check(
            name in FEATURE_MODELS,
            "model.name",
            f"{PHOTO_MODELS.get(name, name)} reads photos, but data.name={inputs.EMBEDDINGS!r} "
            "feeds feature vectors: "
            "set --config.model.name=mlp or linear (configs/embeddings.py)",
        )
        check(
            not config.model.pretrained,
            "model.pretrained",
            f"pretrained weights are AlexNet's; the {name} head over embeddings starts from "
            "random init: set --config.model.pretrained=''",
        )
    else:
        check(
            name not in FEATURE_MODELS,
            "model.name",
            f"reads feature vectors (data.name={inputs.EMBEDDINGS!r}), but data.name="
            f"{config.data.name!r} feeds photos: set --config.model.name=alexnet, or "
            "--config.data.name=embeddings with a folder of embeddings.npz",
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
        "model.hidden_widths",
        "model.name='mlp' needs one or more positive integer widths, e.g. '(512,)' or "
        "'(1024,256)' (model.name='linear' for none)",
    )
    check(0 <= config.model.dropout_rate < 1, "model.dropout_rate", "must be in [0, 1)")


def validate_with_data(config: ml_collections.ConfigDict, class_scores, counts) -> None:
    """Raise errors.ConfigError naming the first field whose value does not fit the data's
    classes: `class_scores` [C] (the scores present, sorted) and `counts` [C] (photos each).

    The checks `validate` cannot make before the data are read. RSRL thins the
    `rsrl.num_majority` largest classes and keeps the rest, so it needs more classes than that.
    An `eval.good_threshold` that puts every score on one side is logged as a warning.
    """
    num_classes = len(class_scores)
    if config.rsrl.num_majority >= num_classes:
        photos = dict(zip(class_scores, (int(c) for c in counts), strict=True))
        raise ConfigError(
            f"config.rsrl.num_majority={config.rsrl.num_majority}: must be below the number "
            f"of classes in the data ({num_classes}: scores {tuple(class_scores)}, photos "
            f"{photos}); set --config.rsrl.num_majority={num_classes - 1} or less"
        )
    threshold, low, high = config.eval.good_threshold, min(class_scores), max(class_scores)
    if not low <= threshold < high:  # told, not refused: only one figure depends on it
        side = "good" if threshold < low else "not good"
        bins = " (with data.ava_bins the scores are bin indices)" if config.data.ava_bins else ""
        logging.warning(
            "config.eval.good_threshold=%r does not split the data's scores %s%s: every photo "
            "is %s, so binary_accuracy only counts the expected scores on that side; set "
            "--config.eval.good_threshold=T with %s <= T < %s",
            threshold,
            tuple(class_scores),
            bins,
            side,
            low,
            high,
        )


def validate_pretext(config: ml_collections.ConfigDict) -> None:
    """Raise errors.ConfigError naming the first field of a `configs/pretext.py` config
    (`python -m rsrl_jax.pretrain`) with a value pretraining cannot use."""

    def check(ok: bool, field: str, why: str):
        if not ok:
            raise ConfigError(f"config.{field}={config[field]!r}: {why}")

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
    check(
        config.pretext.num_train >= config.train.batch_size,
        "pretext.num_train",
        f"must be at least one batch (train.batch_size={config.train.batch_size})",
    )
    check(config.pretext.num_heldout >= 1, "pretext.num_heldout", "must be >= 1")


def ignored_data_fields(config: ml_collections.ConfigDict) -> list[str]:
    """One line for each data.* field set (unlike base_config()) that data.name does not read.

    A config may set them for another data set (e.g. xiheaa.py's score_range, run with
    --config.data.name=ava), so they are told, not refused.
    """
    default, name = base_config().data, config.data.name
    lines = []
    for field, readers in DATA_SET_FIELDS.items():
        value = config.data[field]
        if name in readers or _comparable(value) == _comparable(default[field]):
            continue
        lines.append(
            f"config.data.{field}={value!r} is ignored: only data.name="
            f"{' or '.join(repr(r) for r in readers)} reads it, and this run has data.name={name!r}"
        )
    return lines


def _comparable(value):
    return list(value) if isinstance(value, tuple | list) else value
