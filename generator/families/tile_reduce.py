"""Tile load/store pipelines with tile reductions: each block loads a tile, maps it through
builtins and arithmetic (sometimes with a constant tile: tile_ones scaled, tile_full of a literal,
or tile_arange scaled; or scaled by one element of a loaded tile: tile_extract), stores the mapped
tile (or it less its reduction: tile_broadcast) and folds tile_sum/max/min (or tile_reduce of
wp.add / min / max, tile_dot with a loaded tile, a float64 sum by tile_astype, the sum of a
tile_view, of a row of a tile_reshape, tile_squeeze'd) into the output. An element may sit at the index of a tile_argmax / tile_argmin, a
block-uniform value may go through wp.tile, a map and wp.untile, and the mapped tile may change in
place first (tile_axpy, or tile_sort by keys that tie nowhere).

Warp 1.19 leaves the adjoints of tile_reduce, tile_max, tile_min and tile_sort empty
(MISSINGADJOINT), so a kernel calling one gets no gradient verdict: they are drawn in about one
kernel in eight (tile_reduce 3% and tile_max / tile_min 5% of the reductions, tile_sort 4% of the
kernels; the tile_scan family stores tile_max / tile_min often), and the rest of the family is gradient-checked. tile_arange only ever takes literals
here: a constant, whose zero derivative the empty adjoint gets right."""

from generator.grammar import c, float_literal, v, with_literal
from generator.spec import ArgSpec, KernelSpec

NAME = "tile_reduce"
TARGET = "cuda"

MAPS = ("sin", "cos", "tanh", "abs")


def tile_load(arr, size, offset):
    return ["kwcall", "tile_load", [["arr", arr]], [["shape", ["tuple", [c(size, "int32")]]], ["offset", ["tuple", [offset]]]]]


def const_tile(rng, size):
    """A tile of the launch's tile size that no input feeds: ones times a literal, a literal
    everywhere, or 0, 1, ..., size - 1 scaled into [0, 2)."""
    shape, f32 = ["shape", ["tuple", [c(size, "int32")]]], ["dtype", ["fnref", "float32"]]
    r = rng.random()
    if r < 0.4:
        return ["bin", "*", ["kwcall", "tile_ones", [], [shape, f32]], float_literal(rng, -2, 2)]
    if r < 0.7:
        return ["kwcall", "tile_full", [], [shape, ["value", float_literal(rng, -2, 2)], f32]]
    return ["bin", "*", ["kwcall", "tile_arange", [c(size, "int32")], [f32]], c(2.0 / size, "float32")]


def tile_expr(rng, leaves, depth, size=None):
    if depth <= 0 or rng.random() < 0.2:
        leaf = rng.choice(leaves)
        return ["bin", "*", leaf, float_literal(rng, -2, 2)] if rng.random() < 0.3 else leaf
    r = rng.random()
    if r < 0.35:
        return ["kwcall", "tile_map", [["fnref", rng.choice(MAPS)], tile_expr(rng, leaves, depth - 1, size)], []]
    if r < 0.7:
        a = tile_expr(rng, leaves, depth - 1, size)
        # a constant tile only ever beside an input's: the expression stays live
        b = const_tile(rng, size) if size and rng.random() < 0.25 else tile_expr(rng, leaves, depth - 1, size)
        if a == b:  # t - t is a zero tile: scale one side instead
            b = ["bin", "*", b, float_literal(rng, 0.25, 2)]
        return ["bin", rng.choice("+-"), a, b]
    if size and r < 0.8:  # scaled by one element of a loaded tile (wp.tile_extract)
        return ["bin", "*", tile_expr(rng, leaves, depth - 1, size), block_scalar(rng, leaves, size)]
    return ["bin", "*", tile_expr(rng, leaves, depth - 1, size), float_literal(rng, -2, 2)]


# 2**-14: every loaded value is a multiple of 2**-8 (`generator.inputs`), so a loaded tile plus
# 0, 1, ..., size - 1 times this (size <= 64) holds distinct values, each exact in float32
_TIE_BREAK = 2.0 ** -14


def distinct_keys(rng, leaves, size):
    """A loaded tile plus its indices scaled by _TIE_BREAK: no two elements equal, so its
    extremes (wp.tile_argmin / argmax) and its sort order (wp.tile_sort) are unique."""
    ramp = ["bin", "*", ["kwcall", "tile_arange", [c(size, "int32")], [["dtype", ["fnref", "float32"]]]], c(_TIE_BREAK)]
    return ["bin", "+", rng.choice(leaves), ramp]


def block_scalar(rng, leaves, size):
    """One value for the whole block: an element of a loaded tile (wp.tile_extract) at a literal
    index or at the index of the extreme of distinct keys (wp.tile_argmax / argmin), or such an
    element made a tile of one lane per thread (wp.tile), mapped, and taken back (wp.untile)."""
    r = rng.random()
    if r < 0.3:
        arg = ["call", rng.choice(("tile_argmax", "tile_argmin")), [distinct_keys(rng, leaves, size)]]
        return ["call", "tile_extract", [rng.choice(leaves), ["comp", arg, [0]]]]
    x = ["call", "tile_extract", [rng.choice(leaves), c(rng.randrange(size), "int32")]]
    if r < 0.5:
        return ["call", "untile", [["kwcall", "tile_map", [["fnref", rng.choice(MAPS)], ["call", "tile", [x]]], []]]]
    return x


