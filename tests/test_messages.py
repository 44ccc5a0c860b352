"""Messages name what the user set; --help lists the config's fields; `python -m rsrl_jax`
lists the commands.

A check that relates two fields leads with the one given on the command line
(`--config.a.b=v`), with the values it can take; a library caller (no command line) gets the
check's own field. The checks run in-process with `given` as the command line would pass it;
one real command proves the command line reaches them.
"""

import pathlib
import re
import subprocess
import sys

import pytest
from test_cli_errors import error_lines, run_together

from conftest import tiny_config
from rsrl_jax import config as config_lib
from rsrl_jax import config_help
from rsrl_jax.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parent.parent


def demo(overrides: dict):
    from configs import demo

    config = demo.get_config()
    config.update_from_flattened_dict(overrides)
    return config


def refusal(check, config, given_fields=(), *args) -> str:
    given = {f: f"--config.{f}" for f in given_fields}
    with pytest.raises(ConfigError) as raised:
        check(config, *args, given=given)
    return str(raised.value)


def test_the_issues_example_names_num_majority_first_with_its_allowed_values():
    message = refusal(config_lib.validate, demo({"rsrl.num_majority": 5}), ["rsrl.num_majority"])
    assert message.startswith("--config.rsrl.num_majority=5: must be at most 3 (0 to 3; ")
    assert "rsrl.thresholds has 3 value(s)" in message
    assert (
        "set both, e.g. --config.rsrl.num_majority=5 "
        "--config.rsrl.thresholds='(0.99,0.99,0.99,0.99,0.99)'" in message
    )


def test_a_value_outside_its_own_range_is_blamed_before_any_relation():
    """num_majority=99 cannot fit data of 8 classes: not a disagreement with thresholds, and
    no advice to give 99 thresholds."""
    config = demo({"rsrl.num_majority": 99, "rsrl.thresholds": (0.5, 0.5, 0.5)})
    for given in (["rsrl.thresholds", "rsrl.num_majority"], ["rsrl.num_majority"]):
        message = refusal(config_lib.validate, config, given)
        assert message == (
            "--config.rsrl.num_majority=99: must be 0 to 7: RSRL thins the num_majority "
            "largest classes and keeps a class (the synthetic photos score 2..9: at most 8 "
            "classes)"
        )
    folder = {"data.name": "folder", "data.dir": "/tmp", "data.score_range": (1, 5)}
    message = refusal(config_lib.validate, demo({**folder, "rsrl.num_majority": 5}))
    assert message.startswith("config.rsrl.num_majority=5: must be 0 to 4")
    assert "data.score_range=(1, 5) allows at most 5 classes" in message
    message = refusal(
        config_lib.validate, demo({**folder, "rsrl.num_majority": 5}), ["data.score_range"]
    )
    assert message.startswith("--config.data.score_range=(1, 5): ")
    assert "set --config.rsrl.num_majority=4 or less" in message
    ava = {"data.name": "ava", "data.dir": "/tmp", "data.ava_bins": (5.0,)}
    message = refusal(config_lib.validate, demo(ava), ["data.ava_bins"])
    assert "at most 2 classes" in message and "num_majority=1 or less" in message


