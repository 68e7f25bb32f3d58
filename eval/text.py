"""Text measures of an answer and the pass@k estimator.

- `unfence`: a model's answer wrapped in one Markdown code fence (```python ... ```) is read
  without it; nothing else is stripped.
- Name cleaning (`cleaned`), applied to the answer and the reference alike before they are
  compared: every occurrence of the record's kernel name is replaced by `kernel` (Warp builds its
  C++ symbols, struct and helper names from it, so this is the release's dedup normalisation),
  line ends become `\\n` and trailing spaces are dropped from every line and the end.
- `exact_match`: the cleaned texts are equal.
- `edit_similarity`: 1 - (Levenshtein distance between the cleaned texts' tokens) / (the longer
  token count), tokens being the matches of `\\w+|[^\\w\\s]` (the report's token proxy); 1.0 for two
  empty texts.
"""

from __future__ import annotations

import math
import re

import numpy as np

PLACEHOLDER = "kernel"
_TOKEN = re.compile(r"\w+|[^\w\s]")
TOKEN = _TOKEN  # the token proxy, for the retrieval baseline (eval/baseline.py)
_FENCE = re.compile(r"\A\s*```[^\n`]*\n(.*?)\n?```\s*\Z", re.S)


def unfence(text: str) -> str:
    m = _FENCE.match(text)
    return m.group(1) if m else text


def cleaned(text: str, kernel_name: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if kernel_name:
        text = text.replace(kernel_name, PLACEHOLDER)
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip()


def exact_match(answer: str, reference: str, kernel_name: str) -> bool:
    return cleaned(answer, kernel_name) == cleaned(reference, kernel_name)


def levenshtein(a: list, b: list) -> int:
    """Edit distance (insert, delete, substitute, each 1) between two token lists; one NumPy row
    per token of `a` (the insertions along a row are a running minimum)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    vocab: dict = {}
    bi = np.array([vocab.setdefault(t, len(vocab)) for t in b])
    idx = np.arange(len(b) + 1)
    row = idx.copy()
    for t in a:
        code = vocab.get(t, -1)
        sub = row[:-1] + (bi != code)
        new = np.empty_like(row)
        new[0] = row[0] + 1
        new[1:] = np.minimum(row[1:] + 1, sub)
        row = np.minimum.accumulate(new - idx) + idx  # new[j] = min(new[j], new[j-1] + 1)
    return int(row[-1])


def edit_similarity(answer: str, reference: str, kernel_name: str) -> float:
    a = _TOKEN.findall(cleaned(answer, kernel_name))
    b = _TOKEN.findall(cleaned(reference, kernel_name))
    if not a and not b:
        return 1.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimator of pass@k from n samples of which c are correct (Chen et al. 2021,
    "Evaluating Large Language Models Trained on Code", eq. 1): 1 - C(n-c, k) / C(n, k), computed
    as a product so that large n does not overflow."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))
