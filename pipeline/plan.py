"""The plan of a run: kernel k -> (family, seed), fixed chunks of kernel indices, and when a
run stops drawing kernels.

Chunk c holds the kernel indices [c*CHUNK, (c+1)*CHUNK); kernel k's (family, seed) depends only
on (run seed, k). So the records do not depend on the executor or its number of workers, and a
killed run resumes by skipping complete chunks.
"""

from __future__ import annotations

import math

from generator.spec import derive_seed

CHUNK = 50
# The attempt cap: a run stops drawing kernels once it has drawn max(ATTEMPT_FACTOR * count,
# ATTEMPT_FLOOR) of them, or once ZERO_PASS_CHUNKS consecutive chunks passed nothing; it then
# writes what it has (shards, manifest with every reject and its reason) and fails (RunStopped).
ATTEMPT_FACTOR = 3
ATTEMPT_FLOOR = 10 * CHUNK
ZERO_PASS_CHUNKS = 4


def kernel_plan(seed: int, families: list[str], index: int) -> tuple[str, int]:
    """Kernel `index` of a run: its family (uniform, round robin over `families`) and its seed."""
    return families[index % len(families)], derive_seed("kernel", seed, index)


def chunk_indices(c: int) -> range:
    return range(c * CHUNK, (c + 1) * CHUNK)


def attempt_cap_chunks(count: int) -> int:
    """How many chunks a run for `count` pairs may draw at most."""
    return math.ceil(max(ATTEMPT_FACTOR * count, ATTEMPT_FLOOR) / CHUNK)


def zero_pass_streak(done: dict[int, dict]) -> bool:
    """Whether ZERO_PASS_CHUNKS consecutive chunks (by index) are done and passed nothing."""
    zero = {c for c, st in done.items() if not any(o["status"] == "passed" for o in st["outcomes"])}
    return any(all(c + j in zero for j in range(ZERO_PASS_CHUNKS)) for c in zero)
