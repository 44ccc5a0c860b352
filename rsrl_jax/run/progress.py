"""Progress of a long loop as periodic log lines with rate and ETA.

Log lines rather than a terminal bar: runs go to log files and batch schedulers, where a
bar's carriage returns make a mess.
"""

import time

from absl import logging


class Progress:
    """Counts work done; logs `desc: done/total unit (pct), rate, ETA` every `interval_s`.

    The first update's work (the first step: where XLA compiles) is timed apart: the rate and
    ETA are those of the steps after it, so the first estimate leaves compile time out (it
    said 13,457 s for a round of 275 s when it did not). Until a second update there is no
    rate, and no line is logged. With `enabled=False` it only keeps time and count (for a
    final summary line).
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
        self.first_s = None  # seconds to the first update (compiling included)
        self._steady = None  # (time, done) after the first update
        self._first_told = False

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def rate(self) -> float:
        """Units a second since the first update (over the whole time until there is one)."""
        if self._steady is None or self.done == self._steady[1]:
            return self.done / max(self.elapsed, 1e-9)
        at, done = self._steady
        return (self.done - done) / max(time.perf_counter() - at, 1e-9)

    def figures(self) -> str:
        """`done/total unit (pct), rate unit/s, ETA s` (the first time after the first step,
        with that step's seconds: compiling)."""
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        pct = 100.0 * self.done / max(self.total, 1)
        text = (
            f"{self.done}/{self.total} {self.unit} ({pct:.0f}%), {rate:.1f} {self.unit}/s, "
            f"ETA {eta:.0f}s"
        )
        if self.first_s is not None and not self._first_told and self.done < self.total:
            self._first_told = True
            text += f" (first step {self.first_s:.1f}s, compiling)"
        return text

    def line(self) -> str:
        return f"{self.desc}: {self.figures()}"

    def mark(self) -> None:
        """Another line just told the progress (an epoch's): the next is due `interval_s`
        from now."""
        self.last = time.perf_counter()

    def update(self, n: int = 1, extra: str = "") -> None:
        now = time.perf_counter()
        if self._steady is None:
            self.first_s = now - self.start
            self.done += n
            self._steady = (now, self.done)
            return
        self.done += n
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
