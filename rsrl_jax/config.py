"""The base config every experiment config starts from, and its validation.

Configs under `configs/` call `base_config()` and override fields; each field's meaning is in
its comment below and in docs/configs.md (generated from them), the choices the paper leaves open in
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

from rsrl_jax import overrides
from rsrl_jax.data import inputs
from rsrl_jax.engine.train import BATCH_NORM, FEATURE_MODELS, MODELS
from rsrl_jax.errors import ConfigError
from rsrl_jax.method import confident_learning, losses, sampling, selection
from rsrl_jax.models import pretrained, vit

DATA_SETS = ("synthetic", "folder", "ava", inputs.EMBEDDINGS, inputs.SYNTHETIC_EMBEDDINGS)
# Data sets made in memory from the seed (no data.dir): the photos, the vectors (a known rater)
GENERATED = ("synthetic", inputs.SYNTHETIC_EMBEDDINGS)
LIKELIHOODS = ("sigmoid", "softmax")
CHECKPOINT_KEEP = ("all", "needed")  # which round checkpoints a run keeps (rsrl_jax.run.retention)
COMPUTE_DTYPES = ("float32", "bfloat16")
NEAR_DUPLICATE_MAX = 16  # pHash bits; beyond, photos are unrelated more often than not
# data.* fields only some data sets read. Given with another data set, data.dir is an error
# (the run would train on other photos than the user's); the others a warning each.
DATA_SET_FIELDS = {
    "num_examples": GENERATED,
    "label_noise": GENERATED,
    "feature_strength": (inputs.SYNTHETIC_EMBEDDINGS,),
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
    c.seed = 0  # splits, initialisation, photo order, dropout (and the synthetic photos)

    c.data = ml_collections.ConfigDict()
    # The data set: 'synthetic' (embedded photos), or from data.dir 'folder', 'ava',
    # 'embeddings' (data.dir/embeddings.npz)
    c.data.name = "synthetic"
    c.data.dir = ""  # the data set's folder ('folder', 'ava', 'embeddings'); '' for synthetic
    c.data.num_examples = 3100  # synthetic, synthetic_embeddings: how many photos (vectors)
    # synthetic, synthetic_embeddings: rater noise, in std of the latent quality
    c.data.label_noise = 0.1
    # synthetic_embeddings only: how well the vectors show the rater's quality: 'weak',
    # 'medium', 'strong' (a logistic regression's macro F on noiseless scores: 0.22, 0.33,
    # 0.54; data/synthetic_embeddings.py), or the vectors' noise std as a number ('1.5')
    c.data.feature_strength = "medium"
    c.data.image_size = 224  # the square side the network sees
    c.data.stored_size = 0  # side photos are decoded and stored at (random crops); 0 = image_size
    # 'error': stop at a bad photo or row; 'skip': leave it out, listed in skipped.jsonl
    c.data.on_bad_example = "error"
    c.data.cache_dir = ""  # prepared records; '' = $TFDS_DATA_DIR or ~/tensorflow_datasets
    c.data.max_pixels = 89_478_485  # larger photos are refused as decompression bombs
    # Photos whose 64-bit perceptual hashes (pHash) differ in at most this many bits are
    # reported as near-duplicates (duplicates.json): re-encoded or resized copies differ in
    # 0-2, unrelated photos in about 32; 4 leaves a margin and few false pairs (0..16).
    c.data.near_duplicate_distance = 4
    # True: near-duplicates are split together, as byte- or pixel-identical copies always are
    c.data.group_near_duplicates = False
    c.data.score_range = (1, 10)  # folder, embeddings: allowed integer scores, inclusive
    # folder: the header of scores.csv's column of photo paths (matched in any case and
    # spacing; the columns may come in any order, other columns are ignored)
    c.data.filename_column = "filename"
    # folder: the header of scores.csv's column of scores (matched as data.filename_column)
    c.data.score_column = "score"
    c.data.ava_bins = ()  # ava: edges on the mean vote; () = class is the rounded mean vote
    c.data.ava_official_split = True  # ava: test on generic_test.jpgl when present (one fold)

    c.protocol = ml_collections.ConfigDict()
    c.protocol.folds = 5  # k of stratified k-fold; 1 = a single stratified split
    c.protocol.test_fraction = 0.2  # the single split's test share (only when folds == 1)
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
    c.model.hidden_widths = (512,)  # mlp only: the hidden layers' widths
    # resnet50 only: BatchNorm while fine-tuning. 'frozen': the pretrained running statistics
    # throughout, train and eval alike (the usual choice for small batches); 'updated': each
    # batch normalised with its own statistics and the running ones updated (momentum 0.9).
    c.model.batch_norm = "frozen"
    # A ViT (model.name a size of rsrl_jax.models.vit.SIZES, e.g. 'clip_vit_b16'): its MLP's
    # activation, '' = the family's (CLIP: OpenAI's quick_gelu; SigLIP: gelu_tanh); LAION's
    # open_clip weights need 'gelu'. Must be the converted weights' (their record's `act`).
    c.model.vit_act = ""
    # Converted ImageNet weights (a folder or .npz), 'shipped:NAME' (weights in the package),
    # or '' to train from scratch.
    c.model.pretrained = ""
    c.model.width = 1.0  # conv channel multiplier (1.0 = torchvision)
    c.model.fc_dim = 4096  # alexnet only: width of the fully connected layers fc6, fc7
    c.model.dropout_rate = 0.5  # alexnet, mlp: dropout before each fully connected layer
    # 'bfloat16': activations and matmuls in bf16 for accelerators; parameters, optimizer
    # state, logits and loss stay float32.
    c.model.compute_dtype = "float32"

    c.train = ml_collections.ConfigDict()
    c.train.batch_size = 32  # global batch
    c.train.eval_batch_size = 128  # photos per evaluation step (no effect on results)
    c.train.epochs_per_round = 10  # training epochs of each round
    c.train.first_round_epochs = 0  # round 1's epochs; 0 = epochs_per_round
    c.train.optimizer = "sgd"  # 'sgd' with momentum (the paper's sgdm) or 'adam'
    c.train.learning_rate = 1e-3  # the backbone's (the head's: times head_lr_multiplier)
    c.train.momentum = 0.9  # sgd only
    c.train.weight_decay = 5e-4  # L2 penalty on the weights
    c.train.head_lr_multiplier = 10.0  # the new N-way head learns faster (transfer learning)
    c.train.flip = True  # random horizontal flips
    c.train.random_crop = True  # random image_size crops of stored_size photos (else central)
    # An epoch is one pass over the round's training set ('kept') or as many samples as all of
    # D ('all': every round spends the same optimizer steps, whatever the selection kept).
    c.train.epoch_samples = "kept"

    c.rsrl = ml_collections.ConfigDict()
    c.rsrl.rounds = 12  # training rounds, each on the samples the previous one kept
    c.rsrl.num_majority = 3  # the largest classes RSRL thins (below the data's class count)
    c.rsrl.thresholds = (0.99, 0.99, 0.99)  # K1, K2, ...: one per majority class, in (0, 1]
    c.rsrl.likelihood = "sigmoid"  # the paper's sigmoidal fuzzy membership of fc, or 'softmax'
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
    # majority class as RSRL keeps, drawn at random: the control for RSRL's choice of samples),
    # 'confident_learning' (cleanlab's label issues of the majority classes, from cross-fitted
    # out-of-sample probabilities)
    c.method.selection = "rsrl"
    # Whose counts random_drop draws: 'rsrl' (the rsrl.* rule's) or 'confident_learning'.
    c.method.random_drop_rule = "rsrl"
    # confident_learning: each round, cl_folds copies of the round's network, each fine-tuned
    # cl_epochs epochs on cl_folds - 1 parts of D (fresh optimizer state, the train.* settings)
    # and scoring the part it did not see: cl_folds x cl_epochs x (cl_folds - 1) / cl_folds
    # extra epochs over D a round (4, 2: 6). 4 parts: each copy sees 3/4 of D, near cleanlab's
    # default of 5 folds at 4/5 of the cost; 2 epochs: a short fine-tune (a round has 5).
    c.method.cl_folds = 4
    c.method.cl_epochs = 2  # confident_learning: fine-tune epochs of each copy (>= 1)
    # cleanlab.filter.find_label_issues' filter_by (its default; per-class thresholds in all)
    c.method.cl_filter_by = "prune_by_noise_rate"
    # 'cross_entropy', or 'weighted_cross_entropy', 'focal', 'logit_adjusted', 'emd' (NIMA's
    # earth mover's distance over the ordered scores, Talebi & Milanfar 2018)
    c.method.loss = "cross_entropy"
    # weighted_cross_entropy: 'inverse_frequency' or 'effective_number' (Cui et al. 2019)
    c.method.class_weights = "inverse_frequency"
    c.method.effective_number_beta = 0.999  # effective_number's beta, in [0, 1)
    c.method.focal_gamma = 2.0  # focal: the focusing exponent gamma
    c.method.logit_adjustment_tau = 1.0  # logit_adjusted: tau (Menon et al. 2021)
    # 'uniform', or 'class_balanced': every class equally likely per draw
    c.method.sampling = "uniform"
    c.method.hardness_target = 0  # IHT: reduce classes to this size; 0 = the smallest class of D

    # How a round is measured (not how it trains). A photo is "good" when its score is above
    # good_threshold (AVA's convention: mean score > 5), for the binary accuracy of the
    # expected score (rsrl_jax.analysis.aesthetic).
    c.eval = ml_collections.ConfigDict()
    c.eval.good_threshold = 5.0  # a photo is good when its score is above this

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


# The key of a check's reason for when the command line set several of its fields.
SEVERAL = "*"


def _checker(config: ml_collections.ConfigDict, given: dict[str, str]):
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


def _numbers(values) -> bool:
    """Whether `values` is a tuple or list of real numbers (not bools, not strings)."""
    return isinstance(values, tuple | list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )


def validate(config: ml_collections.ConfigDict, given: dict[str, str] | None = None) -> None:
    """Raise errors.ConfigError (a ValueError) naming the first field with a value the run
    cannot use, with the values it can take.

    `given`: the fields the command line set (`overrides.given_on_command_line`, the default):
    a check that relates two fields names the one the user set first.
    """
    given = overrides.given_on_command_line() if given is None else given
    check = _checker(config, given)
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
    for warning in ignored_data_fields(config, given):
        logging.warning("%s", warning)
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
        _numbers(data.score_range)
        and len(data.score_range) == 2
        and all(isinstance(s, int) for s in data.score_range)
        and data.score_range[0] <= data.score_range[1],
        "data.score_range",
        "must be two integers, the lowest first: (lowest, highest), e.g. '(1,10)'",
    )
    check(
        _numbers(data.ava_bins)
        and all(a < b for a, b in zip(data.ava_bins[:-1], data.ava_bins[1:], strict=True))
        and all(1 < e <= 10 for e in data.ava_bins),
        "data.ava_bins",
        "must be increasing edges on the mean vote, within (1, 10], e.g. '(5.0,)' or () for "
        "the rounded mean vote",
    )
    check(config.protocol.folds >= 1, "protocol.folds", "must be >= 1 (1 = a single split)")
    check(0 < config.protocol.val_fraction < 1, "protocol.val_fraction", "must be in (0, 1)")
    check(0 < config.protocol.test_fraction < 1, "protocol.test_fraction", "must be in (0, 1)")
    check(config.protocol.max_folds >= 0, "protocol.max_folds", "must be >= 0 (0 = all folds)")
    _check_model(config, check)
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
    _check_rsrl(config, check)
    check(
        train.epoch_samples in sampling.EPOCH_SAMPLES,
        "train.epoch_samples",
        f"must be one of {sampling.EPOCH_SAMPLES}",
    )
    method = config.method
    check(
        method.selection in selection.SELECTIONS,
        "method.selection",
        f"must be one of {selection.SELECTIONS}",
    )
    check(
        method.random_drop_rule in selection.RANDOM_DROP_RULES,
        "method.random_drop_rule",
        f"must be one of {selection.RANDOM_DROP_RULES}",
    )
    check(method.cl_folds >= 2, "method.cl_folds", "must be >= 2 (copies held out of a part each)")
    check(method.cl_epochs >= 1, "method.cl_epochs", "must be >= 1")
    check(
        method.cl_filter_by in confident_learning.FILTERS,
        "method.cl_filter_by",
        f"must be one of {confident_learning.FILTERS}",
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


def _check_rsrl(config: ml_collections.ConfigDict, check) -> None:
    """rsrl.*: one threshold K in (0, 1] per majority class."""
    rsrl = config.rsrl
    check(rsrl.rounds >= 1, "rsrl.rounds", "must be >= 1")
    check(rsrl.num_majority >= 0, "rsrl.num_majority", "must be >= 0 (0 = no class is thinned)")
    most, why_most = max_classes(config)
    classes = (
        f"{why_most} at most {most} classes"
        if why_most.endswith(("allows", "makes"))
        else f"{why_most}: at most {most} classes"
    )
    range_fix = f"0 to {most - 1}: RSRL thins the num_majority largest classes and keeps a class"
    data_fields = ("data.name", "data.score_range", "data.ava_bins")
    check(
        rsrl.num_majority < most,
        # Its own range: blamed itself when the command line set it, else the data's fields.
        "rsrl.num_majority"
        if "rsrl.num_majority" in check.given
        else ("rsrl.num_majority",) + tuple(f for f in data_fields if f in check.given)[:1],
        {
            "rsrl.num_majority": f"must be {range_fix} ({classes})",
            **dict.fromkeys(
                data_fields,
                f"{classes}, not more than rsrl.num_majority={rsrl.num_majority}: set "
                f"--config.rsrl.num_majority={most - 1} or less",
            ),
        },
    )
    n, ks = rsrl.num_majority, rsrl.thresholds
    check(
        _numbers(ks) and all(0 < k <= 1 for k in ks),
        "rsrl.thresholds",
        f"must be numbers K in (0, 1], one per majority class, e.g. "
        f"'({','.join(['0.99'] * (n if 1 < n <= 8 else 3))})'",
    )
    example = n if n <= 8 else len(ks) + 1
    both = (
        f"--config.rsrl.num_majority={example} "
        f"--config.rsrl.thresholds='({','.join([str(ks[-1] if ks else 0.99)] * example)}"
        f"{',' if example == 1 else ''})'"
    )
    check(
        len(ks) >= n,
        ("rsrl.thresholds", "rsrl.num_majority"),
        {
            "rsrl.thresholds": f"has {len(ks)} value(s), but rsrl.num_majority={n} needs one K "
            f"in (0, 1] per majority class: give {n}, or set --config.rsrl.num_majority="
            f"{len(ks)} or less",
            "rsrl.num_majority": f"must be at most {len(ks)} (0 to {len(ks)}; also below the "
            f"data's number of classes): rsrl.thresholds has {len(ks)} value(s), one K per "
            f"majority class; to thin more classes set both, e.g. {both}",
            SEVERAL: f"rsrl.num_majority={n} majority classes need one K in (0, 1] each, and "
            f"rsrl.thresholds has {len(ks)}: give {n} thresholds, or set "
            f"--config.rsrl.num_majority={len(ks)} or less",
        },
    )
    check(rsrl.likelihood in LIKELIHOODS, "rsrl.likelihood", f"must be one of {LIKELIHOODS}")
    check(rsrl.min_keep_per_class >= 0, "rsrl.min_keep_per_class", "must be >= 0")
    check(
        0 <= rsrl.drop_quantile < 1,
        "rsrl.drop_quantile",
        "must be in [0, 1): 0 = the paper's absolute K, q drops about a share q of each "
        "majority class",
    )


PHOTO_MODELS = {"alexnet": "AlexNet", "resnet50": "ResNet-50"}  # model.name -> its name


def _check_model(config: ml_collections.ConfigDict, check) -> None:
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


# The data fields that decide how many classes the data have (validate_with_data).
CLASS_FIELDS = ("data.name", "data.dir", "data.ava_bins", "data.score_range", "data.num_examples")


def validate_with_data(
    config: ml_collections.ConfigDict, class_scores, counts, given: dict[str, str] | None = None
) -> None:
    """Raise errors.ConfigError naming the first field whose value does not fit the data's
    classes: `class_scores` [C] (the scores present, sorted) and `counts` [C] (photos each).

    The checks `validate` cannot make before the data are read. RSRL thins the
    `rsrl.num_majority` largest classes and keeps the rest, so it needs more classes than that.
    An `eval.good_threshold` that puts every score on one side is logged as a warning.
    `given` as `validate`'s: a data field the command line set leads the message.
    """
    given = overrides.given_on_command_line() if given is None else given
    num_classes = len(class_scores)
    n = config.rsrl.num_majority
    photos = dict(zip(class_scores, (int(c) for c in counts), strict=True))
    classes = f"{num_classes} classes (scores {tuple(class_scores)}, photos {photos})"
    fix = f"set --config.rsrl.num_majority={num_classes - 1} or less (0 to {num_classes - 1})"
    data_reason = (
        f"the data have {classes}, but RSRL needs more classes than rsrl.num_majority={n}, "
        f"the majority classes it thins: {fix}"
    )
    _checker(config, given)(
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


def validate_pretext(
    config: ml_collections.ConfigDict, given: dict[str, str] | None = None
) -> None:
    """Raise errors.ConfigError naming the first field of a `configs/pretext.py` config
    (`python -m rsrl_jax.pretrain`) with a value pretraining cannot use; `given` as
    `validate`'s."""
    given = overrides.given_on_command_line() if given is None else given
    check = _checker(config, given)
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


def ignored_data_fields(
    config: ml_collections.ConfigDict, given: dict[str, str] | None = None
) -> list[str]:
    """One line for each data.* field set (unlike base_config()) that data.name does not read.

    A config may set them for another data set (e.g. xiheaa.py's score_range, run with
    --config.data.name=ava), so they are told, not refused. A line leads with data.name when
    the command line set it and not the field (`given`, as `validate`'s).
    """
    given = {} if given is None else given
    default, name = base_config().data, config.data.name
    lines = []
    for field, readers in DATA_SET_FIELDS.items():
        value = config.data[field]
        if name in readers or _comparable(value) == _comparable(default[field]):
            continue
        only = " or ".join(repr(r) for r in readers)
        this = overrides.named(config, f"data.{field}", given)
        if overrides.lead((f"data.{field}", "data.name"), given) == "data.name":
            lines.append(
                f"{overrides.named(config, 'data.name', given)} ignores config.data.{field}="
                f"{value!r}: only data.name={only} reads it"
            )
        else:
            lines.append(
                f"{this} is ignored: only data.name={only} reads it, and this run has "
                f"data.name={name!r}"
            )
    return lines


def _comparable(value):
    return list(value) if isinstance(value, tuple | list) else value
