"""The RSRL job as a plain PyTorch loop, written the obvious way: the peer of `--whole_run`.

  python -m benchmarks.torch_loop '<spec JSON>'   (started by benchmarks.whole_run)

Reads the photos, labels and split that `whole_run` exported from the run's prepared data
(one .npz: uint8 [N, S, S, 3] photos, so both sides train on the same pixels), then each
round: trains the same AlexNet (`benchmarks.torch_alexnet`, torch's defaults: its init, NCHW, all
cores) on the round's kept set with a fresh SGD with momentum and L2 weight decay (the head's
learning rate times `head_lr_multiplier`, as ours), random crops and flips as ours; scores
all of D with the round's network (sigmoid of the logits) and keeps, for the next round, the
minority samples and the majority samples whose own-class likelihood reaches K (RSRL's rule,
`method.selection.keep_mask`, in numpy); evaluates validation and test (macro F, as
`metrics.classification`); saves the round's weights (`torch.save`: RSRL picks a round on
validation afterwards, so each round's network is kept, as a run keeps its checkpoints).

Prints each round's figures and the round chosen on validation, and writes every figure and
the seconds of each phase (with wall-clock stamps, so the caller adds the imports) as JSON to
the spec's `out`. The spec's fields are those `whole_run.torch_spec` writes. No JAX import.

With `"kind": "embeddings_study"` in the spec it is the peer of `--study` instead
(`run_study`): the MLP head of configs/embeddings.py over embeddings, every run of a study
(methods x seeds x folds) one after another in this one process, as a PyTorch user loops.
"""

import json
import os
import sys
import time

import numpy as np
import torch

from benchmarks import torch_alexnet
from rsrl_jax.metrics import classification

IMPORTED = time.time()  # the imports are done: the caller counts them from the process start


def crops(photos: torch.Tensor, size: int, rng: np.random.Generator | None) -> torch.Tensor:
    """`size` x `size` windows of uint8 NCHW `photos`: at random offsets (training, `rng`) or
    the central one (`rng` None), as `data.preprocess.random_crops` / `center_crops`."""
    height, width = photos.shape[2:]
    if height == width == size:
        return photos
    if rng is None:
        top, left = (height - size) // 2, (width - size) // 2
        return photos[:, :, top : top + size, left : left + size]
    tops = rng.integers(0, height - size + 1, len(photos))
    lefts = rng.integers(0, width - size + 1, len(photos))
    windows = [
        p[:, t : t + size, w : w + size] for p, t, w in zip(photos, tops, lefts, strict=True)
    ]
    return torch.stack(windows)


def majority_classes(labels: np.ndarray, num_classes: int, how_many: int) -> np.ndarray:
    """The `how_many` largest classes of `labels`, largest first, ties to the lower index."""
    counts = np.bincount(labels, minlength=num_classes)
    return np.lexsort((np.arange(num_classes), -counts))[:how_many]


def keep_mask(likelihood, labels, majority, thresholds) -> np.ndarray:
    """RSRL's rule: keep a sample unless its class is a majority one and its likelihood
    [N, C] of its own class is below that class's K."""
    own = likelihood[np.arange(len(labels)), labels]
    keep = np.ones(len(labels), bool)
    for c, k in zip(majority, thresholds, strict=False):
        members = labels == c
        keep[members] = own[members] >= np.float32(k)
    return keep


def logits_of(net, photos, indices, spec) -> torch.Tensor:
    """Logits [len(indices), C] of the photos `indices` (central crops), in eval mode."""
    step = torch_alexnet.make_eval_step(net)
    batch, size = spec["eval_batch_size"], spec["image_size"]
    out = [
        step(crops(photos[torch.from_numpy(indices[i : i + batch])], size, None))
        for i in range(0, len(indices), batch)
    ]
    return torch.cat(out)


def train_round(net, photos, labels, kept, epochs, spec, rng) -> float:
    """Trains `net` on the photos `kept` for `epochs` epochs; returns the last epoch's loss."""
    optimizer = torch_alexnet.make_optimizer(
        net,
        spec["learning_rate"],
        spec["momentum"],
        spec["weight_decay"],
        spec["head_lr_multiplier"],
    )
    step = torch_alexnet.make_train_step(net, optimizer, flip=spec["flip"])
    crop_rng = rng if spec["random_crop"] else None
    batch = spec["batch_size"]
    loss_sum = 0.0
    for _ in range(epochs):
        order = rng.permutation(kept)
        loss_sum = 0.0
        for i in range(0, len(order), batch):
            index = torch.from_numpy(order[i : i + batch])
            loss, _ = step(crops(photos[index], spec["image_size"], crop_rng), labels[index])
            loss_sum += float(loss)
    return loss_sum / len(kept)


def figures(labels: np.ndarray, logits: torch.Tensor, num_classes: int) -> dict:
    report = classification.classification_report(labels, logits.argmax(-1).numpy(), num_classes)
    return {name: report[name] for name in ("macro_f1", "accuracy")}


