"""The scores of many verdicts: per task and per task and family, and the Markdown table.

Per group: `n` prompts (rows of the split; a prompt without a prediction is `missing` and counts
as wrong), `samples` (answers judged, missing prompts counted as one), `parsed`, `compiled` and
`exact_match` as fractions of the samples, `judged` (the fraction of samples whose correctness
could be decided: a CUDA answer is compiled only, a backward of a kernel without float arrays has
no gradient), `correct` as a fraction of the judged samples, the mean `edit_similarity`,
`pass_at_1` (the mean over prompts with judged samples of correct samples / judged samples) and
`pass_at_k` (Chen et al.'s unbiased estimator, mean over the same prompts; k is the report's). A
measure judged for no sample of the group is "not_run"; `compiled` of the outputs task is null
(nothing is compiled)."""

from __future__ import annotations

from eval.text import pass_at_k

NOT_RUN = "not_run"


def group(items: list[dict], k: int) -> dict:
    """`items`: [{"samples": [verdict dict, ...], "missing": bool}] of one group."""
    samples = [s for it in items for s in it["samples"]]
    out = {"n": len(items), "samples": len(samples), "missing": sum(it["missing"] for it in items)}
    for m in ("parsed", "compiled"):
        values = [s[m] for s in samples]
        if all(v is None for v in values):
            out[m] = None if m == "compiled" and any(s["parsed"] is not None for s in samples) else NOT_RUN
        else:
            out[m] = _fraction(sum(v is True for v in values), len(values))
    judged = [s for s in samples if s["correct"] is not None]
    out["judged"] = _fraction(len(judged), len(samples))
    out["correct"] = _fraction(sum(s["correct"] is True for s in judged), len(judged)) if judged else NOT_RUN
    decided = [[s for s in it["samples"] if s["correct"] is not None] for it in items]
    decided = [d for d in decided if d]
    if decided:
        out["pass_at_1"] = round(sum(_correct(d) / len(d) for d in decided) / len(decided), 6)
        out["pass_at_k"] = round(sum(pass_at_k(len(d), _correct(d), min(k, len(d))) for d in decided)
                                 / len(decided), 6)
    else:
        out["pass_at_1"] = out["pass_at_k"] = NOT_RUN
    out["exact_match"] = _fraction(sum(bool(s["exact_match"]) for s in samples), len(samples))
    out["edit_similarity"] = round(sum(s["edit_similarity"] for s in samples) / len(samples), 6) if samples else 0.0
    return out


def _correct(samples: list[dict]) -> int:
    return sum(s["correct"] is True for s in samples)


def _fraction(a: int, b: int) -> float:
    return round(a / b, 6) if b else 0.0


def table(tasks: dict) -> str:
    """The Markdown table of the per-task scores (and each family under its task)."""
    cols = ("n", "parsed", "compiled", "judged", "correct", "pass_at_1", "pass_at_k", "exact_match", "edit_similarity")
    lines = ["| task | family | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]
    for name, t in tasks.items():
        for fam, g in [("all", t["all"])] + sorted(t["families"].items()):
            lines.append(f"| {name} | {fam} | " + " | ".join(_cell(g[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)
