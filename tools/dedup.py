"""Exact dedup (normalized source, then IR) and the MinHash near-duplicate audit of a release.

Exact dedup keeps, of every group of duplicates, the record that sorts first by
(target, family, seed, id, kernel_name) and counts each one it drops under its reason.
The near-duplicate audit removes nothing: it reports the pairs of kept records whose token
5-gram Jaccard similarity reaches the threshold (MinHash LSH finds candidates, the exact
Jaccard of the shingle sets confirms them), within a split and across splits.
"""

from __future__ import annotations

import hashlib
import re

from datasketch import MinHash, MinHashLSH

from generator.diversity import normalized_source
from schemas.dataset_format import canonical_json

NUM_PERM = 128
MINHASH_SEED = 1
SHINGLE = 5
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|\S")


def sort_key(r: dict) -> tuple:
    return (r["target"], r["family"], r["seed"], r["id"], r["kernel_name"])


def source_key(r: dict) -> str:
    return hashlib.sha256(normalized_source(r["source"], r["kernel_name"]).encode()).hexdigest()


def ir_key(r: dict) -> str:
    """The IR with the kernel's name normalized (helpers and Warp's symbols carry it as a prefix)."""
    return hashlib.sha256(canonical_json(r["ir"]).replace(r["kernel_name"], "K").encode()).hexdigest()


def _name(r: dict) -> str:
    return f"{r['target']}/{r['family']}/seed={r['seed']}/id={r['id']}"


def exact_dedup(records: list[dict]) -> tuple[list[dict], dict]:
    """(kept records in sort order, {"removed": {reason: n}, "removed_by_config": {target: {reason: n}},
    "examples": {reason: [[dropped, kept]...]}})."""
    kept, by_source, by_ir = [], {}, {}
    removed = {"duplicate_source": 0, "duplicate_ir": 0}
    examples = {"duplicate_source": [], "duplicate_ir": []}
    by_config: dict[str, dict[str, int]] = {}
    for r in sorted(records, key=sort_key):
        s = source_key(r)
        if s in by_source:
            reason, first = "duplicate_source", by_source[s]
        else:
            i = ir_key(r)
            if i in by_ir:
                reason, first = "duplicate_ir", by_ir[i]
            else:
                by_source[s] = by_ir[i] = r
                kept.append(r)
                continue
        removed[reason] += 1
        per = by_config.setdefault(r["target"], {"duplicate_source": 0, "duplicate_ir": 0})
        per[reason] += 1
        if len(examples[reason]) < 10:
            examples[reason].append([_name(r), _name(first)])
    return kept, {"removed": removed, "removed_by_config": dict(sorted(by_config.items())), "examples": examples}


def shingles(source: str, kernel_name: str) -> set[str]:
    toks = _TOKEN.findall(normalized_source(source, kernel_name))
    return {" ".join(toks[i:i + SHINGLE]) for i in range(max(1, len(toks) - SHINGLE + 1))}


def near_duplicates(records: list[dict], splits: list[str], threshold: float) -> dict:
    """Pairs of records with Jaccard >= threshold, counted within and across splits, and their
    clusters (connected components). `splits[i]` is the split of `records[i]`."""
    sets = [shingles(r["source"], r["kernel_name"]) for r in records]
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    hashes = []
    for i, s in enumerate(sets):
        m = MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED)
        m.update_batch([x.encode() for x in sorted(s)])
        hashes.append(m)
        lsh.insert(i, m)
    candidates = set()
    for i, m in enumerate(hashes):
        for j in lsh.query(m):
            if j != i:
                candidates.add((min(i, j), max(i, j)))
    parent = list(range(len(records)))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    within = across = estimated = 0
    cross_examples = []
    for i, j in sorted(candidates):
        if hashes[i].jaccard(hashes[j]) >= threshold:
            estimated += 1
        jac = len(sets[i] & sets[j]) / len(sets[i] | sets[j])
        if jac < threshold:
            continue
        parent[find(i)] = find(j)
        if splits[i] == splits[j]:
            within += 1
        else:
            across += 1
            if len(cross_examples) < 10:
                cross_examples.append({"a": f"{records[i]['target']}/{records[i]['id']}", "split_a": splits[i],
                                       "b": f"{records[j]['target']}/{records[j]['id']}", "split_b": splits[j],
                                       "jaccard": round(jac, 4)})
    sizes: dict[int, int] = {}
    for i in range(len(records)):
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
