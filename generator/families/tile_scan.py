"""Tile scans: inclusive and exclusive prefix sums (and running maxima / minima) of mapped tiles,
combined scans, and the per-tile totals from a tile reduction, stored back as running sums."""

from generator.families.tile_reduce import tile_expr, tile_load, tile_op
from generator.grammar import c, v, with_literal
from generator.spec import ArgSpec, KernelSpec

NAME = "tile_scan"
TARGET = "cuda"

SCANS = ("tile_scan_inclusive", "tile_scan_exclusive")
# the running maximum / minimum (wp.tile_scan_max_inclusive / _min_inclusive)
EXTREME_SCANS = ("tile_scan_max_inclusive", "tile_scan_min_inclusive")


def build(rng, name, seed):
    size = rng.choice((8, 16, 32, 64))
    tiles = rng.choice((2, 3, 4, 8))
    n = size * tiles
    ins = [ArgSpec(f"x{k}", "array", "float32", (n,)) for k in range(rng.randint(1, 2))]
    off = ["bin", "*", v("i"), c(size, "int32")]
    body = [["let", f"t{k}", tile_load(a.name, size, off)] for k, a in enumerate(ins)]
    leaves = [v(f"t{k}") for k in range(len(ins))]
    src = with_literal(rng, tile_op(rng, leaves, rng.randint(1, 3)), -4, 4)
    body.append(["let", "s", ["kwcall", rng.choice(SCANS + EXTREME_SCANS if rng.random() < 0.3 else SCANS), [src], []]])
    if rng.random() < 0.4:  # combine with a second scan
        other = tile_expr(rng, leaves, rng.randint(0, 1))
        body.append(["set", "s", ["bin", rng.choice("+-"), v("s"), ["kwcall", rng.choice(SCANS), [other], []]]])
    if rng.random() < 0.3:  # post-map the running sums
        body.append(["set", "s", tile_expr(rng, [v("s")], 1)])
    y = ArgSpec("y", "array", "float32", (n,), role="out")
    args = ins + [y]
    body.append(["expr", ["kwcall", "tile_store", [["arr", "y"], v("s")], [["offset", ["tuple", [off]]]]]])
    if rng.random() < 0.5:
        args.append(ArgSpec("totals", "array", "float32", (tiles,), role="out"))
        red = rng.choice(("tile_sum", "tile_max", "tile_min"))
        body.append(["expr", ["kwcall", "tile_store", [["arr", "totals"], ["kwcall", red, [src], []]],
                              [["offset", ["tuple", [v("i")]]]]]])
    return KernelSpec(NAME, seed, name, (tiles,), tuple(args), body, launch="tiled")
