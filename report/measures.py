"""How the report measures a release's text: lines, a token proxy, nearest-rank percentiles, and
the fields each measurement and each training task covers.

The token proxy is the count of regex `TOKEN_PROXY` matches (identifier/number runs and single
punctuation characters; no tokenizer is assumed). Percentiles are nearest-rank, so each is a
value some record has.
"""

from __future__ import annotations

import math
import re

TOKEN_PROXY = r"\w+|[^\w\s]"
_TOKEN = re.compile(TOKEN_PROXY)
PERCENTILES = (50, 90, 99)
IO_FIELDS = ("inputs", "outputs")


def ir_fields(archs: list[str]) -> list[str]:
    return (["ir_cpp_forward", "ir_cpp_backward", "ir_cuda_forward", "ir_cuda_backward"]
            + [f"ptx_{a}" for a in sorted(archs)])


def measured_fields(archs: list[str]) -> list[str]:
    """The fields whose chars, lines and tokens are measured per record (for facts and plots)."""
    return ["source"] + ir_fields(archs) + list(IO_FIELDS)


def tasks(archs: list[str]) -> dict[str, list[str]]:
    """Training tasks and the fields one example of each holds (the prompt and the answer)."""
    ptx = f"ptx_{sorted(archs)[0]}"
    return {"python_to_cpp_forward": ["source", "ir_cpp_forward"],
            "python_to_cpp_forward_backward": ["source", "ir_cpp_forward", "ir_cpp_backward"],
            "python_to_cuda_forward": ["source", "ir_cuda_forward"],
            "python_to_cuda_forward_backward": ["source", "ir_cuda_forward", "ir_cuda_backward"],
            f"python_to_{ptx}": ["source", ptx],
            "execution_prediction": ["source", "inputs", "outputs"]}


def tokens(text: str) -> int:
    """Matches of TOKEN_PROXY; a large cell's are counted without a list of them."""
    if len(text) <= 1 << 16:
        return len(_TOKEN.findall(text))
    n = 0
    for _ in _TOKEN.finditer(text):
        n += 1
    return n


def lines(text: str) -> int:
    """Lines as an editor counts them: a final newline ends the last line, it does not start one."""
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def percentile(values: list[int], p: int) -> int:
    """Nearest-rank percentile of integers (a value that occurs)."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def summary(values: list[int]) -> dict:
    out = {f"p{p}": percentile(values, p) for p in PERCENTILES}
    out["max"] = max(values)
    return out


def pct(a: int, b: int) -> float | None:
    return round(100 * a / b, 1) if b else None


def pct_f(a: float, b: float | None) -> float | None:
    return round(100 * a / b, 1) if b and math.isfinite(100 * a / b) else None


def next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())
