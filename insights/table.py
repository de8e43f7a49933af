"""Every customer's features, read once from SQL and kept on disk, not in memory.

A model run needs the features of each customer more than once (fit on a sample, then
label, score or describe everyone), and a tenant of a million customers has a feature
matrix of about a gigabyte. `FeatureTable.read` streams the blocks of `features.extract_all`
into an anonymous spill file (unlinked at creation: it vanishes with the process and no
other tenant's run can open it); `blocks()` reads them back one at a time and `rows()`
gathers a sample. What stays in memory is one block, the sample and the ids (8 bytes a
customer) — bounded whatever the tenant's size.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime

import numpy as np
from django.conf import settings

from insights.features import Feature, extract_all

DTYPE = np.float64


class FeatureTable:
    def __init__(self, features: list[Feature], spill, ids: np.ndarray, starts: np.ndarray):
        self.features = features
        self.ids = ids
        self._spill = spill
        self._starts = starts  # row where each block starts; the last entry is the row count

    @classmethod
    def read(cls, features: list[Feature], *, now: datetime, customer_ids: np.ndarray | None = None,
             progress=None) -> FeatureTable:
        spill = tempfile.TemporaryFile(prefix="strata-features-", dir=settings.INSIGHTS_SPILL_DIR)
        ids, starts = [], [0]
        try:
            for block in extract_all(features, now=now, customer_ids=customer_ids, progress=progress):
                spill.write(np.ascontiguousarray(block.values, dtype=DTYPE).tobytes())
                ids.append(block.ids)
                starts.append(starts[-1] + len(block.ids))
        except BaseException:
            spill.close()
            raise
        spill.flush()
        return cls(features, spill, np.concatenate(ids) if ids else np.array([], dtype=np.int64), np.array(starts))

    def __len__(self) -> int:
        return len(self.ids)

    def __enter__(self) -> FeatureTable:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._spill.close()

    def column(self, name: str) -> int:
        return [f.name for f in self.features].index(name)

    def blocks(self) -> Iterator[tuple[slice, np.ndarray]]:
        """(rows, values) of each block in order: `self.ids[rows]` are its customers."""
        for start, end in zip(self._starts[:-1].tolist(), self._starts[1:].tolist()):
            yield slice(start, end), self._read(start, end)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The values of the rows at `positions` (ascending), a block read at a time."""
        positions = np.asarray(positions, dtype=np.int64)
        out = np.empty((len(positions), len(self.features)), dtype=DTYPE)
        block_of = np.searchsorted(self._starts, positions, side="right") - 1
        for block in np.unique(block_of).tolist():
            start, end = int(self._starts[block]), int(self._starts[block + 1])
            mine = block_of == block
            out[mine] = self._read(start, end)[positions[mine] - start]
        return out

    def _read(self, start: int, end: int) -> np.ndarray:
        width = len(self.features)
        self._spill.seek(start * width * DTYPE().itemsize)
        data = np.fromfile(self._spill, dtype=DTYPE, count=(end - start) * width)
        return data.reshape(end - start, width)


def draw(pool: int | np.ndarray, size: int, *, seed: int) -> np.ndarray:
    """At most `size` of `pool` (positions 0..pool−1, or the given ones), drawn without
    replacement with a seed, ascending — the order `FeatureTable.rows` reads."""
    pool = np.arange(pool) if isinstance(pool, int) else np.asarray(pool, dtype=np.int64)
    if len(pool) <= size:
        return np.sort(pool)
    return np.sort(np.random.default_rng(seed).choice(pool, size, replace=False))