def run(spec: dict) -> dict:
    """The whole job of `spec`; returns its figures and the seconds of each phase."""
    torch.manual_seed(spec["seed"])
    rng = np.random.default_rng(spec["seed"])
    with np.load(spec["data"]) as f:
        images, labels_np = f["images"], f["labels"].astype(np.int64)
        train, val, test = f["train"], f["val"], f["test"]
        num_classes = len(f["class_scores"])
    photos = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))  # NCHW
    labels = torch.from_numpy(labels_np)
    loaded = time.time()
    net = torch_alexnet.TorchAlexNet(
        num_classes, spec["dropout_rate"], width=spec["width"], fc_dim=spec["fc_dim"]
    )
    built = time.time()
    d_labels = labels_np[train]
    majority = majority_classes(d_labels, num_classes, spec["num_majority"])
    keep = np.ones(len(train), bool)
    os.makedirs(spec["workdir"], exist_ok=True)
    rounds = []
    for round_ in range(1, spec["rounds"] + 1):
        kept = train[keep]
        if len(kept) == 0:
            raise SystemExit(f"round {round_}: the selection kept no sample (as ours would stop)")
        epochs = spec["first_round_epochs"] if round_ == 1 else spec["epochs_per_round"]
        seconds = {}
        start = time.perf_counter()
        loss = train_round(net, photos, labels, kept, epochs, spec, rng)
        seconds["train_s"] = time.perf_counter() - start
        start = time.perf_counter()
        d_logits = logits_of(net, photos, train, spec)
        seconds["likelihood_s"] = time.perf_counter() - start
        start = time.perf_counter()
        split_logits = {"val": logits_of(net, photos, val, spec)}
        split_logits["test"] = logits_of(net, photos, test, spec)
        seconds["evaluation_s"] = time.perf_counter() - start
        start = time.perf_counter()
        likelihood = torch.sigmoid(d_logits).numpy()
        next_keep = keep_mask(likelihood, d_labels, majority, spec["thresholds"])
        seconds["selection_s"] = time.perf_counter() - start
        start = time.perf_counter()
        torch.save(net.state_dict(), os.path.join(spec["workdir"], f"round_{round_:02d}.pt"))
        seconds["checkpoint_s"] = time.perf_counter() - start
        record = {
            "round": round_,
            "train_size": int(len(kept)),
            "train_loss": loss,
            "train": figures(d_labels, d_logits, num_classes),
            **{part: figures(labels_np[idx], split_logits[part], num_classes)
               for part, idx in (("val", val), ("test", test))},
            **seconds,
        }  # fmt: skip
        rounds.append(record)
        print(
            f"torch round {round_}/{spec['rounds']}: trained on {len(kept)} | val macro F "
            f"{record['val']['macro_f1']:.3f} acc {record['val']['accuracy']:.3f} | test macro F "
            f"{record['test']['macro_f1']:.3f} acc {record['test']['accuracy']:.3f} | train "
            f"{seconds['train_s']:.1f}s scores of D {seconds['likelihood_s']:.1f}s",
            flush=True,
        )
        keep = next_keep
    chosen = max(rounds, key=lambda r: r["val"]["macro_f1"])  # the first best on validation
    print(
        f"torch: chosen round {chosen['round']} (val macro F {chosen['val']['macro_f1']:.3f}, "
        f"test macro F {chosen['test']['macro_f1']:.3f}); round 1: val "
        f"{rounds[0]['val']['macro_f1']:.3f} test {rounds[0]['test']['macro_f1']:.3f}",
        flush=True,
    )
    return {
        "stamps": {"imported": IMPORTED, "data_loaded": loaded, "built": built, "end": time.time()},
        "rounds": rounds,
        "chosen_round": chosen["round"],
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


# The study's methods the loop does, as their `method.selection` (compare.PARTS).
STUDY_SELECTIONS = {"plain": "none", "rsrl": "rsrl", "random_drop": "random_drop"}


def random_keep(rule_keep, labels, majority, rng: np.random.Generator) -> np.ndarray:
    """random_drop: as many of each majority class as `rule_keep` keeps, drawn at random."""
    keep = np.ones(len(labels), bool)
    for c in majority:
        members = np.flatnonzero(labels == c)
        keep[members] = False
        keep[rng.choice(members, size=int(rule_keep[members].sum()), replace=False)] = True
    return keep


def make_head(dim: int, hidden: list[int], classes: int, dropout: float) -> torch.nn.Module:
    """configs/embeddings.py's MLP: Linear -> ReLU -> Dropout per hidden width, then the head."""
    layers, width = [], dim
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
        width = h
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, classes))


