"""Diversity of what the generator draws: distinct sources, AST skeletons, family shares.

Used by `//generator:audit` (the issue's 20,000-kernel targets), by its test, and by
`//tools:stats` on a written dataset. Everything here is spec + render only: no Warp.
"""

from __future__ import annotations

import ast
import collections

from generator.families import build_spec, families_for
from generator.render import render_source
from generator.spec import derive_seed
from generator.spec_walk import unused_args

TARGETS = {"distinct_sources": 0.999, "distinct_skeletons": 0.50, "family_skeletons_min": 0.20, "share_tolerance": 0.01,
           "unused_args_max": 0.03}


def skeleton(source: str) -> str:
    """The AST with every identifier and literal value abstracted (Warp builtin names kept)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            node.id = "_"
        elif isinstance(node, ast.arg):
            node.arg = "_"
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            node.name = "_"
        elif isinstance(node, ast.Constant):
            node.value = type(node.value).__name__
        elif isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name) and node.value.id == "wp"):
            node.attr = "_"  # struct field names are identifiers too
    return ast.dump(tree, annotate_fields=False)


def normalized_source(source: str, name: str) -> str:
    return source.replace(name, "K")


def drawn(target: str, count: int, seed: int = 0):
    """(family, spec, source) of the `count` kernels `//generator:<target>` draws from `seed`,
    in its plan's order (kernel k is of family k mod n)."""
    fams = families_for(target)
    for k in range(count):
        family = fams[k % len(fams)]
        spec = build_spec(family, derive_seed("kernel", seed, k))
        yield family, spec, render_source(spec)


def drawn_sources(target: str, count: int, seed: int = 0):
    return (src for _, _, src in drawn(target, count, seed))


def audit(target: str, count: int, seed: int = 0) -> dict:
    """Draw `count` kernels exactly as `//generator:<target>` plans them and measure them."""
    fams = families_for(target)
    per = collections.defaultdict(lambda: {"kernels": 0, "sources": set(), "skeletons": set(), "unused": 0})
    sources, skeletons = set(), set()
    for family, spec, src in drawn(target, count, seed):
        norm, skel = normalized_source(src, spec.name), skeleton(src)
        d = per[family]
        d["kernels"] += 1
        d["sources"].add(norm)
        d["skeletons"].add(skel)
        d["unused"] += bool(unused_args(spec))
        sources.add(norm)
        skeletons.add(skel)
    uniform = 1.0 / len(fams)
    families = {
        f: {"kernels": d["kernels"], "share": d["kernels"] / count,
            "distinct_sources": len(d["sources"]) / d["kernels"], "distinct_skeletons": len(d["skeletons"]) / d["kernels"],
            "unused_args": d["unused"] / d["kernels"]}
        for f, d in sorted(per.items())
    }
    result = {
        "target": target, "kernels": count, "seed": seed,
        "distinct_sources": len(sources) / count,
        "distinct_skeletons": len(skeletons) / count,
        # kernels with a parameter their body never names
        "unused_args": sum(d["unused"] for d in per.values()) / count,
        "families": families,
        # by construction here (kernel k is of family k mod n): reported, not a target; the share
        # that can fail is the one of a written dataset (`dataset_share_failures`)
        "max_share_deviation": max(abs(d["share"] - uniform) for d in families.values()),
    }
    result["failures"] = target_failures(result)
    return result


def dataset_share_failures(manifest: dict, tolerance: float = TARGETS["share_tolerance"]) -> list[str]:
    """Family shares of the pairs a run wrote (after every rejection and finding), against
    uniform over the run's families: a family that is rejected more often than the others
    shrinks, and that is what this catches."""
    fams = manifest["generator"]["families"]
    passed = {f: manifest["counts"]["by_family"].get(f, {}).get("passed", 0) for f in fams}
    total = sum(passed.values())
    if not total:
        return ["no pairs written"]
    return [f"{f}: share {n / total:.4f} of the written pairs deviates from uniform {1 / len(fams):.4f} by more than {tolerance}"
            for f, n in sorted(passed.items()) if abs(n / total - 1 / len(fams)) > tolerance]


def target_failures(r: dict) -> list[str]:
    t, out = TARGETS, []
    if r["distinct_sources"] < t["distinct_sources"]:
        out.append(f"distinct sources {r['distinct_sources']:.4f} < {t['distinct_sources']}")
    if r["distinct_skeletons"] < t["distinct_skeletons"]:
        out.append(f"distinct skeletons {r['distinct_skeletons']:.4f} < {t['distinct_skeletons']}")
    if r["unused_args"] > t["unused_args_max"]:
        out.append(f"kernels with an unused parameter {r['unused_args']:.4f} > {t['unused_args_max']}")
    for f, d in r["families"].items():
        if d["distinct_skeletons"] < t["family_skeletons_min"]:
            out.append(f"{f}: distinct skeletons {d['distinct_skeletons']:.4f} < {t['family_skeletons_min']}")
    return out