EMBEDDINGS = {"data.name": "embeddings", "data.dir": "/tmp", "model.pretrained": ""}
MLP_WITHOUT_LAYERS = {**EMBEDDINGS, "model.name": "mlp", "model.hidden_widths": ()}
# (the config's fields, the field given on the command line, what the message must also say)
CROSS_FIELD = [
    ({"data.dir": "/tmp"}, "data.dir", "add --config.data.name=folder"),
    ({"data.dir": "/tmp"}, "data.name", "or --config.data.dir='' for the synthetic photos"),
    ({"data.name": "folder"}, "data.name", "add --config.data.dir=FOLDER"),
    ({"data.name": "folder"}, "data.dir", "set --config.data.dir=FOLDER"),
    ({"data.image_size": 40}, "data.image_size", "AlexNet needs at least 63 pixels"),
    ({"data.image_size": 40}, "model.name", "set --config.data.image_size=63 or more"),
    ({"data.stored_size": 50}, "data.stored_size", "at least data.image_size=64"),
    ({"data.stored_size": 50}, "data.image_size", "set --config.data.stored_size=0"),
    ({"model.name": "mlp"}, "model.name", "set --config.model.name=alexnet"),
    ({"model.name": "mlp"}, "data.name", "feeds photos, but model.name='mlp'"),
    (MLP_WITHOUT_LAYERS, "model.hidden_widths", "one or more positive integer widths"),
    (MLP_WITHOUT_LAYERS, "model.name", "set e.g. --config.model.hidden_widths='(512,)'"),
    ({"data.name": "embeddings", "data.dir": "/tmp"}, "data.name", "set --config.model.name=mlp"),
    ({"data.name": "embeddings", "data.dir": "/tmp"}, "model.name", "set --config.model.name=mlp"),
    (
        {"data.name": "embeddings", "data.dir": "/tmp", "model.name": "mlp"},
        "model.pretrained",
        "set --config.model.pretrained=''",
    ),
    (
        {"data.name": "embeddings", "data.dir": "/tmp", "model.name": "mlp"},
        "data.name",
        "set --config.model.pretrained=''",
    ),
    ({"model.width": 1.0}, "model.width", "these weights are for --config.model.width=0.5"),
    ({"model.fc_dim": 4096}, "model.fc_dim", "--config.model.fc_dim=512"),
    ({"model.width": 1.0}, "model.pretrained", "these weights are for --config.model.width=0.5"),
    ({"rsrl.num_majority": 5}, "rsrl.num_majority", "must be at most 3 (0 to 3"),
    ({"rsrl.thresholds": (0.9,)}, "rsrl.thresholds", "--config.rsrl.num_majority=1 or less"),
    ({"rsrl.thresholds": (0.9,)}, "rsrl.num_majority", "must be at most 1 (0 to 1"),
    ({"rsrl.thresholds": ("(0.99,)*4",)}, "rsrl.thresholds", "must be numbers K in (0, 1]"),
]


@pytest.mark.parametrize(("fields", "given", "says"), CROSS_FIELD)
def test_a_cross_field_check_leads_with_the_field_given(fields, given, says):
    config = demo(fields)
    message = refusal(config_lib.validate, config, [given])
    assert message.startswith(f"--config.{given}={config[given]!r}: "), message
    assert says in message
    # Without a command line, the check's own field leads, named as the config's.
    assert refusal(config_lib.validate, config).startswith("config.")


# (the config's fields, the fields a check relates, all given, what the message must say)
BOTH_GIVEN = [
    ({"data.dir": "/tmp"}, ["data.dir", "data.name"], "or leave data.dir out"),
    ({"data.name": "folder"}, ["data.dir", "data.name"], "set --config.data.dir=FOLDER"),
    (
        {"data.image_size": 40},
        ["data.image_size", "model.name"],
        "set --config.data.image_size=63 or more, or --config.model.name=resnet50",
    ),
    (
        {"data.stored_size": 50},
        ["data.stored_size", "data.image_size"],
        "set --config.data.stored_size=0 or 64 or more",
    ),
    (
        {"data.filename_column": "score"},
        ["data.filename_column", "data.score_column"],
        "name one column",
    ),
    ({"model.name": "mlp"}, ["model.name", "data.name"], "set --config.model.name=alexnet"),
    (MLP_WITHOUT_LAYERS, ["model.hidden_widths", "model.name"], "hidden_widths='(512,)'"),
    (
        {"data.name": "embeddings", "data.dir": "/tmp"},
        ["model.name", "data.name"],
        "set --config.model.name=mlp",
    ),
    (
        {"data.name": "embeddings", "data.dir": "/tmp", "model.name": "mlp"},
        ["model.pretrained", "data.name"],
        "set --config.model.pretrained=''",
    ),
    ({"model.width": 1.0}, ["model.width", "model.pretrained"], "--config.model.width=0.5"),
    (
        {"rsrl.num_majority": 5, "rsrl.thresholds": (0.9, 0.9)},
        ["rsrl.thresholds", "rsrl.num_majority"],
        "give 5 thresholds, or set --config.rsrl.num_majority=2 or less",
    ),
]


@pytest.mark.parametrize(("fields", "given", "says"), BOTH_GIVEN)
def test_a_check_of_several_fields_given_names_them_all(fields, given, says):
    config = demo(fields)
    for order in (given, given[::-1]):  # whichever was written first
        message = refusal(config_lib.validate, config, order)
        names = " and ".join(f"--config.{f}={config[f]!r}" for f in sorted(given))
        assert message.startswith(f"{names} disagree: "), message
        assert says in message, message


def test_the_issues_two_fields_example():
    config = demo({"rsrl.num_majority": 4, "rsrl.thresholds": (0.5, 0.5, 0.5)})
    message = refusal(config_lib.validate, config, ["rsrl.thresholds", "rsrl.num_majority"])
    assert message == (
        "--config.rsrl.num_majority=4 and --config.rsrl.thresholds=(0.5, 0.5, 0.5) disagree: "
        "rsrl.num_majority=4 majority classes need one K in (0, 1] each, and rsrl.thresholds "
        "has 3: give 4 thresholds, or set --config.rsrl.num_majority=3 or less"
    )


