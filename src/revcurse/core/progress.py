"""Progress lines for the jobs' logs: work done, time so far and the estimated time left."""
from __future__ import annotations

import time


class Progress:
    """A job that does ``total`` units of work (samples, queries, ...): ``line(done)`` after each part."""

    def __init__(self, total: int):
        self.total, self.started = total, time.perf_counter()

    def line(self, done: int) -> str:
        """E.g. "2600/5200 (50%), 12.0 s, ETA 0.2 min": the rest at the rate so far."""
        elapsed = time.perf_counter() - self.started
        eta = elapsed * (self.total - done) / done if done else float("nan")
        return f"{done}/{self.total} ({100 * done / self.total:.0f}%), {elapsed:.1f} s, ETA {eta / 60:.1f} min"