def head_logits(net, x: torch.Tensor, indices: np.ndarray, batch: int) -> torch.Tensor:
    net.eval()
    with torch.inference_mode():
        return torch.cat(
            [
                net(x[torch.from_numpy(indices[i : i + batch])])
                for i in range(0, len(indices), batch)
            ]
        )


def study_fold(spec, x, labels_np, split, selection, seed, fold, workdir) -> list[dict]:
    """One fold of one run: the rounds of `selection` on `split` (train = D, val, test)."""
    labels = torch.from_numpy(labels_np)
    classes, batch = spec["num_classes"], spec["batch_size"]
    torch.manual_seed(1000 * seed + fold)
    rng = np.random.default_rng([seed, fold])
    net = make_head(x.shape[1], spec["hidden_widths"], classes, spec["dropout_rate"])
    train, val, test = split
    d_labels = labels_np[train]
    majority = majority_classes(d_labels, classes, spec["num_majority"])
    keep = np.ones(len(train), bool)
    records = []
    for round_ in range(1, spec["rounds"] + 1):
        kept = train[keep]
        epochs = spec["first_round_epochs"] if round_ == 1 else spec["epochs_per_round"]
        size = len(train) if spec["epoch_samples"] == "all" else len(kept)
        seconds, steps = {}, 0
        start = time.perf_counter()
        optimizer = torch.optim.Adam(net.parameters(), lr=spec["learning_rate"])
        net.train()
        for _ in range(epochs):  # whole shuffles of the kept set, cut at the epoch's size
            shuffles = -(-size // len(kept))
            order = np.concatenate([rng.permutation(kept) for _ in range(shuffles)])[:size]
            for i in range(0, size, batch):
                index = torch.from_numpy(order[i : i + batch])
                optimizer.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(net(x[index]), labels[index])
                loss.backward()
                optimizer.step()
                steps += 1
        seconds["train_s"] = time.perf_counter() - start
        start = time.perf_counter()
        d_logits = head_logits(net, x, train, spec["eval_batch_size"])
        seconds["likelihood_s"] = time.perf_counter() - start
        start = time.perf_counter()
        held_out_of = {"val": val, "test": test}
        held_out = {
            p: head_logits(net, x, i, spec["eval_batch_size"]) for p, i in held_out_of.items()
        }
        seconds["evaluation_s"] = time.perf_counter() - start
        start = time.perf_counter()
        if selection == "none":
            next_keep = np.ones(len(train), bool)
        else:
            likelihood = torch.sigmoid(d_logits).numpy()
            next_keep = keep_mask(likelihood, d_labels, majority, spec["thresholds"])
            if selection == "random_drop":
                draws = np.random.default_rng([seed, fold, round_, 1])
                next_keep = random_keep(next_keep, d_labels, majority, draws)
        seconds["selection_s"] = time.perf_counter() - start
        start = time.perf_counter()
        torch.save(net.state_dict(), os.path.join(workdir, f"fold{fold}_round_{round_:02d}.pt"))
        seconds["checkpoint_s"] = time.perf_counter() - start
        parts = {p: figures(labels_np[i], held_out[p], classes) for p, i in held_out_of.items()}
        records.append(
            {
                "fold": fold,
                "round": round_,
                "train_size": int(len(kept)),
                "kept_per_class": np.bincount(labels_np[kept], minlength=classes).tolist(),
                "steps": steps,
                **parts,
                **seconds,
            }
        )
        keep = next_keep
    return records


def run_study(spec: dict) -> dict:
    """Every run of the study in `spec` (methods x seeds, each over its seed's folds);
    returns their records and the seconds of each phase."""
    torch.set_num_threads(spec["threads"])
    with np.load(spec["data"]) as f:
        x = torch.from_numpy(np.ascontiguousarray(f["embeddings"], np.float32))
        labels_np = f["labels"].astype(np.int64)
        splits = {k: f[k] for k in f.files if k.startswith("seed")}
    loaded = time.time()
    runs = []
    for seed in spec["seeds"]:
        for method in spec["methods"]:
            workdir = os.path.join(spec["workdir"], f"seed_{seed}", method)
            os.makedirs(workdir, exist_ok=True)
            records = []
            for fold in range(spec["folds"]):
                split = [splits[f"seed{seed}_fold{fold}_{p}"] for p in ("train", "val", "test")]
                selection = STUDY_SELECTIONS[method]
                records += study_fold(spec, x, labels_np, split, selection, seed, fold, workdir)
            runs.append({"seed": seed, "method": method, "records": records})
            print(f"torch: seed {seed} {method} done", flush=True)
    return {
        "stamps": {"imported": IMPORTED, "built": loaded, "end": time.time()},
        "runs": runs,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


if __name__ == "__main__":
    SPEC = json.loads(sys.argv[1])
    RESULT = run_study(SPEC) if SPEC.get("kind") == "embeddings_study" else run(SPEC)
    with open(SPEC["out"], "w") as out:
        json.dump(RESULT, out, indent=2)
