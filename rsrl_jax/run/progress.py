"""Progress of a long loop as periodic log lines with rate and ETA.

Log lines rather than a terminal bar: runs go to log files and batch schedulers, where a
bar's carriage returns make a mess.
"""

import time

from absl import logging


class Progress:
    """Counts work done; logs `desc: done/total unit (pct), rate, ETA` every `interval_s`.

    With `enabled=False` it only keeps time and count (for a final summary line).
    """

    def __init__(
        self,
        desc: str,
        total: int,
        unit: str = "img",
        enabled: bool = True,
        interval_s: float = 10.0,
    ):
        self.desc, self.total, self.unit = desc, total, unit
        self.enabled, self.interval_s = enabled, interval_s
        self.done = 0
        self.start = self.last = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def rate(self) -> float:
        return self.done / max(self.elapsed, 1e-9)

    def line(self) -> str:
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        pct = 100.0 * self.done / max(self.total, 1)
        return (
            f"{self.desc}: {self.done}/{self.total} {self.unit} ({pct:.0f}%), "
            f"{rate:.1f} {self.unit}/s, ETA {eta:.0f}s"
        )

    def update(self, n: int = 1, extra: str = "") -> None:
        self.done += n
        now = time.perf_counter()
        if self.enabled and now - self.last >= self.interval_s and self.done < self.total:
            self.last = now
            logging.info("%s%s", self.line(), f" | {extra}" if extra else "")


def images_left(
    epochs: int, epoch_size: int, batch_size: int, start_epoch: int, start_batch: int
) -> int:
    """Images a round of `epochs` epochs still trains when it resumes after `start_batch`
    batches of epoch `start_epoch` (1-based; 0 batches = from the epoch's start).

    An epoch's last batch may be short: a finished epoch counts `epoch_size` images, not its
    batches times `batch_size`.
    """
    done_in_epoch = min(start_batch * batch_size, epoch_size)
    return (epochs - start_epoch + 1) * epoch_size - done_in_epoch


def rounds_status(done: int, rounds: int) -> str:
    """What a resumed run does after its first `done` >= 1 rounds, of `rounds` in all."""
    finished = "round 1 done" if done == 1 else f"rounds 1-{done} done"
    if done < rounds:
        return f"{finished}, resuming at round {done + 1}"
    share = "all of" if done == rounds else "more than"
    return f"{finished}, {share} rsrl.rounds={rounds}; nothing to train"
