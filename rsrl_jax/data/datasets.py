"""Loading a data set named by the config: decoded uint8 photos (memory-mapped), or feature
vectors (`data.name='embeddings'`: `data.embeddings`), and classes."""

import dataclasses

import ml_collections
import numpy as np

from rsrl_jax.data import (
    builders,
    embeddings_dataset,
    inputs,
    photo_file,
    prepared,
    synthetic_embeddings,
)
from rsrl_jax.data import duplicates as duplicates_lib
from rsrl_jax.data.dataset import Dataset as Dataset  # datasets.Dataset: the type load gives
from rsrl_jax.data.dataset import from_scores as from_scores
from rsrl_jax.errors import DataError


def load(
    config: ml_collections.ConfigDict, workdir: str | None = None, check_listing=None
) -> Dataset:
    """Prepares `config.data` once into array_record files (cached) and reads them back.

    Every skipped item is logged and kept in `Dataset.skipped`; in skip mode, with a
    `workdir`, also listed in `workdir/skipped.jsonl` (a run writes that file itself, after
    checking that the workdir is its own: `rsrl_jax.engine.rsrl.run`). `check_listing`:
    see `prepared.prepare` (a resume checks the list against its record before decoding).
    Embeddings are read from their file each time (`embeddings_dataset.load`): nothing to prepare.
    """
    if inputs.reads_features(config):
        generated = config.data.name == inputs.SYNTHETIC_EMBEDDINGS
        data = (synthetic_embeddings if generated else embeddings_dataset).load(config)
        # identical vectors are copies, grouped alike
        return dataclasses.replace(data, duplicates=duplicates_lib.find(data.fingerprints))
    builder = prepared.prepare(config, check_listing)
    skipped = builders.record_skipped(builder, workdir)
    names = [s for s in ("train", "test") if s in builder.info.splits]
    if sum(builder.info.splits[s].num_examples for s in names) == 0:
        raise DataError(
            f"config.data.dir={config.data.dir!r}: no usable photo ({len(skipped)} skipped)"
        )
    whole = photo_file.read_splits(builder, names)
    official_test = None
    if len(names) > 1:  # the data set's own test list (AVA's generic_test.jpgl)
        official_test = np.arange(len(whole["score"])) >= builder.info.splits["train"].num_examples
    return from_scores(
        whole["image"],
        whole["score"],
        whole.get("mask"),
        true_scores=whole.get("true_score"),
        keys=whole["key"],
        fingerprints=whole["fingerprint"],
        official_test=official_test,
        skipped=tuple(skipped),
        duplicates=duplicates_lib.find(
            whole["fingerprint"],
            whole["pixels"],
            whole["phash"],
            config.data.near_duplicate_distance,
            config.data.group_near_duplicates,
        ),
    )
