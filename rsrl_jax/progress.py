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
