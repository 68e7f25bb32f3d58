"""Exact dedup (normalized source, then IR) and the MinHash near-duplicate audit of a release.

Exact dedup keeps, of every group of duplicates, the record that sorts first by
(target, family, seed, id, kernel_name) and counts each one it drops under its reason.
The near-duplicate audit removes nothing: it reports the pairs of kept records whose token
5-gram Jaccard similarity reaches the threshold (MinHash LSH finds candidates, the exact
Jaccard of the shingle sets confirms them), within a split and across splits. Both work on
small per-record entries, not records, so a release of any size fits in memory: the audit keeps
8 bytes per LSH band of each record and recomputes shingles for the candidate pairs only.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Callable

import numpy as np
from datasketch import MinHash, MinHashLSH

from generator.diversity import normalized_source
from schemas.dataset_format import REAL_CONFIG, canonical_json

NUM_PERM = 128
MINHASH_SEED = 1
SHINGLE = 5
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|\S")


def sort_key(r: dict) -> tuple:
    return (r["target"], r["family"], r["seed"], r["id"], r["kernel_name"])


def source_key(r: dict) -> bytes:
    """The sha256 of the source with the kernel's name normalized (a digest: an entry keeps it)."""
    return hashlib.sha256(normalized_source(r["source"], r["kernel_name"]).encode()).digest()


def ir_key(r: dict) -> bytes:
    """The sha256 of the IR with the kernel's name normalized (helpers and Warp's symbols carry it
    as a prefix)."""
    return hashlib.sha256(canonical_json(r["ir"]).replace(r["kernel_name"], "K").encode()).digest()


def _name(key: tuple) -> str:
    target, family, seed, rid, _ = key
    return f"{target}/{family}/seed={seed}/id={rid}"


def exact_dedup(entries: list) -> tuple[list, dict]:
    """(kept entries in sort order, the real config's first, {"removed": {reason: n}, "removed_by_config": {target: {reason: n}},
    "examples": {reason: [[dropped, kept]...]}}). An entry has `key` (its `sort_key`), `source_key`
    and `ir_key` (tools/release_inputs.py `Entry`)."""
    kept, by_source, by_ir = [], {}, {}
    removed = {"duplicate_source": 0, "duplicate_ir": 0}
    examples = {"duplicate_source": [], "duplicate_ir": []}
    by_config: dict[str, dict[str, int]] = {}
    # the real config's records come first: a real kernel's text is kept there and never in a synthetic config
    for e in sorted(entries, key=lambda e: (e.key[0] != REAL_CONFIG, e.key)):
        s = e.source_key
        if s in by_source:
            reason, first = "duplicate_source", by_source[s]
        else:
            i = e.ir_key
            if i in by_ir:
                reason, first = "duplicate_ir", by_ir[i]
            else:
                by_source[s] = by_ir[i] = e
                kept.append(e)
                continue
        removed[reason] += 1
        per = by_config.setdefault(e.key[0], {"duplicate_source": 0, "duplicate_ir": 0})
        per[reason] += 1
        if len(examples[reason]) < 10:
            examples[reason].append([_name(e.key), _name(first.key)])
    return kept, {"removed": removed, "removed_by_config": dict(sorted(by_config.items())), "examples": examples}


def shingles(source: str, kernel_name: str) -> set[str]:
    toks = _TOKEN.findall(normalized_source(source, kernel_name))
    return {" ".join(toks[i:i + SHINGLE]) for i in range(max(1, len(toks) - SHINGLE + 1))}


def signature(source: str, kernel_name: str) -> tuple[set[str], np.ndarray]:
    """The shingle set of a source and its MinHash values."""
    s = shingles(source, kernel_name)
    m = MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED)
    m.update_batch([x.encode() for x in sorted(s)])
    return s, m.hashvalues


def bands(hashvalues: np.ndarray, threshold: float) -> bytes:
    """The LSH bands of MinHash values (datasketch MinHashLSH's banding at `threshold`), each as
    an 8-byte digest: what a record keeps for the audit instead of its shingles and MinHash,
    which are recomputed for the candidate pairs only."""
    return b"".join(hashlib.blake2b(hashvalues[lo:hi].tobytes(), digest_size=8).digest()
                    for lo, hi in _hashranges(threshold))


