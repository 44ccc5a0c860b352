"""The base config every experiment config starts from, and its validation.

Configs under `configs/` call `base_config()` and override fields; see DESIGN.md for the
fields' meaning. `validate` runs before any work so a bad value fails in seconds with a
message naming the field.
"""

import ml_collections

DATA_SETS = ("synthetic",)
LIKELIHOODS = ("sigmoid", "softmax")


def base_config() -> ml_collections.ConfigDict:
    """The paper's method with torchvision-sized AlexNet on 224px input."""
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.name = "synthetic"
    c.data.dir = ""
    c.data.num_examples = 3100  # synthetic only
    c.data.label_noise = 0.1  # synthetic only: rater noise, in std of the latent quality
    c.data.image_size = 224
    c.data.on_bad_example = "error"

    c.protocol = ml_collections.ConfigDict()
    c.protocol.folds = 5  # k of stratified k-fold; 1 = a single stratified split
    c.protocol.test_fraction = 0.2  # only when folds == 1
    c.protocol.val_fraction = 0.1  # validation share inside each training fold
    c.protocol.max_folds = 0  # run only the first n folds (0 = all), e.g. for a quick look

    c.model = ml_collections.ConfigDict()
    c.model.pretrained = ""  # converted ImageNet weights, or '' to train from scratch
    c.model.width = 1.0  # conv channel multiplier (1.0 = torchvision)
    c.model.fc_dim = 4096
    c.model.dropout_rate = 0.5

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

    c.rsrl = ml_collections.ConfigDict()
    c.rsrl.rounds = 12
    c.rsrl.num_majority = 3
    c.rsrl.thresholds = (0.99, 0.99, 0.99)  # K1, K2, K3
    c.rsrl.likelihood = "sigmoid"  # the paper's sigmoidal fuzzy membership of fc

    c.log = ml_collections.ConfigDict()
    c.log.progress = True  # per-epoch lines; False = one line per round
    return c


def validate(config: ml_collections.ConfigDict) -> None:
    """Raise ValueError naming the first field with a value the run cannot use."""

    def check(ok: bool, field: str, why: str):
        if not ok:
            raise ValueError(f"config.{field}={config_value(config, field)!r}: {why}")

    check(config.data.name in DATA_SETS, "data.name", f"must be one of {DATA_SETS}")
    check(
        config.data.on_bad_example in ("error", "skip"),
        "data.on_bad_example",
        "must be 'error' or 'skip'",
    )
    check(config.data.image_size >= 63, "data.image_size", "AlexNet needs at least 63 pixels")
    check(config.data.num_examples >= 1, "data.num_examples", "must be positive")
    check(config.protocol.folds >= 1, "protocol.folds", "must be >= 1")
    check(0 < config.protocol.val_fraction < 1, "protocol.val_fraction", "must be in (0, 1)")
    check(0 < config.protocol.test_fraction < 1, "protocol.test_fraction", "must be in (0, 1)")
    check(config.model.width > 0, "model.width", "must be positive")
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


def config_value(config, field: str):
    value = config
    for part in field.split("."):
        value = value[part]
    return value
