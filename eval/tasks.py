"""The tasks a model is scored on, in one place: what a prompt shows of a release row and what the
reference answer is.

- python_to_cpp, python_to_cuda: the Python source -> the forward function Warp generates for the
  CPU (C++) or CUDA; python_to_cpp_backward, python_to_cuda_backward: the same for the backward;
- cpp_to_python, cuda_to_python: the generated forward code (and the kernel's name) -> a Warp
  Python kernel computing the same thing;
- outputs: the Python source and its inputs (the record's input set 0) -> the outputs, as JSON
  ({array name: list of values, or the record's {"data", "dtype", "shape"} form}).

`kind` says how an answer is judged (`eval.judge`): "python" is compiled by Warp and executed,
"outputs" is compared with the oracle, "cpp" is compiled in place of Warp's generated function and
executed, "cuda" is compiled in place of it by NVRTC (not executed: the sandbox has no GPU).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    prompt_columns: tuple[str, ...]  # the release columns a prompt shows, as fields of the same names
    answer_column: str  # the release column holding the reference answer
    kind: str  # "python", "outputs", "cpp" or "cuda"

    def prompt(self, row: dict) -> dict:
        """The prompt's fields, from a release row."""
        return {c: row[c] for c in self.prompt_columns}

    def reference(self, row: dict) -> str:
        return row[self.answer_column]


TASKS = {t.name: t for t in (
    Task("python_to_cpp", ("kernel_name", "source"), "ir_cpp_forward", "cpp"),
    Task("python_to_cuda", ("kernel_name", "source"), "ir_cuda_forward", "cuda"),
    Task("python_to_cpp_backward", ("kernel_name", "source"), "ir_cpp_backward", "cpp"),
    Task("python_to_cuda_backward", ("kernel_name", "source"), "ir_cuda_backward", "cuda"),
    Task("cpp_to_python", ("kernel_name", "ir_cpp_forward"), "source", "python"),
    Task("cuda_to_python", ("kernel_name", "ir_cuda_forward"), "source", "python"),
    Task("outputs", ("kernel_name", "source", "inputs"), "outputs", "outputs"),
)}
SPLITS = ("train", "validation", "test")

# the release columns the tasks and the judge read (the spec's identity: family and seed)
COLUMNS = tuple(sorted({"id", "family", "seed", "split", "spec", "kernel_name"}
                       | {c for t in TASKS.values() for c in (*t.prompt_columns, t.answer_column)}))


def prompt_line(task: Task, row: dict) -> dict:
    """One line of a prompts file: id, task and the prompt's fields."""
    return {"id": row["id"], "task": task.name, **task.prompt(row)}
