"""A run is tied to its data: its record of photos, scores, contents and splits, checked on
resume (here without training: `resume.start_or_resume` on data sets built in memory)."""

import dataclasses
import os

import numpy as np
import pytest

from conftest import tiny_config
from rsrl_jax.data import dataset, identity, splits
from rsrl_jax.data.listing import Example, SourceList
from rsrl_jax.errors import DataError
from rsrl_jax.run import resume
from rsrl_jax.run.recorder import Recorder
from rsrl_jax.workdir_files import WorkdirFiles

N = 30


def make_data(rows) -> dataset.Dataset:
    """A data set of (key, score, fingerprint) rows, in that order (no pixels needed)."""
    keys, scores, prints = zip(*rows, strict=True)
    return dataset.from_scores(
        np.zeros((len(rows), 1, 1, 3), np.uint8),
        np.array(scores),
        keys=np.array(keys),
        fingerprints=np.array(prints),
    )


def photos(n=N):
    return [(f"p{i:02d}.jpg", 3 + i % 3, f"{i:016x}") for i in range(n)]


def keys_of(data, split):
    return [[str(data.keys[i]) for i in getattr(split, part)] for part in identity.PARTS]


def start_or_resume(config, workdir, data):
    return resume.start_or_resume(config, Recorder(workdir), data)


def config(**overrides):
    """The tiny config with 3 folds; string values are given as they are."""
    overrides = {k: repr(v) if isinstance(v, str) else v for k, v in overrides.items()}
    return tiny_config({"protocol.folds": 3, **overrides})


@pytest.fixture
def started(tmp_path):
    """(workdir, data, splits by key) of a new run's record over 30 photos, 3 folds."""
    workdir = str(tmp_path / "run")
    data = make_data(photos())
    fold_splits = start_or_resume(config(), workdir, data)
    assert os.path.exists(WorkdirFiles(workdir).identity)
    return workdir, data, [keys_of(data, s) for s in fold_splits]


def test_a_new_run_records_its_photos_and_splits(started):
    workdir, data, by_key = started
    recorded = identity.recorded_identity(workdir)
    assert list(recorded.keys) == list(data.keys)
    assert list(recorded.scores) == [s for _, s, _ in photos()]
    assert list(recorded.fingerprints) == [f for _, _, f in photos()]
    want = splits.protocol_splits(data.labels, config().protocol, config().seed)
    assert [keys_of(data, s) for s in recorded.folds] == [keys_of(data, s) for s in want]
    assert by_key == [keys_of(data, s) for s in want]
    tested = sorted(k for fold in by_key for k in fold[2])
    assert tested == sorted(data.keys)  # every photo a test photo exactly once


def test_reordered_rows_resume_with_the_same_splits_by_key(started):
    workdir, _, by_key = started
    rows = photos()
    reordered = make_data(rows[::-1][:10] + rows[:20][::2] + rows[:20][1::2])
    got = start_or_resume(config(), workdir, reordered)
    assert [keys_of(reordered, s) for s in got] == by_key


@pytest.mark.parametrize("force", ["auto", "force"])
def test_re_scored_photos_are_named_and_refused_unless_forced(started, force, caplog):
    workdir, _, by_key = started
    rows = photos()
    for i, score in ((0, 4), (1, 3), (3, 4), (4, 3)):  # class counts unchanged
        rows[i] = (rows[i][0], score, rows[i][2])
    data = make_data(rows)
    if force == "auto":
        with pytest.raises(DataError) as e:
            start_or_resume(config(), workdir, data)
        assert str(e.value) == (
            f"{workdir}: the data differ from the run's: 4 re-scored (p00.jpg 3->4, "
            "p01.jpg 4->3, p03.jpg 3->4, p04.jpg 4->3); use another --workdir for new data (or "
            "put the run's scores and photos back), or --config.resume=force to go on with the "
            "run's splits and the new scores and contents"
        )
        assert list(identity.recorded_identity(workdir).scores) == [s for _, s, _ in photos()]
        return
    caplog.set_level("WARNING")
    got = start_or_resume(config(resume="force"), workdir, data)
    assert [keys_of(data, s) for s in got] == by_key  # test photos stay test photos
    assert "'p01.jpg' re-scored 4 -> 3; its split stays" in caplog.text
    # the new scores
    assert list(identity.recorded_identity(workdir).scores) == [s for _, s, _ in rows]
    assert [keys_of(data, s) for s in start_or_resume(config(), workdir, data)] == by_key


@pytest.mark.parametrize("force", ["auto", "force"])
def test_added_photos_are_named_and_refused_even_when_forced(started, force):
    workdir, _, _ = started
    rows = photos() + [(f"new{i}.jpg", 3 + i % 3, f"{100 + i:016x}") for i in range(6)]
    with pytest.raises(DataError) as e:
        start_or_resume(config(resume=force), workdir, make_data(rows))
    assert (
        f"{workdir}: the data differ from the run's: 6 added (new0.jpg, new1.jpg, new2.jpg, "
        "new3.jpg, new4.jpg, ...); use another --workdir for new data" in str(e.value)
    )
    assert "--config.resume=force cannot resume it either" in str(e.value)


