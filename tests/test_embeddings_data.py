"""An embeddings file is read as its layout says, and every way it can be wrong is one line.

A problem of the whole file (missing, unreadable, a key missing, a wrong dtype or shape)
always stops, naming the file and key; a bad row (NaN or infinite values, a score outside
data.score_range or not an integer, an empty or repeated id) follows data.on_bad_example as a
bad row of scores.csv does: it stops naming the row, or is left out and recorded. The config
refuses a model that cannot read the data's kind.
"""

import numpy as np
import pytest

from rsrl_jax.config import validate
from rsrl_jax.data import datasets, embeddings
from rsrl_jax.errors import ConfigError, DataError


def config_for(folder, **fields):
    from configs import embeddings as embeddings_config

    config = embeddings_config.get_config()
    config.data.dir = str(folder)
    config.update_from_flattened_dict(fields)
    return config


def good_arrays(n=6, d=3):
    rng = np.random.default_rng(0)
    return {
        "embeddings": rng.normal(size=(n, d)).astype(np.float32),
        "scores": np.array([3, 4, 5, 5, 4, 3][:n]),
        "ids": np.array(list("abcdef"[:n])),
    }


def save(folder, **arrays):
    folder.mkdir(exist_ok=True)
    np.savez(folder / embeddings.FILE, **arrays)
    return folder


def test_a_good_file_loads_with_its_ids_scores_and_a_fingerprint_per_row(tmp_path):
    arrays = good_arrays()
    arrays["embeddings"] = arrays["embeddings"].astype(np.float16)  # read as float32
    arrays["scores"] = arrays["scores"].astype(np.float64)  # 5.0 as pandas writes it
    data = datasets.load(config_for(save(tmp_path / "e", **arrays)))
    assert data.images.dtype == np.float32 and data.images.shape == (6, 3)
    np.testing.assert_array_equal(data.images, arrays["embeddings"].astype(np.float32))
    assert list(data.keys) == list("abcdef") and data.class_scores == (3, 4, 5)
    np.testing.assert_array_equal(np.asarray(data.class_scores)[data.labels], [3, 4, 5, 5, 4, 3])
    assert len(set(data.fingerprints)) == 6 and data.skipped == ()


def test_without_ids_the_rows_are_named_by_their_numbers(tmp_path):
    arrays = good_arrays()
    del arrays["ids"]
    data = datasets.load(config_for(save(tmp_path / "e", **arrays)))
    assert list(data.keys) == ["0", "1", "2", "3", "4", "5"]


def _without(name):
    arrays = good_arrays()
    del arrays[name]
    return arrays


@pytest.mark.parametrize(
    ("arrays", "says"),
    [
        (_without("embeddings"), "no array 'embeddings' (it holds 'scores', 'ids')"),
        (_without("scores"), "no array 'scores' (it holds 'embeddings', 'ids'): training needs"),
        ({**good_arrays(), "embeddings": np.ones((6, 3), int)}, "'embeddings' is int64, expected"),
        (
            {**good_arrays(), "embeddings": np.ones(6)},
            "'embeddings' has shape (6,), expected [N, D]",
        ),
        ({**good_arrays(), "scores": np.array(list("345543"))}, "'scores' is <U1, expected int"),
        ({**good_arrays(), "scores": np.arange(4)}, "'scores' has shape (4,), expected [6]"),
        ({**good_arrays(), "ids": np.arange(6) * 0.5}, "'ids' is float64, expected strings [N]"),
        ({**good_arrays(), "ids": np.array(list("abc"))}, "'ids' has shape (3,), expected [6]"),
    ],
)
def test_a_problem_of_the_whole_file_names_the_file_and_key(tmp_path, arrays, says):
    folder = save(tmp_path / "e", **arrays)
    for mode in ("error", "skip"):  # not a row to skip: the file cannot be read as it is
        with pytest.raises(DataError) as e:
            datasets.load(config_for(folder, **{"data.on_bad_example": mode}))
        assert str(e.value).startswith(f"{folder / embeddings.FILE}: {says}")


