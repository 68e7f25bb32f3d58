"""Data races: an array element one thread stores into and another thread reads or stores into.

Warp runs a kernel's threads in parallel on a GPU and in order on the CPU. A kernel with a race
has no single meaning: the CPU's result (the oracle's too: it runs the threads in order) is one
of the results a GPU may give. The validator rejects such kernels (`data_race`) and the
generator must not emit them (`generator/families_test.py`).

Atomics are the one shared write: elements updated only atomically are no race, but an element
updated atomically and also read or stored into plainly, with two threads involved, is. Tile
kernels are left out (their loads and stores are cooperative by design): `first_race` is None.
"""

from __future__ import annotations

from generator.oracle import Interpreter, atomic, prepare
from generator.spec import KernelSpec


class _Watched:
    """An array that notes who touches each element: (array, element) -> the threads that read
    it, stored into it and updated it atomically."""

    __slots__ = ("name", "data", "log", "watch")

    def __init__(self, name: str, data: np.ndarray, log: dict, watch):
        self.name, self.data, self.log, self.watch = name, data, log, watch

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def shape(self):
        return self.data.shape

    def note(self, idx, kind: int) -> None:
        key = (self.name, tuple(int(i) % n for i, n in zip(idx, self.data.shape)))
        self.log.setdefault(key, (set(), set(), set()))[kind].add(self.watch.thread)

    def __getitem__(self, idx):
        self.note(idx, 0)
        return self.data[idx]

    def __setitem__(self, idx, value):
        self.note(idx, 1)
        self.data[idx] = value


class _Watch(Interpreter):
    def __init__(self, spec, arrays, scalars, log):
        super().__init__(spec, {name: _Watched(name, arr, log, self) for name, arr in arrays.items()}, scalars)

    def block(self, stmts, env):
        for s in stmts:
            if s[0] != "atomic":
                super().block([s], env)
                continue
            # the oracle's atomic, noted as one atomic access (not a read and a store)
            watched = self.arrays[s[2]]
            idx = tuple(self.expr(i, env) for i in s[3])
            v = self.expr(s[4], env)
            watched.note(idx, 2)
            atomic(watched.data, s[1], idx, v)


def first_race(spec: KernelSpec, inputs: dict) -> str | None:
    """The first race of the kernel on these inputs, in words, or None (also for tile kernels).
    Exceptions of the oracle propagate (the oracle's check counts them)."""
    if spec.launch != "grid":
        return None
    arrays, scalars = prepare(spec, inputs)
    log: dict = {}
    _Watch(spec, arrays, scalars, log).run()
    for (name, element), (readers, writers, atomics) in log.items():
        plain = readers | writers
        where = f"{name}[{', '.join(map(str, element))}]"
        if writers and len(plain | atomics) > 1:
            others = sorted((plain | atomics) - {min(writers)})[:3]
            return (f"element {where} is stored into by thread {min(writers)} and touched by thread "
                    f"{', '.join(map(str, others))} (threads run in parallel on a GPU: the result depends on their timing)")
        if atomics and readers and len(readers | atomics) > 1:
            return (f"element {where} is updated atomically and read plainly by threads "
                    f"{', '.join(map(str, sorted(readers | atomics)[:3]))} (the read depends on the threads' timing)")
    return None
