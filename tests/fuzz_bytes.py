"""Byte-level mutation of valid files, for the loader fuzz tests."""

import numpy as np


def mutate(seed: bytes, rng: np.random.Generator, max_run: int = 16) -> bytes:
    """``seed`` with 1-3 random edits: a byte replaced, up to ``max_run`` bytes cut, or up to
    ``max_run`` random bytes inserted."""
    b = bytearray(seed)
    for _ in range(int(rng.integers(1, 4))):
        pos = int(rng.integers(0, len(b)))
        op = rng.integers(0, 3)
        if op == 0:
            b[pos] = int(rng.integers(0, 256))
        elif op == 1:
            del b[pos : pos + int(rng.integers(1, max_run))]
        else:
            noise = rng.integers(0, 256, int(rng.integers(1, max_run))).astype(np.uint8)
            b[pos:pos] = noise.tobytes()
    return bytes(b)