def test_a_missing_unreadable_or_pickled_file_is_one_line(tmp_path):
    folder = tmp_path / "e"
    folder.mkdir()
    with pytest.raises(DataError, match="embeddings.npz: missing; data.name='embeddings' reads"):
        datasets.load(config_for(folder))
    (folder / embeddings.FILE).write_text("filename,score\n")
    with pytest.raises(DataError, match="not a numpy .npz archive .a photo. this run reads"):
        datasets.load(config_for(folder))
    with open(folder / embeddings.FILE, "wb") as f:  # numpy.save's one array, misnamed
        np.save(f, good_arrays()["embeddings"])
    with pytest.raises(DataError, match="a single .npy array .numpy.save., not an .npz") as e:
        datasets.load(config_for(folder))
    assert "allow_pickle" not in str(e.value)
    save(folder, **{**good_arrays(), "ids": np.array(list("abcdef"), dtype=object)})
    with pytest.raises(DataError, match="'ids' holds Python objects"):
        datasets.load(config_for(folder))


def bad_rows():
    arrays = good_arrays()
    arrays["embeddings"][1, 2] = np.nan
    arrays["embeddings"][4, 0] = np.inf
    arrays["scores"] = np.array([3.0, 4.0, 5.5, 11.0, 4.0, 3.0])
    arrays["ids"] = np.array(["a", "b", "c", "d", "a", ""])
    return arrays


def test_a_bad_row_stops_naming_the_row_and_what_to_do(tmp_path):
    with pytest.raises(DataError) as e:
        datasets.load(config_for(save(tmp_path / "e", **bad_rows())))
    assert str(e.value) == (
        "embeddings.npz row 1: 'b': 1 of the 3 values of embeddings[1] are NaN or infinite "
        "(set config.data.on_bad_example=skip to leave bad examples out; each is then recorded "
        "in the workdir's skipped.jsonl) [and 4 more bad rows]"
    )


def test_skip_mode_leaves_every_bad_row_out_and_records_why(tmp_path):
    config = config_for(save(tmp_path / "e", **bad_rows()), **{"data.on_bad_example": "skip"})
    data = datasets.load(config)
    assert list(data.keys) == ["a"]
    assert [(s["where"], s["item"], s["reason"]) for s in data.skipped] == [
        ("embeddings.npz row 1", "b", "1 of the 3 values of embeddings[1] are NaN or infinite"),
        ("embeddings.npz row 2", "c", "score 5.5 is not an integer"),
        ("embeddings.npz row 3", "d", "score 11 outside data.score_range [1, 10]"),
        ("embeddings.npz row 4", "a", "1 of the 3 values of embeddings[4] are NaN or infinite"),
        ("embeddings.npz row 5", "", "empty id"),
    ]


def test_scores_on_another_scale_are_told_once_with_the_fix(tmp_path):
    arrays = {**good_arrays(), "scores": np.array([0, 20, 40, 60, 80, 100])}
    folder = save(tmp_path / "e", **arrays)
    for mode in ("error", "skip"):  # skip would leave nothing
        with pytest.raises(DataError) as e:
            datasets.load(config_for(folder, **{"data.on_bad_example": mode}))
        assert str(e.value) == (
            f"{folder / embeddings.FILE}: every one of the 6 rows has a score outside "
            "data.score_range [1, 10] (scores found: 0..100): if those are the scores, set "
            "--config.data.score_range='(0,100)'"
        )
    data = datasets.load(config_for(folder, **{"data.score_range": (0, 100)}))
    assert data.class_scores == (0, 20, 40, 60, 80, 100)


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"model.name": "alexnet"}, "model.name", "AlexNet reads photos, but data.name="),
        ({"model.hidden_widths": ()}, "model.hidden_widths", "needs one or more positive"),
        ({"model.pretrained": "shipped:demo_alexnet"}, "model.pretrained", "starts from random"),
        ({"data.name": "synthetic", "data.dir": ""}, "model.name", "reads feature vectors"),
    ],
)
def test_the_config_refuses_a_model_that_cannot_read_the_data(tmp_path, fields, field, says):
    config = config_for(save(tmp_path / "e", **good_arrays()), **fields)
    with pytest.raises(ConfigError) as e:
        validate(config)
    assert str(e.value).startswith(f"config.{field}=") and says in str(e.value)


def test_data_dir_names_the_folder_not_the_file(tmp_path):
    config = config_for(save(tmp_path / "e", **good_arrays()) / embeddings.FILE)
    with pytest.raises(ConfigError, match="the folder holding embeddings.npz, not a file"):
        validate(config)


def test_a_repeated_id_names_its_first_row(tmp_path):
    arrays = {**good_arrays(), "ids": np.array(list("abcdbf"))}
    with pytest.raises(DataError) as e:
        datasets.load(config_for(save(tmp_path / "e", **arrays)))
    assert str(e.value).startswith("embeddings.npz row 4: 'b': duplicate id (first on row 1) (")