def test_the_data_checks_lead_with_the_data_field_given():
    config = tiny_config()
    scores, counts = (0, 1), (30, 30)
    check = config_lib.validate_with_data
    message = refusal(check, config, ["rsrl.num_majority"], scores, counts)
    assert message.startswith("--config.rsrl.num_majority=3: must be below the number of classes")
    assert "set --config.rsrl.num_majority=1 or less (0 to 1)" in message
    config.data.ava_bins = (5.0,)
    message = refusal(check, config, ["data.ava_bins"], scores, counts)
    assert message.startswith("--config.data.ava_bins=(5.0,): the data have 2 classes")
    assert "rsrl.num_majority=3" in message and "(0 to 1)" in message
    # A data field only the config file sets is the data set: num_majority leads.
    assert refusal(check, config, (), scores, counts).startswith("config.rsrl.num_majority=3:")
    both = refusal(check, config, ["data.ava_bins", "rsrl.num_majority"], scores, counts)
    assert both.startswith(
        "--config.data.ava_bins=(5.0,) and --config.rsrl.num_majority=3 disagree: the data have 2"
    )
    assert "set --config.rsrl.num_majority=1 or less (0 to 1), or data with more" in both


def test_the_pretext_check_leads_with_the_field_given():
    from configs import pretext

    config = pretext.get_config()
    config.train.batch_size = 30000
    message = refusal(config_lib.validate_pretext, config, ["train.batch_size"])
    assert message.startswith("--config.train.batch_size=30000: must be at most pretext.num_tr")
    assert "1 to 24000" in message
    message = refusal(config_lib.validate_pretext, config, ["pretext.num_train"])
    assert message.startswith("--config.pretext.num_train=24000: must be at least one batch")
    message = refusal(
        config_lib.validate_pretext, config, ["pretext.num_train", "train.batch_size"]
    )
    assert message.startswith(
        "--config.pretext.num_train=24000 and --config.train.batch_size=30000 disagree: "
    )
    assert "num_train=30000 or more, or --config.train.batch_size=24000 or less" in message
    config.pretext.num_train = 0  # its own range first: never "batch_size=0 or less"
    message = refusal(
        config_lib.validate_pretext, config, ["pretext.num_train", "train.batch_size"]
    )
    assert message == "--config.pretext.num_train=0: must be >= 1"


def test_a_single_field_check_states_the_values_it_takes():
    for field, value, says in [
        ("protocol.max_folds", -1, "must be >= 0 (0 = all folds)"),
        ("train.momentum", 1.0, "must be in [0, 1)"),
        ("seed", -1, "must be an integer >= 0"),
        ("data.ava_bins", ("5",), "within (1, 10]"),
    ]:
        message = refusal(config_lib.validate, tiny_config({field: repr(value)}), [field])
        assert message.startswith(f"--config.{field}={value!r}: ") and says in message


def test_an_ignored_data_field_names_the_data_name_given():
    config = demo({"data.name": "ava", "data.dir": "/tmp", "data.score_range": (0, 4)})
    (line,) = config_lib.ignored_data_fields(config, {"data.name": "--config.data.name"})
    assert line.startswith("--config.data.name='ava' ignores config.data.score_range=(0, 4): ")
    (line,) = config_lib.ignored_data_fields(config)
    assert line.startswith("config.data.score_range=(0, 4) is ignored: ")


def every_config_file():
    return [None, *sorted(str(p) for p in (ROOT / "configs").glob("*.py"))]


@pytest.mark.parametrize("file", every_config_file())
def test_every_config_field_has_a_meaning(file):
    config = config_lib.base_config() if file is None else config_help.load(file)
    meanings = config_help.meanings(file)
    fields = config_lib.flatten(config.to_dict())
    assert [f for f in fields if not meanings.get(f)] == []
    text = config_help.listing(file, default=True)
    assert "(undocumented)" not in text
    for field in fields:
        assert f"    {field} = " in text
        # One meaning, told once: no data set's label ('folder:') or sentence twice.
        meaning = meanings[field]
        labels = re.findall(r"(?:^|\s)(\w+): ", meaning)
        assert len(labels) == len(set(labels)), (field, meaning)
        sentences = [t.strip() for t in re.split(r"[.;]\s", meaning) if t.strip()]
        assert len(sentences) == len(set(sentences)), (field, meaning)
    base = config_help.meanings(None)
    assert base["data.filename_column"].startswith("folder: the header of scores.csv's column")
    assert base["data.filename_column"].count("folder:") == 1
    assert base["data.score_column"].count("folder:") == 1


