"""Lanes: runs trained as lanes of one program give the records of the same runs one by one
(every method of compare, other seeds, other labels, other epochs in the same group); lanes
that train alike train once; a group killed mid-round resumes to the same records."""

import dataclasses
import importlib.util
import json
import os
import pathlib
import shutil
import textwrap

import jax
import numpy as np
import pytest
from test_embeddings_run import CONFIG, overrides, vectors
from test_fold_parallel import Killed, kill_at

from conftest import assert_records_match, read_records, run_on_cpu_devices
from rsrl_jax import errors, workdir_files
from rsrl_jax.analysis import report
from rsrl_jax.data import datasets, embeddings
from rsrl_jax.engine import evaluation, lane_groups, rounds, rsrl
from rsrl_jax.experiments import compare, study
from rsrl_jax.run import checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every method of compare, RSRL also with its quantile rule.
METHODS = {name: name for name in compare.PARTS}
METHODS["rsrl_quantile"] = "rsrl"


def key(record):
    return record["fold"], record["round"]


def base_config(emb_dir):
    spec = importlib.util.spec_from_file_location("embeddings_config", CONFIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    fields = {
        k: eval(v) if isinstance(v, str) and v[:1] in "([" else v
        for k, v in overrides(emb_dir).items()
    }
    # One fold of each run (folds as lanes: test_fold_parallel): each run's lane is fold 0.
    fields.update({"data.dir": str(emb_dir), "log.progress": False, "protocol.max_folds": 1})
    config.update_from_flattened_dict(fields)
    return config


def runs_of(config, root) -> list:
    """(config, workdir) of every method, plus rsrl with another seed, plain with other
    epochs, and plain on other labels (the same vectors: `data` of its own)."""
    out = []
    for name, method in METHODS.items():
        c = compare.method_config(config, method, equal_steps=True)
        if name == "rsrl_quantile":
            c.rsrl.drop_quantile = 0.3
        out.append((c, str(root / name)))
    c = compare.method_config(config, "rsrl", equal_steps=True)
    c.seed = 1
    out.append((c, str(root / "rsrl_seed1")))
    c = compare.method_config(config, "plain", equal_steps=False)
    c.train.epochs_per_round = 2
    out.append((c, str(root / "plain_short")))
    c = compare.method_config(config, "plain", equal_steps=True)
    out.append((c, str(root / "plain_relabelled")))
    return out


def relabelled(config):
    """The data set of `config` with a fifth of its labels moved to the next class."""
    data = datasets.load(config)
    labels = data.labels.copy()
    moved = np.arange(len(labels)) % 5 == 0
    labels[moved] = (labels[moved] + 1) % data.num_classes
    return dataclasses.replace(data, labels=labels)


def params_of(workdir, fold, round_):
    mngr = checkpoints.manager(str(workdir), fold, read_only=True)
    return jax.tree.leaves(checkpoints.restore_round(mngr, round_)[0])


@pytest.fixture(scope="module", autouse=True)
def no_reports():
    """Runs without their report.md (its figures take 2/3 of these runs' time; the report
    of a run, single or a lane, is tested elsewhere)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report, "write_report", lambda workdir, records: None)
        yield


@pytest.fixture(scope="module")
def emb_config(tmp_path_factory):
    root = tmp_path_factory.mktemp("lanes_data")
    x, scores = vectors(200, seed=0)
    embeddings.write(str(root / "emb"), x, [f"photo_{i}.jpg" for i in range(len(x))], scores)
    return base_config(root / "emb")


def counted(monkeypatch):
    """Counts the lanes each round trains and the forward passes made."""
    trained, passes = [], []
    train_round, logits = rounds.train_round, evaluation.logits

    def count_train(exp, step, folds, label, round_, *args, **kw):
        trained.append((round_, len(folds)))
        return train_round(exp, step, folds, label, round_, *args, **kw)

    def count_logits(*args, **kw):
        passes.append(1)
        return logits(*args, **kw)

    monkeypatch.setattr(rounds, "train_round", count_train)
    monkeypatch.setattr(evaluation, "logits", count_logits)
    return trained, passes


@pytest.fixture(scope="module")
def one_by_one(emb_config, tmp_path_factory):
    """Every run one lane at a time, nothing shared."""
    root = tmp_path_factory.mktemp("one_by_one")
    runs = runs_of(emb_config, root)
    data = [None] * (len(runs) - 1) + [relabelled(emb_config)]
    rsrl.run_lanes(runs, lanes=1, share=False, data=data)
    return runs


def test_one_lane_at_a_time_is_a_run_alone(one_by_one, tmp_path):
    config, alone = next((c, w) for c, w in one_by_one if w.endswith("/rsrl"))
    rsrl.run(config, str(tmp_path / "rsrl"))
    mine, theirs = read_records(tmp_path / "rsrl"), read_records(pathlib.Path(alone))
    assert len(mine) == 2
    for a, b in zip(mine, theirs, strict=True):
        assert_records_match(a, b)
        for x, y in zip(
            params_of(tmp_path / "rsrl", *key(a)), params_of(alone, *key(b)), strict=True
        ):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_every_method_as_a_lane_of_one_group_gives_its_records(
    emb_config, one_by_one, tmp_path, monkeypatch
):
    runs = runs_of(emb_config, tmp_path)
    data = [None] * (len(runs) - 1) + [relabelled(emb_config)]
    trained, passes = counted(monkeypatch)
    summaries = rsrl.run_lanes(runs, data=data)  # automatic: every lane in one group
    assert len(summaries) == len(runs)
    for (_, alone), (_, lane) in zip(one_by_one, runs, strict=True):
        mine = sorted(read_records(tmp_path / alone.rsplit("/", 1)[1]), key=key)
        theirs = sorted(read_records(pathlib.Path(alone)), key=key)
        assert [key(r) for r in mine] == [(0, 1), (0, 2)]
        for a, b in zip(mine, theirs, strict=True):
            assert_records_match(a, b)
            for x, y in zip(params_of(lane, *key(a)), params_of(alone, *key(b)), strict=True):
                np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)
    # Round 1: plain, rsrl (both rules), random_drop, hardness and plain_short train alike per
    # fold; the five other losses (emd among them), balanced sampling, the other seed and the
    # other labels do not.
    lanes = len(runs)
    first = dict(trained)[1]
    assert first == 1 + 6 + 1 + 1
    assert dict(trained)[2] == lanes  # after round 1 every lane's set differs
    assert len(passes) == 3 * (first + lanes)  # D, val and test once per network


def test_a_group_killed_mid_round_resumes_to_the_same_records(
    emb_config, one_by_one, tmp_path, monkeypatch
):
    picked = ("plain", "rsrl", "focal")
    runs = [(c, w) for c, w in runs_of(emb_config, tmp_path) if w.rsplit("/", 1)[1] in picked]
    for config, _ in runs:
        config.checkpoint.every_steps = 1
    kill_at(monkeypatch, "save_progress", at_round=2, nth=3)
    with pytest.raises(Killed):
        rsrl.run_lanes(runs)
    monkeypatch.undo()
    progress = list((tmp_path / "plain" / workdir_files.LANES_IN_PROGRESS).iterdir())
    assert len(progress) == 1  # the group's mid-round state, in its first lane's run
    kill_at(monkeypatch, "save_round", at_round=2, nth=2)  # a lane saved round 2, others not
    with pytest.raises(Killed):
        rsrl.run_lanes(runs)
    monkeypatch.undo()
    rsrl.run_lanes(runs)
    alone = {w.rsplit("/", 1)[1]: w for _, w in one_by_one}
    for name in picked:
        mine = sorted(read_records(tmp_path / name), key=key)
        theirs = sorted(read_records(pathlib.Path(alone[name])), key=key)
        for a, b in zip(mine, theirs, strict=True):
            assert_records_match(a, b)
    assert not (tmp_path / "plain" / workdir_files.LANES_IN_PROGRESS).exists()


def test_bad_lanes_and_one_workdir_twice_are_one_line(emb_config, tmp_path):
    for bad in (-1, 1.5, True):
        with pytest.raises(errors.ConfigError, match="--lanes: .* is not an integer >= 0"):
            rsrl.run_lanes([(emb_config, str(tmp_path / "a"))], lanes=bad)
    with pytest.raises(errors.ConfigError, match="two runs of one call write this workdir"):
        rsrl.run_lanes([(emb_config, str(tmp_path / "a")), (emb_config, str(tmp_path / "a"))])


# Two lanes on 2 (fake CPU) devices, one lane on each, in a subprocess (XLA fixes the device
# count when it starts): the records of the same runs one by one on one device.
TWO_DEVICES = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, "tests")  # before the repository root's own conftest
    import jax
    from test_lanes import base_config, runs_of
    from rsrl_jax.analysis import report
    from rsrl_jax.engine import rounds, rsrl

    assert jax.device_count() == 2, jax.devices()
    report.write_report = lambda workdir, records: None
    seen = []
    start_state = rounds.start_state

    def spy(exp, params):
        state = start_state(exp, params)
        leaf = jax.tree.leaves(state.params)[0]
        seen.append([dict(leaf.sharding.mesh.shape), len(leaf.addressable_shards[0].data)])
        return state

    rounds.start_state = spy
    import pathlib
    root = pathlib.Path(sys.argv[1])
    runs = runs_of(base_config(root / "emb"), root)
    runs = [r for r in runs if r[1].endswith(("/plain", "/focal"))]
    rsrl.run_lanes(runs, lanes=2)
    print(json.dumps(seen))
    """
)


