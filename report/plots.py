"""The report's PNG plots, drawn with matplotlib's Agg backend from the facts and the per-record
lengths. PNGs carry no Software or date metadata, so the same release gives the same bytes."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from report.facts import ir_fields  # noqa: E402

SPLIT_COLORS = {"train": "#4c72b0", "validation": "#dd8452", "test": "#55a868"}
FIELD_LABELS = {"source": "Python source", "ir_cpp_forward": "C++ forward", "ir_cpp_backward": "C++ backward",
                "ir_cuda_forward": "CUDA forward", "ir_cuda_backward": "CUDA backward"}


def label(field: str) -> str:
    return FIELD_LABELS.get(field) or (f"PTX {field[len('ptx_'):]}" if field.startswith("ptx_") else field)


def _save(fig, folder: str, name: str) -> str:
    fig.tight_layout()
    fig.savefig(os.path.join(folder, name), dpi=100, metadata={"Software": None})
    plt.close(fig)
    return name


def family_distribution(facts: dict, folder: str) -> str:
    fams = [(c, f, v) for c, cv in facts["counts"]["configs"].items() for f, v in cv["families"].items()]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(fams) + 1.2))
    names = [f"{c}/{f}" for c, f, _ in fams]
    left = [0] * len(fams)
    for split, color in SPLIT_COLORS.items():
        vals = [v[split] for _, _, v in fams]
        ax.barh(names, vals, left=left, color=color, label=split)
        left = [a + b for a, b in zip(left, vals)]
    ax.invert_yaxis()
    ax.set_xlabel("records")
    ax.set_title("Records per family and split")
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
    bars = [(f"generation: {r}", n) for r, n in facts["generation"]["reasons"].items()]
    bars += [(f"release: {r}", n) for r, n in facts["dedup"]["removed"].items()]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(bars) + 1.2))
    ax.barh([b[0] for b in bars], [b[1] for b in bars], color="#c44e52")
    for i, (_, n) in enumerate(bars):
        ax.text(n, i, f" {n}", va="center")
    ax.invert_yaxis()
    ax.set_xlabel("kernels")
    ax.set_title("Rejected at generation, removed at release, by reason")
    return _save(fig, folder, "reject_reasons.png")


def skeleton_diversity(facts: dict, folder: str) -> str:
    items = [(f"{c}/{f}", v["skeleton_pct"] or 0) for c, cv in facts["diversity"]["configs"].items()
             for f, v in cv["families"].items()]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(items) + 1.2))
    ax.barh([i[0] for i in items], [i[1] for i in items], color="#8172b3")
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("distinct AST skeletons, % of the family's records")
    ax.set_title("Structural diversity per family")
    return _save(fig, folder, "skeleton_diversity.png")


def ptx_size(facts: dict, rows: dict, measured: dict, folder: str) -> str:
    field = facts["ptx_by_family"]["field"]
    data, names = [], []
    for config in facts["release"]["configs"]:
        by = {}
        for r, n in zip(rows.get(config, []), measured[config][field]["lines"]):
            by.setdefault(r["family"], []).append(n)
        for fam in sorted(by):
            names.append(f"{config}/{fam}")
            data.append(by[fam])
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(names) + 1.2))
    ax.boxplot(data, orientation="horizontal", showfliers=True)
    ax.set_yticks(range(1, len(names) + 1), names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel(f"{label(field)} lines (log scale)")
    ax.set_title("PTX size by family")
    return _save(fig, folder, "ptx_size.png")


def draw_all(facts: dict, rows: dict, measured: dict, folder: str) -> dict[str, str]:
    plt.rcParams.update({"svg.hashsalt": "warp-ir", "font.size": 9})
    archs = facts["release"]["ptx_archs"]
    out = {"families": family_distribution(facts, folder), "rejects": reject_reasons(facts, folder),
           "diversity": skeleton_diversity(facts, folder), "ptx": ptx_size(facts, rows, measured, folder)}
    for config in facts["release"]["configs"]:
        out[f"lengths_{config}"] = length_histograms(config, measured, archs, folder)
    return out