def reduction(rng, leaves, size):
    """The tile u folded to a one-element tile: tile_sum / max / min; tile_reduce of a builtin;
    the dot product with a loaded tile (wp.tile_dot); a sum in float64 (wp.tile_astype there and
    back); the sum of a slice of u (wp.tile_view at a literal offset), or of one row of u reshaped
    (wp.tile_reshape, a 2-D tile_view, wp.tile_squeeze)."""
    r = rng.random()
    if r < 0.03:  # wp.tile_reduce by a builtin: add, min or max
        return ["kwcall", "tile_reduce", [["fnref", rng.choice(("add", "min", "max"))], v("u")], []]
    if r < 0.2:
        return ["call", "tile_dot", [v("u"), rng.choice(leaves)]]
    if r < 0.32:
        wide = ["kwcall", "tile_astype", [v("u")], [["dtype", ["fnref", "float64"]]]]
        return ["kwcall", "tile_astype", [["kwcall", "tile_sum", [wide], []]], [["dtype", ["fnref", "float32"]]]]
    if r < 0.44:
        m = size // rng.choice((2, 4))
        view = ["kwcall", "tile_view", [v("u")], [["offset", ["tuple", [c(rng.randrange(size - m + 1), "int32")]]],
                                                 ["shape", ["tuple", [c(m, "int32")]]]]]
        return ["kwcall", "tile_sum", [view], []]
    if r < 0.54:  # one row of u as a (rows, size / rows) tile: tile_reshape, a tile_view of the row, tile_squeeze
        rows = rng.choice((2, 4))
        shape = ["tuple", [c(rows, "int32"), c(size // rows, "int32")]]
        row = ["kwcall", "tile_view", [["kwcall", "tile_reshape", [v("u")], [["shape", shape]]]],
               [["offset", ["tuple", [c(rng.randrange(rows), "int32"), c(0, "int32")]]],
                ["shape", ["tuple", [c(1, "int32"), c(size // rows, "int32")]]]]]
        return ["kwcall", "tile_sum", [["call", "tile_squeeze", [row]]], []]
    if r < 0.95:
        return ["kwcall", "tile_sum", [v("u")], []]
    return ["kwcall", rng.choice(("tile_max", "tile_min")), [v("u")], []]


def in_place(rng, leaves, size) -> list:
    """Statements that change u in place, or none: u += alpha * a loaded tile (wp.tile_axpy), or
    u permuted into the order of distinct keys (wp.tile_sort; keys a local of their own)."""
    r = rng.random()
    if r < 0.12:
        return [["expr", ["call", "tile_axpy", [float_literal(rng, -2, 2), rng.choice(leaves), v("u")]]]]
    if r < 0.16:
        return [["let", "keys", distinct_keys(rng, leaves, size)], ["expr", ["call", "tile_sort", [v("keys"), v("u")]]]]
    return []


def tile_op(rng, leaves, depth, size=None):
    """A tile expression whose root is an operation (a map or a binary), never a bare leaf."""
    if rng.random() < 0.4:
        return ["kwcall", "tile_map", [["fnref", rng.choice(MAPS)], tile_expr(rng, leaves, depth - 1, size)], []]
    a = tile_expr(rng, leaves, depth - 1, size)
    b = const_tile(rng, size) if size and rng.random() < 0.25 else tile_expr(rng, leaves, depth - 1, size)
    if a == b:
        b = ["bin", "*", b, float_literal(rng, 0.25, 2)]
    return ["bin", rng.choice("+-"), a, b]


def build(rng, name, seed):
    size = rng.choice((16, 32, 64))
    tiles = rng.choice((2, 4, 8))
    n = size * tiles
    ins = [ArgSpec(f"x{k}", "array", "float32", (n,)) for k in range(rng.randint(1, 2))]
    off = ["bin", "*", v("i"), c(size, "int32")]
    body = []
    for a in ins:
        body.append(["let", f"t_{a.name}", tile_load(a.name, size, off)])
    leaves = [v(f"t_{a.name}") for a in ins]
    e = tile_op(rng, leaves, rng.randint(2, 4), size)
    body.append(["let", "u", with_literal(rng, e)])
    body += in_place(rng, leaves, size)
    args = list(ins)
    store = rng.random() < 0.6  # the mapped tile goes back to memory
    body.append(["let", "r", reduction(rng, leaves, size)])
    if store:  # u itself, or u less its reduction broadcast over the tile (wp.tile_broadcast)
        args.append(ArgSpec("y", "array", "float32", (n,), role="out"))
        y = v("u") if rng.random() < 0.7 else \
            ["bin", "-", v("u"), ["kwcall", "tile_broadcast", [v("r")], [["shape", ["tuple", [c(size, "int32")]]]]]]
        body.append(["expr", ["kwcall", "tile_store", [["arr", "y"], y], [["offset", ["tuple", [off]]]]]])
    if rng.random() < 0.5:  # one result per tile
        args.append(ArgSpec("per_tile", "array", "float32", (tiles,), role="out"))
        body.append(["expr", ["kwcall", "tile_store", [["arr", "per_tile"], v("r")], [["offset", ["tuple", [v("i")]]]]]])
    else:  # all tiles folded into one value
        args.append(ArgSpec("total", "array", "float32", (1,), role="out"))
        body.append(["expr", ["kwcall", "tile_atomic_add", [["arr", "total"], v("r")], []]])
    return KernelSpec(NAME, seed, name, (tiles,), tuple(args), body, launch="tiled")
