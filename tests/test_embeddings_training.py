"""The heads over embeddings learn what they should: a linearly separable set perfectly, and
a plain linear run lands where scikit-learn's multinomial logistic regression does."""

import json

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from rsrl_jax.data import embeddings
from rsrl_jax.engine import rsrl
from rsrl_jax.run import resume


def blobs(n: int, dim: int, counts, spread: float, seed: int):
    """Gaussian blobs, one per class (score 1..C), `counts` shares of n; float32 [n, dim]."""
    rng = np.random.default_rng(seed)
    scores = rng.choice(np.arange(1, len(counts) + 1), n, p=np.asarray(counts) / sum(counts))
    centers = rng.normal(0, 1, (len(counts) + 1, dim)) * 3
    return (centers[scores] + spread * rng.normal(size=(n, dim))).astype(np.float32), scores


def linear_config(folder, **fields):
    from configs import embeddings as embeddings_config

    config = embeddings_config.get_config()
    config.update_from_flattened_dict(
        {
            "data.dir": str(folder),
            "model.name": "linear",
            "protocol.folds": 1,
            "rsrl.rounds": 1,  # plain training: one round on all of D
            "rsrl.num_majority": 2,
            "train.first_round_epochs": 40,
            "train.learning_rate": 0.01,
            "log.progress": False,
            **fields,
        }
    )
    return config


def train(config, workdir):
    """(the one round's record, the fold's split): the engine's rounds without the report
    (the command's report is tested with the whole run, test_embeddings_run.py)."""
    exp = rsrl.Experiment.build(config, str(workdir))
    (split,) = resume.start_or_resume(config, exp.recorder, exp.data)
    (record,) = exp.run_folds([split])
    exp.recorder.close()
    return record, split


def test_a_linearly_separable_set_is_learned_to_near_perfect_macro_f(tmp_path):
    x, scores = blobs(400, 8, [1, 2, 4], spread=0.3, seed=0)
    embeddings.write(str(tmp_path / "emb"), x, [f"p{i}" for i in range(len(x))], scores)
    record, _ = train(linear_config(tmp_path / "emb"), tmp_path / "run")
    assert record["test"]["macro_f1"] >= 0.95, record["test"]
    assert record["train"]["macro_f1"] >= 0.95


def test_a_plain_linear_run_matches_scikit_learns_logistic_regression(tmp_path):
    """The same objective: our loss is the mean cross-entropy with weight decay wd added to
    every gradient (L2: wd/2 |w|^2), scikit-learn's C * the summed cross-entropy + |W|^2 / 2,
    so C = 1 / (wd * |D|) (it leaves the bias out: a small difference here). Adam with a
    constant rate ends near, not at, the optimum, so the figures match to a tolerance: test
    accuracy and macro F within 0.03 on overlapping blobs (about 5 of 180 test rows), and
    the two agree on at least 95 % of the test rows."""
    x, scores = blobs(900, 8, [1, 2, 3], spread=2.5, seed=1)  # the shapes above: compiled once
    embeddings.write(str(tmp_path / "emb"), x, [f"p{i}" for i in range(len(x))], scores)
    wd = 1e-3
    workdir = tmp_path / "run"
    config = linear_config(tmp_path / "emb", **{"train.weight_decay": wd})
    record, split = train(config, workdir)
    d, test = split.train, split.test  # positions in the data: its rows, none skipped
    oracle = LogisticRegression(C=1 / (wd * len(d)), max_iter=5000).fit(x[d], scores[d])
    want = oracle.predict(x[test])
    assert abs(record["test"]["accuracy"] - accuracy_score(scores[test], want)) <= 0.03
    macro_f = f1_score(scores[test], want, average="macro")
    assert abs(record["test"]["macro_f1"] - macro_f) <= 0.03
    ours = np.asarray(record["test"]["confusion_matrix"])
    assert ours.sum() == len(test)
    from rsrl_jax.engine.predict import predict

    with open(tmp_path / "lines.jsonl", "w") as out:
        predict(str(workdir), [str(tmp_path / "emb")], round_=1, out=out)
    lines = [json.loads(line) for line in (tmp_path / "lines.jsonl").read_text().splitlines()]
    predicted = np.array([line["score"] for line in lines])[test]
    assert np.mean(predicted == want) >= 0.95
