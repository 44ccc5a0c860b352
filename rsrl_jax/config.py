"""The base config every experiment config starts from, and its validation.

Configs under `configs/` call `base_config()` and override fields; each field's meaning is in
its comment below and in docs/configs.md (generated from them), the choices the paper leaves open in
ARCHITECTURE.md ("Design facts"). `validate` runs before any work so a bad value fails in
seconds with a message naming the field; `validate_with_data` checks, once the data are
read, the fields whose valid values depend on the data's classes. The checks themselves are
in config_data_checks (the data, and the config against the data's classes), config_checks
(protocol, train, the run, pretraining's config), config_model_checks and
config_method_checks, one function per section of the config. (Over 300 lines because
`base_config` is every field with the comment that docs/configs.md is generated from.)
"""

import ml_collections
import numpy as np
from absl import logging

from rsrl_jax import (
    config_checks,
    config_data_checks,
    config_method_checks,
    config_model_checks,
    errors,
    overrides,
)
from rsrl_jax.config_data_checks import GENERATED
from rsrl_jax.data import inputs

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
    # expected score (rsrl_jax.metrics.aesthetic).
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


def validate(config: ml_collections.ConfigDict, given: dict[str, str] | None = None) -> None:
    """Raise errors.ConfigError (a ValueError) naming the first field with a value the run
    cannot use, with the values it can take.

    `given`: the fields the command line set (`overrides.given_on_command_line`, the default):
    a check that relates two fields names the one the user set first.
    """
    given = overrides.given_on_command_line() if given is None else given
    check = config_checks.checker(config, given)
    config_data_checks.check_source(config, check)
    for warning in ignored_data_fields(config, given):
        logging.warning("%s", warning)
    config_data_checks.check_data(config, check)
    config_checks.check_protocol(config, check)
    config_model_checks.check_model(config, check)
    config_checks.check_train(config, check)
    config_method_checks.check_rsrl(config, check)
    config_method_checks.check_method(config, check)
    config_checks.check_run(config, check)
    config_data_checks.check_data_folder(config, check)


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
    check = config_checks.checker(config, given)
    config_data_checks.check_data_classes(config, class_scores, counts, check)


def check_classes(data, config: ml_collections.ConfigDict) -> None:
    """Refuses data (a `data.dataset.Dataset`) that the run cannot train on: one class
    (errors.DataError), or a config that does not fit the data's classes (`validate_with_data`:
    ConfigError). Here, above the data, since it asks the config's checks.

    A classifier needs at least 2 scores.
    """
    counts = np.bincount(data.labels, minlength=data.num_classes)
    if data.num_classes < 2:
        where = f" in {config.data.dir}" if config.data.dir else ""
        only = f"score {data.class_scores[0]}, all {len(data)} photos" if len(data) else "none"
        raise errors.DataError(
            f"{config.data.name} data{where} hold one class ({only}): a classifier needs "
            "photos of at least 2 scores; check the scores in the list, and data.score_range "
            "or data.ava_bins"
        )
    validate_with_data(config, data.class_scores, counts)


def validate_pretext(
    config: ml_collections.ConfigDict, given: dict[str, str] | None = None
) -> None:
    """Raise errors.ConfigError naming the first field of a `configs/pretext.py` config
    (`python -m rsrl_jax.pretrain`) with a value pretraining cannot use; `given` as
    `validate`'s."""
    given = overrides.given_on_command_line() if given is None else given
    config_checks.check_pretext(config, config_checks.checker(config, given))


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
