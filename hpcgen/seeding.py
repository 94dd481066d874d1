"""Random streams: every entry point takes a seed; rank r of a run uses a stream derived from (seed, r).

Streams come from ``numpy.random.SeedSequence(seed, spawn_key=(rank, ...))`` so that different ranks (and
different chunks of one rank) never share a stream, and a 2-rank run is reproducible bit for bit.
"""

from __future__ import annotations

import numpy as np


def stream(seed: int, *key: int) -> np.random.Generator:
    """A PCG64 generator for (seed, *key), e.g. ``stream(seed, rank)`` or ``stream(seed, rank, chunk)``."""
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))))