@functools.lru_cache(maxsize=None)
def _hashranges(threshold: float) -> list[tuple[int, int]]:
    return MinHashLSH(threshold=threshold, num_perm=NUM_PERM).hashranges


def banding_problem(threshold: float) -> str | None:
    """Why the audit cannot band signatures at `threshold`, or None: MinHashLSH needs at least
    two bands of the NUM_PERM values, which it cannot cut near 1 (from about 0.981)."""
    try:
        _hashranges(threshold)
    except ValueError as e:
        return f"MinHash LSH over {NUM_PERM} permutations cannot band at this threshold ({e})"
    return None


def _candidates(band_keys: list[bytes], threshold: float) -> set[tuple[int, int]]:
    """Pairs (i < j) whose band digests agree in some band: a superset of MinHashLSH's
    candidates (a digest collision adds a pair, which `near_duplicates` drops)."""
    nb = len(_hashranges(threshold))
    keys = np.frombuffer(b"".join(band_keys), dtype=np.uint64).reshape(len(band_keys), nb)
    out = set()
    for b in range(nb):
        order = np.argsort(keys[:, b], kind="stable")
        col = keys[order, b]
        starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
        sizes = np.diff(np.r_[starts, len(col)])
        for lo, n in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist()):
            group = sorted(order[lo:lo + n].tolist())
            out.update((a, c) for k, a in enumerate(group) for c in group[k + 1:])
    return out


def near_duplicates(band_keys: list[bytes], splits: list[str], names: list[str],
                    load: Callable[[int], tuple[str, str]], threshold: float) -> dict:
    """Pairs of records with Jaccard >= threshold, counted within and across splits, and their
    clusters (connected components). Record i has the bands `band_keys[i]` (`bands` at this
    threshold), the split `splits[i]` and the name `names[i]`; `load(i)` gives its (source,
    kernel_name), read for candidate pairs only."""
    ranges = _hashranges(threshold)
    sig = functools.lru_cache(maxsize=64)(lambda i: signature(*load(i)))
    candidates = set()
    for i, j in _candidates(band_keys, threshold):
        hi, hj = sig(i)[1], sig(j)[1]
        if any(np.array_equal(hi[lo:up], hj[lo:up]) for lo, up in ranges):
            candidates.add((i, j))
    parent = list(range(len(band_keys)))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    within = across = estimated = 0
    cross_examples = []
    for i, j in sorted(candidates):
        (si, hi), (sj, hj) = sig(i), sig(j)
        if float(np.count_nonzero(hi == hj)) / float(NUM_PERM) >= threshold:  # MinHash.jaccard
            estimated += 1
        jac = len(si & sj) / len(si | sj)
        if jac < threshold:
            continue
        parent[find(i)] = find(j)
        if splits[i] == splits[j]:
            within += 1
        else:
            across += 1
            if len(cross_examples) < 10:
                cross_examples.append({"a": names[i], "split_a": splits[i], "b": names[j], "split_b": splits[j],
                                       "jaccard": round(jac, 4)})
    sizes: dict[int, int] = {}
    for i in range(len(band_keys)):
        sizes[find(i)] = sizes.get(find(i), 0) + 1
    clusters = [n for n in sizes.values() if n > 1]
    return {
        "method": f"MinHash LSH ({NUM_PERM} permutations, seed {MINHASH_SEED}) over token {SHINGLE}-grams "
                  "of the normalized source; candidates confirmed by exact Jaccard",
        "threshold": threshold,
        "candidate_pairs": len(candidates),
        "minhash_estimated_pairs": estimated,
        "pairs": within + across,
        "within_split_pairs": within,
        "cross_split_pairs": across,
        "clusters": len(clusters),
        "records_in_clusters": sum(clusters),
        "largest_cluster": max(clusters, default=0),
        "cross_split_examples": cross_examples,
    }
