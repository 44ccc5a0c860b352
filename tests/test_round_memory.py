"""A round trains with one copy of the networks in memory: the train state's (AlexNet: 228 MB
a copy at full size), not also the start's or the previous round's parameters."""

import jax

from conftest import read_records, tiny_config
from rsrl_jax.engine import rsrl

FC_DIM = 64  # the tiny config's: its steps come compiled from the session's cache


def fc7_buffers() -> int:
    """Device buffers alive now holding an fc7 kernel of the tiny network (any fold axis)."""
    pointers = set()
    for array in jax.live_arrays():
        if array.shape in ((FC_DIM, FC_DIM), (1, FC_DIM, FC_DIM)):  # conv5's is 3x3xCxC
            pointers |= {shard.data.unsafe_buffer_pointer() for shard in array.addressable_shards}
    return len(pointers)


def test_each_round_trains_with_one_copy_of_the_networks(tmp_path, monkeypatch):
    config = tiny_config({"train.optimizer": "'sgd'"})  # 2 rounds, SGD with momentum
    assert config.model.fc_dim == FC_DIM
    before = fc7_buffers()  # other tests' networks still alive in this process, if any
    seen = []  # fc7 buffers alive at each train step
    fold_step = rsrl.Experiment.fold_step

    def counted_step(self, k):
        step = fold_step(self, k)

        def counted(*args):
            seen.append(fc7_buffers())
            return step(*args)

        return counted

    monkeypatch.setattr(rsrl.Experiment, "fold_step", counted_step)
    rsrl.run(config, str(tmp_path / "run"))
    # At every step of every round: the state's parameters and their momentum (SGD), nothing
    # else (not the start's parameters, not the round before's).
    steps = sum(r["steps"] for r in read_records(tmp_path / "run"))
    assert len(seen) == steps > 3 and set(seen) == {before + 2}