def test_a_block_comment_above_is_not_joined_to_a_fields_own_comment(tmp_path):
    """A block comment may speak of several fields: the comment beside a field is its own."""
    source = tmp_path / "c.py"
    source.write_text(
        "def get_config(c):\n"
        "    # folder: the columns of scores.csv, by header name\n"
        "    c.data.a = 'filename'  # folder: the photos' column\n"
        "    c.data.b = 'score'  # folder: the scores' column\n"
        "    # the lines above a field without its own comment\n"
        "    c.data.c = 1\n"
    )
    assert config_help.comments(str(source)) == {
        "data.a": "folder: the photos' column",
        "data.b": "folder: the scores' column",
        "data.c": "the lines above a field without its own comment",
    }


def test_the_listing_gives_each_default_and_meaning():
    text = config_help.listing(config_help.find("configs/demo.py"), default=True)
    assert text.startswith("Config fields (configs/demo.py; another with --config=FILE)")
    lines = text.splitlines()
    at = lines.index("    rsrl.thresholds = (0.99, 0.99, 0.99)")
    assert "one per majority class, in (0, 1]" in lines[at + 1]
    at = lines.index("    rsrl.rounds = 6")  # demo.py's value, the base's meaning
    assert "training rounds" in lines[at + 1]
    at = lines.index("    model.dropout_rate = 0.5")  # the base's meaning and demo.py's comment
    assert "dropout" in lines[at + 1] and "(demo.py: torchvision's" in lines[at + 1]


def command_modules() -> set[str]:
    """Every `python -m rsrl_jax.X`: a module of the package that, run as a program, runs its
    main through `commands.run`."""
    found = set()
    for path in (ROOT / "rsrl_jax").rglob("*.py"):
        source = path.read_text()
        main = source.split('\nif __name__ == "__main__":\n', 1)
        if len(main) == 2 and re.search(r"commands\.run\(main\b", main[1]):
            found.add(path.relative_to(ROOT / "rsrl_jax").with_suffix("").as_posix())
    return {name.replace("/", ".") for name in found}


def test_help_exits_0_with_the_fields_and_the_package_lists_its_commands(tmp_path):
    results = run_together(
        {
            "main": ["rsrl_jax.main", "--help"],
            "compare": ["rsrl_jax.compare", "--config=configs/embeddings.py", "--helpfull"],
            "pretrain": ["rsrl_jax.pretrain", "-?"],
            "report": ["rsrl_jax.report", "--help"],
            "bad": [
                "rsrl_jax.main",
                "--config=configs/demo.py",
                f"--workdir={tmp_path / 'run'}",
                "--config.rsrl.thresholds=(0.5,0.5,0.5)",
                "--config.rsrl.num_majority=5",
            ],
            "package": ["rsrl_jax"],
        }
    )
    for name in ("main", "compare", "pretrain", "report", "package"):
        assert results[name].returncode == 0, (name, results[name].stderr[-3000:])
    main = results["main"].stdout
    assert "--workdir" in main and "Config fields (configs/demo.py; " in main
    assert "    rsrl.thresholds = (0.99, 0.99, 0.99)\n        K1, K2, ...: one per" in main
    compare = results["compare"].stdout
    assert "Config fields (configs/embeddings.py)" in compare and "model.name = 'mlp'" in compare
    assert "absl.logging" in compare  # --helpfull: every module's flags
    assert "pretext.num_train = 24000" in results["pretrain"].stdout
    assert (
        "--workdir" in results["report"].stdout and "Config fields" not in results["report"].stdout
    )
    bad = results["bad"]
    assert bad.returncode == 2 and not (tmp_path / "run").exists()
    (line,) = error_lines(bad.stderr)
    assert line.startswith(
        "error: --config.rsrl.num_majority=5 and --config.rsrl.thresholds=(0.5, 0.5, 0.5) "
        "disagree: "
    )
    listed = dict(
        re.match(r"  (\S+) +(.+)", line).groups()
        for line in results["package"].stdout.splitlines()
        if line.startswith("  ")
    )
    assert set(listed) == command_modules() and "main" in listed
    assert all(len(text) > 10 for text in listed.values())


def test_the_package_refuses_an_argument_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "rsrl_jax", "main"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: 'main': run a command as python -m rsrl_jax.COMMAND (python -m rsrl_jax lists "
        "them)\n"
    )
