"""Progress of a run on standard error: a bar whose clock runs on a terminal, a line per tenth of the work otherwise."""

from __future__ import annotations

import sys
import threading
import time

TICK_SECONDS = 1.0


class Progress:
    """Progress on standard error: a bar on a terminal, a line per tenth of the work otherwise."""

    def __init__(self, name: str, total: int, done: int, quiet: bool):
        self.total = total
        self.done = done
        self.started = time.perf_counter()
        self.fresh = 0
        self.quiet = quiet
        self.bar = None
        self.next_line = self.done + max(self.total // 10, 1)
        if quiet:
            return
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.total, initial=self.done, unit="rep", desc=name, smoothing=0.1, file=sys.stderr
            )
            self._ticking = threading.Event()
            self._ticker = threading.Thread(target=self._tick, name="progress-clock", daemon=True)
            self._ticker.start()
        elif self.done:
            print(f"{name}: resuming, {self.done} of {self.total} replicates already done", file=sys.stderr, flush=True)

    def advance(self, count: int) -> None:
        self.done += count
        self.fresh += count
        if self.bar is not None:
            self.bar.update(count)
        elif not self.quiet and (self.done >= self.next_line or self.done == self.total):
            rate = self.fresh / max(time.perf_counter() - self.started, 1e-9)
            print(f"{self.done}/{self.total} replicates ({rate:.3g} per second)", file=sys.stderr, flush=True)
            self.next_line = self.done + max(self.total // 10, 1)

    def _tick(self) -> None:
        """Redraw the bar every second, so that its clock runs while the first unit compiles or computes."""
        while not self._ticking.wait(TICK_SECONDS):
            bar = self.bar
            if bar is not None:
                bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self._ticking.set()
            self._ticker.join()
            self.bar.close()
            self.bar = None
