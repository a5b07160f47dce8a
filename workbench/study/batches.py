"""Finished units, held until the chunk of the store that they share is whole, then written together.

A chunk of the store's arrays holds `units_per_chunk` consecutive units of a point. Writing
each unit as it finishes would rewrite every chunk file once per unit; holding the units of
a chunk until all of them are finished (or were finished by an earlier run) writes each file
once. A run that stops early — an error, Ctrl-C — writes what it holds (`flush`), so that it
loses no finished unit; only a kill loses the units held, at most a chunk's worth.
"""

from __future__ import annotations

import numpy as np

from workbench.study.store import ReplicateStore


class UnitBatches:
    """Collects finished units by the chunk of `store` they fall in and writes each chunk when it is whole."""

    def __init__(self, store: ReplicateStore, replicates: int, done: set[tuple[int, int]]):
        self.store = store
        self.size = store.chunk_size()
        self.per = store.units_per_chunk()
        self.nunits = -(-replicates // self.size)
        self.done = set(done)
        self.held: dict[tuple[int, int], dict[int, dict[str, np.ndarray]]] = {}

    def add(self, point: int, unit: int, results: dict[str, np.ndarray]) -> None:
        """Hold one finished unit; write its chunk if every unit of that chunk is now finished."""
        key = (point, unit // self.per)
        held = self.held.setdefault(key, {})
        held[unit] = results
        first = key[1] * self.per
        if all(u in held or (point, u) in self.done for u in range(first, min(first + self.per, self.nunits))):
            self._write(key)

    def flush(self) -> None:
        """Write every unit held, into chunks that other units will complete later."""
        for key in list(self.held):
            self._write(key)

    def _write(self, key: tuple[int, int]) -> None:
        units = self.held.pop(key)
        self.store.write_units(key[0], units)
        self.done.update((key[0], unit) for unit in units)