@pytest.mark.parametrize("force", ["auto", "force"])
def test_removed_photos_are_named_and_refused_even_when_forced(started, force):
    workdir, _, _ = started
    rows = photos()
    del rows[7], rows[12], rows[20]
    with pytest.raises(DataError) as e:
        start_or_resume(config(resume=force), workdir, make_data(rows))
    assert "data differ from the run's: 3 removed (p07.jpg, p13.jpg, p22.jpg); " in str(e.value)
    assert "--config.resume=force cannot resume it either" in str(e.value)


def test_changed_content_is_named_and_refused_unless_forced(started, caplog):
    workdir, _, by_key = started
    rows = photos()
    rows[5] = (rows[5][0], rows[5][1], "f" * 16)
    data = make_data(rows)
    with pytest.raises(DataError, match=r"differ from the run's: 1 changed in content \(p05.jpg\)"):
        start_or_resume(config(), workdir, data)
    caplog.set_level("WARNING")
    got = start_or_resume(config(resume="force"), workdir, data)
    assert [keys_of(data, s) for s in got] == by_key
    assert "'p05.jpg' changed in content; its split stays" in caplog.text
    assert identity.recorded_identity(workdir).fingerprints[5] == "f" * 16


def test_every_kind_of_change_is_counted_in_one_message(started):
    workdir, _, _ = started
    rows = photos()[2:] + [("new.jpg", 3, "e" * 16)]
    rows[0] = (rows[0][0], 5, "d" * 16)  # p02.jpg: score 5 as before, another content
    rows[1] = (rows[1][0], 5, rows[1][2])  # p03.jpg 3 -> 5
    with pytest.raises(DataError) as e:
        start_or_resume(config(), workdir, make_data(rows))
    assert (
        "the data differ from the run's: 1 re-scored (p03.jpg 3->5), 1 added (new.jpg), "
        "2 removed (p00.jpg, p01.jpg), 1 changed in content (p02.jpg); " in str(e.value)
    )


def test_force_keeps_the_recorded_splits_when_the_protocol_changes(started, caplog):
    workdir, data, by_key = started
    caplog.set_level("WARNING")
    forced = config(resume="force", **{"protocol.folds": 2, "seed": 7})
    assert [keys_of(data, s) for s in start_or_resume(forced, workdir, data)] == by_key
    assert "keeps its recorded splits; protocol.folds: 3 -> 2; seed: 0 -> 7" in caplog.text


def test_a_run_without_a_record_gets_its_own_splits_and_a_record(started, caplog):
    workdir, data, by_key = started
    os.remove(WorkdirFiles(workdir).identity)  # a run of an older version
    caplog.set_level("WARNING")
    forced = config(resume="force", seed=7)
    assert [keys_of(data, s) for s in start_or_resume(forced, workdir, data)] == by_key
    assert "has no record of its data" in caplog.text
    assert os.path.exists(WorkdirFiles(workdir).identity)


def test_a_damaged_record_stops_the_resume(started):
    workdir, data, _ = started
    record = WorkdirFiles(workdir).identity
    whole = open(record, "rb").read()
    for damaged in (b"not a zip file", whole[: len(whole) // 2]):
        with open(record, "wb") as f:
            f.write(damaged)
        with pytest.raises(DataError, match="data_identity.npz: unreadable"):
            start_or_resume(config(), workdir, data)


def listing_of(rows):
    """A parsed photo list (`listing.SourceList`) of (key, score, fingerprint) rows."""
    examples = [Example(k, f"images/{k}", s, f"line {i + 2}") for i, (k, s, _) in enumerate(rows)]
    return SourceList(splits={"train": examples}, problems=[], listed_files=[])


def test_the_list_is_checked_against_the_record_before_any_photo_is_decoded(started):
    """Added, removed and re-scored photos show in the list alone: a resume stops there."""
    workdir = started[0]
    identity.check_listing(workdir, listing_of(photos()), force=False)  # the same: passes
    rows = photos()
    rows[2] = (rows[2][0], rows[2][1] + 1, rows[2][2])
    with pytest.raises(DataError, match=r"1 re-scored \(p02.jpg 5->6\)"):
        identity.check_listing(workdir, listing_of(rows), force=False)
    identity.check_listing(workdir, listing_of(rows), force=True)  # force: same photos go on
    more = photos() + [("new.jpg", 3, "f" * 16)]
    with pytest.raises(DataError, match=r"1 added \(new.jpg\).*cannot resume it either"):
        identity.check_listing(workdir, listing_of(more), force=True)
    with pytest.raises(DataError, match=r"1 removed \(p29.jpg\)"):
        identity.check_listing(workdir, listing_of(photos()[:-1]), force=False)
    # A photo the run itself left out as bad is not new when the list still names it.
    with open(os.path.join(workdir, "skipped.jsonl"), "w") as f:
        f.write('{"item": "new.jpg", "where": "line 32", "reason": "corrupt"}\n')
    identity.check_listing(workdir, listing_of(more), force=False)


def test_a_recorded_photo_now_skipped_as_bad_is_named_as_such(started):
    workdir = started[0]
    data = make_data(photos()[1:])
    data = dataclasses.replace(
        data, skipped=({"item": "p00.jpg", "where": "line 2", "reason": "truncated photo"},)
    )
    with pytest.raises(DataError) as e:
        start_or_resume(config(), workdir, data)
    assert "1 still listed but now skipped as bad photos (p00.jpg: truncated photo)" in str(e.value)
    assert "removed" not in str(e.value)