def test_two_lanes_on_two_devices_give_the_records_of_one_device(emb_config, one_by_one, tmp_path):
    (tmp_path / "emb").symlink_to(emb_config.data.dir)
    result = run_on_cpu_devices(2, TWO_DEVICES, tmp_path)
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # Each round's state: lanes split over the two devices, one lane's network on each.
    assert seen == [[{"lane": 2, "data": 1}, 1]] * 2
    alone = {w.rsplit("/", 1)[1]: w for _, w in one_by_one}
    for name in ("plain", "focal"):
        mine = sorted(read_records(tmp_path / name), key=key)
        theirs = sorted(read_records(pathlib.Path(alone[name])), key=key)
        assert len(mine) == 2
        for a, b in zip(mine, theirs, strict=True):
            assert_records_match(a, b)


def close(a, b, where="") -> None:
    """Two JSON trees equal, their floats to float rounding."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            close(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, f"{where}/{i}")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6), where
    else:
        assert a == b, where


def test_a_study_one_lane_at_a_time_and_packed_gives_the_same_figures(
    emb_config, one_by_one, tmp_path
):
    grid = {"methods": ("plain", "rsrl"), "seeds": (0, 1)}
    # Three of its four runs are one_by_one's (the same configs, trained one at a time): the
    # study finds them finished; only plain with seed 1 trains here.
    alone = {w.rsplit("/", 1)[1]: w for _, w in one_by_one}
    noise = emb_config.data.label_noise
    for seed, method, name in (
        (0, "plain", "plain"),
        (0, "rsrl", "rsrl"),
        (1, "rsrl", "rsrl_seed1"),
    ):
        shutil.copytree(
            alone[name], tmp_path / "one" / workdir_files.study_run_dir(noise, seed, method)
        )
    one = study.study(emb_config, str(tmp_path / "one"), **grid, lanes=1)
    plain_seed1 = workdir_files.study_run_dir(noise, 1, "plain")
    assert len(read_records(tmp_path / "one" / plain_seed1)) == 2
    packed = study.study(emb_config, str(tmp_path / "packed"), **grid)  # automatic
    assert one["noise"].keys() == packed["noise"].keys()
    close(one["noise"], packed["noise"])
    (cells,) = packed["noise"].values()
    assert len(cells["rsrl"]["units"]) == 2 and cells["rsrl"]["diff"]["macro_f1"]["n"] == 2
    for run in ("seed_0/plain", "seed_1/rsrl"):  # each run's records where report finds them
        (noise_dir,) = (tmp_path / "packed").glob("noise_*")
        assert len(read_records(noise_dir / run)) == 2


def test_lanes_that_fit_divide_the_memory_budget_by_a_lanes_estimate(
    emb_config, tmp_path, monkeypatch
):
    exp = rsrl.Experiment.build(emb_config, str(tmp_path))
    params = sum(p.size * 4 for p in jax.tree.leaves(exp.abstract_params()))
    each = rsrl.lane_bytes(exp)
    assert each > 4 * params  # Adam: parameters, gradients, 2 moments, and activations
    wider = rsrl.Experiment.build(emb_config.copy_and_resolve_references(), str(tmp_path))
    wider.config.train.batch_size *= 2  # activations grow with the batch
    assert rsrl.lane_bytes(wider) - each == each - 4 * params
    monkeypatch.setattr(lane_groups, "last_level_cache", lambda: 100 * each)  # no CPU cap
    for budget, fit in ((10 * each + 1, 10), (each - 1, 1)):
        monkeypatch.setattr(lane_groups, "memory_budget", lambda budget=budget: budget)
        assert rsrl.lanes_that_fit(exp) == fit


def test_on_a_cpu_a_group_holds_what_fits_the_cache_never_less_than_a_runs_folds(
    emb_config, tmp_path, monkeypatch
):
    config = emb_config.copy_and_resolve_references()
    config.protocol.update({"folds": 5, "max_folds": 0})
    exp = rsrl.Experiment.build(config, str(tmp_path))
    each = rsrl.lane_bytes(exp)
    assert jax.devices()[0].platform == "cpu"
    monkeypatch.setattr(lane_groups, "memory_budget", lambda: 1000 * each)
    monkeypatch.setattr(lane_groups, "last_level_cache", lambda: 8 * each + 1)
    assert rsrl.lanes_that_fit(exp) == 8 * lane_groups.CACHE_MULTIPLE
    monkeypatch.setattr(lane_groups, "last_level_cache", lambda: each // 10)
    assert rsrl.lanes_that_fit(exp) == 5  # a run's folds, though they overflow the cache
    assert rsrl.lanes_that_fit(exp, least=6) == 6  # lanes that may train alike
    exp.config.protocol.max_folds = 2
    assert rsrl.lanes_that_fit(exp) == 2  # the folds the run trains
    monkeypatch.setattr(lane_groups, "memory_budget", lambda: 3 * each)
    assert rsrl.lanes_that_fit(exp, least=6) == 3  # memory first


def test_the_cpu_cap_divides_the_cache_multiple_by_a_lane():
    mib, m = 2**20, lane_groups.CACHE_MULTIPLE
    assert lane_groups.cpu_lane_cap(mib, 32 * mib) == 32 * m
    assert lane_groups.cpu_lane_cap(3 * mib, 32 * mib) == 32 * m // 3
    assert lane_groups.cpu_lane_cap(100 * mib, 32 * mib) == 1
    assert lane_groups.cpu_lane_cap(100 * mib, 32 * mib, least=5) == 5


def test_the_last_level_cache_is_the_highest_level_sysfs_names(tmp_path, monkeypatch):
    for index, level, size in ((0, 1, "32K"), (2, 2, "1024K"), (3, 3, "32768K"), (1, 1, "48K")):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        (folder / "level").write_text(f"{level}\n")
        (folder / "size").write_text(f"{size}\n")
    (tmp_path / "uevent").write_text("")
    assert lane_groups.last_level_cache(str(tmp_path)) == 32 * 2**20
    monkeypatch.setattr(os, "sysconf", lambda name: 6 * 2**20)  # no sysfs: glibc's figure
    assert lane_groups.last_level_cache(str(tmp_path / "none")) == 6 * 2**20
    monkeypatch.setattr(os, "sysconf", lambda name: 0)  # neither says
    assert lane_groups.last_level_cache(str(tmp_path / "none")) == lane_groups.FALLBACK_CACHE


def test_groups_are_of_equal_sizes_and_never_split_lanes_that_train_alike():
    # 10 seeds x 5 folds x 3 methods, at most 40 a group: cut where a seed and fold end
    units = [(seed, fold) for seed in range(10) for fold in range(5) for _ in range(3)]
    cuts = lane_groups.even_cuts(units, 40)
    assert [b - a for a, b in cuts] == [39, 36, 36, 39]
    assert all(units[a - 1] != units[a] for a, _ in cuts[1:])
    # lanes all unlike: 38, 37, 37, 38, not 40, 40, 40, 30
    assert [b - a for a, b in lane_groups.even_cuts(list(range(150)), 40)] == [38, 37, 37, 38]
    # units larger than a group: cut inside them, equal sizes
    assert [b - a for a, b in lane_groups.even_cuts(units[:12], 2)] == [2] * 6
    assert lane_groups.even_cuts(units, 150) == [(0, 150)]


def test_a_studys_records_do_not_depend_on_its_group_sizes(emb_config, tmp_path, monkeypatch):
    grid = {"methods": ("plain", "rsrl", "random_drop"), "seeds": (0, 1)}
    trained, _ = counted(monkeypatch)
    study.study(emb_config, str(tmp_path / "one_group"), **grid, lanes=6)
    one_group = list(trained)
    trained.clear()
    study.study(emb_config, str(tmp_path / "two_groups"), **grid, lanes=4)
    # Round 1: a seed's three methods train alike; at most 4 a group: 3 and 3, a seed each
    assert one_group == [(1, 2), (2, 6)] and trained == [(1, 1), (2, 3)] * 2
    runs = sorted((tmp_path / "one_group").glob("noise_*/seed_*/*/metrics.jsonl"))
    assert len(runs) == 6
    for path in runs:  # as lanes against runs alone: continuous figures to float rounding
        other = tmp_path / "two_groups" / path.relative_to(tmp_path / "one_group")
        mine, theirs = read_records(other.parent), read_records(path.parent)
        assert len(mine) == 2
        for a, b in zip(mine, theirs, strict=True):
            assert_records_match(a, b)


def test_runs_share_a_group_when_only_a_lanes_own_fields_differ(emb_config):
    data = datasets.load(emb_config)
    key = rsrl.group_key(emb_config, data)
    own = {
        "seed": 3,
        "method.loss": "focal",
        "method.selection": "random_drop",
        "rsrl.drop_quantile": 0.5,
        "data.label_noise": 0.5,
        "train.epochs_per_round": 7,
        "train.epoch_samples": "all",
        "protocol.folds": 3,
        "checkpoint.every_steps": 5,
    }
    for field, value in own.items():
        config = emb_config.copy_and_resolve_references()
        config.update_from_flattened_dict({field: value})
        assert rsrl.group_key(config, data) == key, field
    program = {
        "model.hidden_widths": (16,),
        "train.batch_size": 32,
        "train.learning_rate": 0.1,
        "rsrl.rounds": 3,
    }
    for field, value in program.items():
        config = emb_config.copy_and_resolve_references()
        config.update_from_flattened_dict({field: value})
        assert rsrl.group_key(config, data) != key, field
    other = dataclasses.replace(data, images=data.images + 1, fingerprints=None)
    assert rsrl.group_key(emb_config, other) != key  # other vectors: another group
    relabelled_ = dataclasses.replace(data, labels=(data.labels + 1) % data.num_classes)
    assert rsrl.group_key(emb_config, relabelled_) == key  # other labels: lanes of one group
