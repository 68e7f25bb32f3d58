"""The report's PNG plots, drawn with matplotlib's Agg backend from the facts and the per-record
lengths. PNGs carry no Software or date metadata, so the same release gives the same bytes.

Every label from the release (a family, a reject reason) is untrusted: it is drawn literally
(`text.parse_math` off, so `$...$` is not TeX for matplotlib's mathtext; control characters
written as escapes by `schemas.files.quote`; cut to LABEL_CHARS), and a plot shows at most
`open_values.TOP` bars, so neither a TeX-like reason nor 20,000 of them can crash or swell it.
Matplotlib's warnings (a glyph missing from the font names the character) are not printed."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from report.measures import ir_fields  # noqa: E402
from report.open_values import TOP  # noqa: E402
from schemas.files import quote  # noqa: E402

LABEL_CHARS = 60

SPLIT_COLORS = {"train": "#4c72b0", "validation": "#dd8452", "test": "#55a868"}
FIELD_LABELS = {"source": "Python source", "ir_cpp_forward": "C++ forward", "ir_cpp_backward": "C++ backward",
                "ir_cuda_forward": "CUDA forward", "ir_cuda_backward": "CUDA backward"}


def label(field: str) -> str:
    return FIELD_LABELS.get(field) or (f"PTX {field[len('ptx_'):]}" if field.startswith("ptx_") else field)


def text(value) -> str:
    """An untrusted name as a plot label: literal (see the module's note), one line, cut."""
    return quote(value, LABEL_CHARS)


def _top(items: list, key, what: str) -> tuple[list, str]:
    """(at most TOP of `items`, the largest by `key` in their order, a title suffix when cut)."""
    if len(items) <= TOP:
        return items, ""
    keep = set(sorted(range(len(items)), key=lambda k: (-key(items[k]), k))[:TOP])
    return [x for k, x in enumerate(items) if k in keep], f" (top {TOP} of {len(items)} {what})"


def _save(fig, folder: str, name: str) -> str:
    fig.tight_layout()
    fig.savefig(os.path.join(folder, name), dpi=100, metadata={"Software": None})
    plt.close(fig)
    return name


def family_distribution(facts: dict, folder: str) -> str:
    fams = [(c, f, v) for c, cv in facts["counts"]["configs"].items() for f, v in cv["families"].items()]
    fams, cut = _top(fams, lambda x: x[2]["total"], "families")
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(fams) + 1.2))
    names = [f"{c}/{text(f)}" for c, f, _ in fams]
    left = [0] * len(fams)
    for split, color in SPLIT_COLORS.items():
        vals = [v[split] for _, _, v in fams]
        ax.barh(names, vals, left=left, color=color, label=split)
        left = [a + b for a, b in zip(left, vals)]
    ax.invert_yaxis()
    ax.set_xlabel("records")
    ax.set_title("Records per family and split" + cut)
    ax.legend(loc="lower right")
    return _save(fig, folder, "family_distribution.png")


def length_histograms(config: str, measured: dict, archs: list[str], folder: str) -> str:
    fields = ["source"] + ir_fields(archs)
    cols = 3
    rows = (len(fields) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3 * rows))
    axes = axes.flatten()
    for ax, field in zip(axes, fields):
        ax.hist(measured[config][field]["tokens"], bins=40, color="#4c72b0")
        ax.set_title(label(field))
        ax.set_xlabel("tokens (proxy)")
        ax.set_ylabel("records")
    for ax in axes[len(fields):]:
        ax.axis("off")
    fig.suptitle(f"Length per field, config {config}")
    return _save(fig, folder, f"lengths_{config}.png")


def reject_reasons(facts: dict, folder: str) -> str:
    bars = [(f"generation: {text(r)}", n) for r, n in facts["generation"]["reasons"].items()]
    bars += [(f"release: {text(r)}", n) for r, n in facts["dedup"]["removed"].items()]
    total = (facts["generation"]["reasons_distinct"] + len(facts["dedup"]["removed"])
             + facts["dedup"]["removed_more"])
    bars, _ = _top(bars, lambda b: b[1], "reasons")
    cut = f" (top {len(bars)} of {total})" if total > len(bars) else ""
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(bars) + 1.2))
    ax.barh([b[0] for b in bars], [b[1] for b in bars], color="#c44e52")
    for i, (_, n) in enumerate(bars):
        ax.text(n, i, f" {n}", va="center")
    ax.invert_yaxis()
    ax.set_xlabel("kernels")
    ax.set_title("Rejected at generation, removed at release, by reason" + cut)
    return _save(fig, folder, "reject_reasons.png")


def skeleton_diversity(facts: dict, folder: str) -> str:
    items = [(f"{c}/{text(f)}", v["skeleton_pct"] or 0, v["records"]) for c, cv in facts["diversity"]["configs"].items()
             for f, v in cv["families"].items()]
    items, cut = _top(items, lambda i: i[2], "families")
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(items) + 1.2))
    ax.barh([i[0] for i in items], [i[1] for i in items], color="#8172b3")
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("distinct AST skeletons, % of the family's records")
    ax.set_title("Structural diversity per family" + cut)
    return _save(fig, folder, "skeleton_diversity.png")


def ptx_size(facts: dict, rows: dict, measured: dict, folder: str) -> str:
    field = facts["ptx_by_family"]["field"]
    data, names = [], []
    for config in facts["release"]["configs"]:
        by = {}
        for r, n in zip(rows.get(config, []), measured[config][field]["lines"]):
            by.setdefault(r["family"], []).append(n)
        for fam in sorted(by):
            names.append(f"{config}/{text(fam)}")
            data.append(by[fam])
    keep, cut = _top(list(range(len(names))), lambda k: len(data[k]), "families")
    names, data = [names[k] for k in keep], [data[k] for k in keep]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(names) + 1.2))
    ax.boxplot(data, orientation="horizontal", showfliers=True)
    ax.set_yticks(range(1, len(names) + 1), names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel(f"{label(field)} lines (log scale)")
    ax.set_title("PTX size by family" + cut)
    return _save(fig, folder, "ptx_size.png")


def draw_all(facts: dict, rows: dict, measured: dict, folder: str) -> dict[str, str]:
    with _quiet():
        return _draw_all(facts, rows, measured, folder)


@contextlib.contextmanager
def _quiet():
    """Labels literal (no mathtext, no TeX), and matplotlib's warnings and log lines unprinted."""
    logger = logging.getLogger("matplotlib")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), plt.rc_context({"text.parse_math": False, "text.usetex": False}):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _draw_all(facts: dict, rows: dict, measured: dict, folder: str) -> dict[str, str]:
    plt.rcParams.update({"svg.hashsalt": "warp-ir", "font.size": 9})
    archs = facts["release"]["ptx_archs"]
    out = {"families": family_distribution(facts, folder), "rejects": reject_reasons(facts, folder),
           "diversity": skeleton_diversity(facts, folder), "ptx": ptx_size(facts, rows, measured, folder)}
    for config in facts["release"]["configs"]:
        out[f"lengths_{config}"] = length_histograms(config, measured, archs, folder)
    return out
