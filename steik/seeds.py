"""The range of seeds every generator of the pipeline accepts, checked where a seed comes in.

Training seeds torch generators with `seed` and `seed + 1`, evaluation seeds numpy, and both
store the seed in int64 Parquet columns and model files; torch refuses integers beyond 64 bits
with a bare `Overflow when unpacking long long`. One limit, checked up front, keeps every stage
able to take the seed it is given.
"""

from __future__ import annotations

from steik.errors import SteikError

SEED_LIMIT = 2**63 - 1
"""Seeds lie in [0, SEED_LIMIT): `seed + 1` still fits a signed 64-bit integer."""


def check_seed(seed: int, flag: str = "--seed") -> int:
    """Return `seed` if it lies in [0, SEED_LIMIT); else a SteikError naming `flag`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise SteikError(f"{flag} must be a whole number in [0, 2^63 - 1), got {seed!r}")
    return seed
