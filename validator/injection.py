"""An injected fault (`Injection`: the faulty line, the reason key the validator must give, what
was done), the line encoding that lets a fault hold NaN (`dump`), and the path helpers every
injection uses to edit its deep copy of a record (validator/faults.py, inject_*.py).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from schemas.dataset_format import canonical_json


class Injection(NamedTuple):
    line: str  # the faulty JSONL line, without its newline
    expected: str  # the reason key (text before the first ':') the validator must give
    detail: str  # what was done, for the report


def dump(rec) -> str:
    """One JSONL line in the canonical encoding, but NaN is allowed (it is a fault here)."""
    return canonical_json(rec, allow_nan=True)


def leaf_paths(data, path=()) -> list[tuple]:
    """Index paths to every scalar in a (nested) list; () for a bare scalar."""
    if isinstance(data, list):
        return [p for k, x in enumerate(data) for p in leaf_paths(x, path + (k,))]
    return [path]


def get_at(obj, path):
    for k in path:
        obj = obj[k]
    return obj


def set_at(obj, path, value):
    if not path:
        raise ValueError("empty path")
    get_at(obj, path[:-1])[path[-1]] = value


def delete_at(obj, path):
    del get_at(obj, path[:-1])[path[-1]]


def path_text(path) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path)


def tensor_element(rec, rng, float_only=False):
    """A random element of a random output tensor: (name, tensor, index path) or None."""
    outs = [(n, t) for n, t in sorted(rec["io"]["outputs"].items())
            if not float_only or t["dtype"].startswith("float")]
    outs = [(n, t) for n, t in outs if leaf_paths(t["data"])]
    if not outs:
        return None
    name, t = rng.choice(outs)
    return name, t, rng.choice(leaf_paths(t["data"]))


def element_set(t, path, value):
    if path:
        set_at(t["data"], path, value)
    else:
        t["data"] = value


def as_stored(value, dtype: str):
    """What the validator reads back for `value` in a tensor of `dtype`."""
    return np.array([value], dtype=dtype)[0]
