"""Render a KernelSpec as Warp Python source text (deterministic, one canonical layout)."""

from __future__ import annotations

from generator.oracle_builtins import BARE_BUILTINS
from generator.spec import (BVH, BVH_QUERIES, FLOAT_DTYPES, GENERIC, HASH_GRID, MESH, PY_CASTS, TEXTURE, VOLUME, RAND_DRAWS, RAND_SAMPLES, STRUCT_ARRAY,
                            ArgSpec, HelperSpec, KernelSpec, struct_classes)

INDENT = "    "

# Precedence for minimal parentheses: higher binds tighter.
_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6, "neg": 7}


def dtype_expr(dtype: str) -> str:
    return f"wp.{dtype}"


def literal(value, dtype: str) -> str:
    if dtype == "float32":
        return repr(float(value))  # Warp types a bare float literal as float32
    if dtype == "int32":
        return str(int(value))  # ... and a bare int literal as int32
    if dtype == "bool":
        return "True" if value else "False"
    if dtype in FLOAT_DTYPES:
        return f"wp.{dtype}({float(value)!r})"
    return f"wp.{dtype}({int(value)})"


def _wrap(text: str, prec: int, parent: int) -> str:
    return f"({text})" if prec < parent else text


def render_expr(e, parent: int = 0) -> str:
    tag = e[0]
    if tag == "c":
        text = literal(e[1], e[2])
        return _wrap(text, _PREC["neg"], parent) if text.startswith("-") else text
    if tag == "v":
        return e[1]
    if tag == "ld":
        return f"{e[1]}[{', '.join(render_expr(i) for i in e[2])}]"
    if tag == "bin":
        p = _PREC[e[1]]
        # left-associative: the right operand needs parentheses at equal precedence
        return _wrap(f"{render_expr(e[2], p)} {e[1]} {render_expr(e[3], p + 1)}", p, parent)
    if tag == "mod":
        p = _PREC["%"]
        return _wrap(f"{render_expr(e[1], p)} % {render_expr(e[2], p + 1)}", p, parent)
    if tag == "neg":
        return _wrap(f"-{render_expr(e[1], _PREC['neg'] + 1)}", _PREC["neg"], parent)
    if tag in ("call", "vec"):  # a builtin call or a vec/mat/quat constructor (len(v): Python's own)
        prefix = "" if e[1] in BARE_BUILTINS else "wp."
        return f"{prefix}{e[1]}({', '.join(render_expr(a) for a in e[2])})"
    if tag == "hcall":
        return f"{e[1]}({', '.join(render_expr(a) for a in e[2])})"
    if tag == "where":
        return f"wp.where({render_expr(e[1])}, {render_expr(e[2])}, {render_expr(e[3])})"
    if tag == "cmp":
        p = _PREC["cmp"]
        return _wrap(f"{render_expr(e[2], p + 1)} {e[1]} {render_expr(e[3], p + 1)}", p, parent)
    if tag in ("and", "or"):
        p = _PREC[tag]
        return _wrap(f"{render_expr(e[1], p)} {tag} {render_expr(e[2], p + 1)}", p, parent)
    if tag == "not":
        p = _PREC["not"]
        return _wrap(f"not {render_expr(e[1], p)}", p, parent)
    if tag == "cast":  # wp.float32(x), or Python's float(x) / int(x) / bool(x)
        return f"{'' if e[1] in PY_CASTS else 'wp.'}{e[1]}({render_expr(e[2])})"
    if tag == "comp":
        return f"{render_expr(e[1], 9)}[{', '.join(str(k) for k in e[2])}]"
    if tag == "mmul":
        p = _PREC["*"]
        return _wrap(f"{render_expr(e[1], p)} * {render_expr(e[2], p + 1)}", p, parent)
    if tag == "arr":
        return e[1]
    if tag == "tuple":
        items = [render_expr(a) for a in e[1]]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if tag == "fnref":  # ["fnref", "float"]: Python's float, the dtype wp.texture_sample takes
        return e[1] if e[1] == "float" else f"wp.{e[1]}"
    if tag == "vmode":
        return f"wp.Volume.{e[1]}"
    if tag == "kwcall":
        parts = [render_expr(a) for a in e[2]] + [f"{k}={render_expr(x)}" for k, x in e[3]]
        return f"wp.{e[1]}({', '.join(parts)})"
    if tag == "fld":
        return f"{e[1]}.{e[2]}"
    if tag == "sld":
        return f"{e[1]}[{', '.join(render_expr(i) for i in e[2])}].{e[3]}"
    if tag in RAND_DRAWS or tag in RAND_SAMPLES:
        return f"wp.{tag}({', '.join([e[1]] + [render_expr(a) for a in e[2:]])})"
    raise ValueError(f"unknown expression tag {tag!r}")


def render_block(stmts: list, depth: int) -> list[str]:
    lines: list[str] = []
    pad = INDENT * depth
    for s in stmts:
        tag = s[0]
        if tag in ("let", "set"):
            lines.append(f"{pad}{s[1]} = {render_expr(s[2])}")
        elif tag == "unpack":
            lines.append(f"{pad}{', '.join(s[1])} = {render_expr(s[2])}")
        elif tag == "aug":
            lines.append(f"{pad}{s[1]} {s[2]}= {render_expr(s[3])}")
        elif tag == "store":
            idx = ", ".join(render_expr(i) for i in s[2])
            lines.append(f"{pad}{s[1]}[{idx}] = {render_expr(s[3])}")
        elif tag == "atomic":
            idx = ", ".join(render_expr(i) for i in s[3])
            value = ", ".join(render_expr(x) for x in s[4][1]) if s[1] == "cas" else render_expr(s[4])
            lines.append(f"{pad}wp.atomic_{s[1]}({s[2]}, {idx}, {value})")
        elif tag == "if":
            lines.append(f"{pad}if {render_expr(s[1])}:")
            lines += render_block(s[2], depth + 1) or [pad + INDENT + "pass"]
            for cond, body in s[3]:
                lines.append(f"{pad}elif {render_expr(cond)}:")
                lines += render_block(body, depth + 1) or [pad + INDENT + "pass"]
            if s[4]:
                lines.append(f"{pad}else:")
                lines += render_block(s[4], depth + 1)
        elif tag == "for":
            rng_ = f"range({render_expr(s[2])}, {render_expr(s[3])})"
            lines.append(f"{pad}for {s[1]} in {'reversed(' + rng_ + ')' if s[5:] == ['reversed'] else rng_}:")
            lines += render_block(s[4], depth + 1) or [pad + INDENT + "pass"]
        elif tag == "while":
            lines.append(f"{pad}while {render_expr(s[1])}:")
            lines += render_block(s[2], depth + 1)
        elif tag == "neighbors":
            lines += _neighbors(s, pad, depth)
        elif tag == "closest":
            lines += _closest(s, pad, depth)
        elif tag == "boxes":
            lines += _boxes(s, pad, depth)
        elif tag in ("break", "continue"):
            lines.append(pad + tag)
        elif tag == "ret":
            lines.append(f"{pad}return {render_expr(s[1])}")
        elif tag == "ret_kernel":
            lines.append(f"{pad}return")
        elif tag == "expr":
            lines.append(f"{pad}{render_expr(s[1])}")
        else:
            raise ValueError(f"unknown statement tag {tag!r}")
    return lines


def _neighbors(s: list, pad: str, depth: int) -> list[str]:
    """["neighbors", j, grid, points, center, radius, d2, body]: the body once for every point j of
    `points` within `radius` of points[center], found by a hash-grid query, with the local d2 its
    squared distance; the grid's candidates are filtered by d2, exact in float32 for the drawn
    inputs (multiples of 1/256 within [-1, 1]) and a radius that is a multiple of 1/8, so the set
    is the oracle's."""
    _, var, grid, points, center, radius, d2, body = s
    at = f"{points}[{render_expr(center)}]"
    inner = pad + INDENT
    return [f"{pad}q_{var} = wp.hash_grid_query({grid}, {at}, {render_expr(radius)})",
            f"{pad}{var} = int(0)",
            f"{pad}while wp.hash_grid_query_next(q_{var}, {var}):",
            f"{inner}{d2} = wp.length_sq({points}[{var}] - {at})",
            f"{inner}if {d2} <= {literal(radius[1] ** 2, 'float32')}:",
            *(render_block(body, depth + 2) or [inner + INDENT + "pass"])]


def _closest(s: list, pad: str, depth: int) -> list[str]:
    """["closest", cp, mesh, point, max_dist, body]: the mesh's closest point to `point`, found by
    `wp.mesh_query_point_no_sign` (its face and barycentric coordinates written into the locals
    f_cp, u_cp, v_cp) and evaluated by `wp.mesh_eval_position`; the body runs only if it lies
    (strictly) within max_dist."""
    _, var, mesh, point, max_dist, body = s
    face, u, v = f"f_{var}", f"u_{var}", f"v_{var}"
    return [f"{pad}{face} = int(0)", f"{pad}{u} = float(0.0)", f"{pad}{v} = float(0.0)",
            f"{pad}if wp.mesh_query_point_no_sign({mesh}, {render_expr(point)}, {render_expr(max_dist)}, {face}, {u}, {v}):",
            f"{pad}{INDENT}{var} = wp.mesh_eval_position({mesh}, {face}, {u}, {v})",
            *render_block(body, depth + 1)]


def _boxes(s: list, pad: str, depth: int) -> list[str]:
    """["boxes", j, bvh, query, a, b, body]: the body once for every box j of the BVH that the query
    (wp.bvh_query_aabb from lower a to upper b, or wp.bvh_query_sphere of centre a and radius b)
    meets, found by wp.bvh_query_next. Warp's tests are closed (touching boxes meet); the drawn
    points, half-widths, bounds and radii are multiples of 1/1024 in a few units, so every
    difference and square Warp forms in float32 is exact and the set is the oracle's."""
    _, var, bvh, query, a, b, body = s
    return [f"{pad}b_{var} = wp.{BVH_QUERIES[query]}({bvh}, {render_expr(a)}, {render_expr(b)})",
            f"{pad}{var} = int(0)",
            f"{pad}while wp.bvh_query_next(b_{var}, {var}):",
            *(render_block(body, depth + 1) or [pad + INDENT + "pass"])]


def _annotation(a: ArgSpec) -> str:
    if a.kind == TEXTURE:
        return "wp.Texture2D"
    if a.kind in (HASH_GRID, MESH, VOLUME, BVH):
        return "wp.uint64"
    if a.kind == "struct":
        return a.dtype
    if a.kind == STRUCT_ARRAY:
        return f"wp.array(dtype={a.dtype})"
    if a.kind == "array":
        ndim = len(a.shape)
        return f"wp.array(dtype={dtype_expr(a.dtype)})" if ndim == 1 else f"wp.array{ndim}d(dtype={dtype_expr(a.dtype)})"
    return dtype_expr(a.dtype)


def _param_type(dtype: str) -> str:
    return GENERIC if dtype == GENERIC else dtype_expr(dtype)


def render_helper(h: HelperSpec) -> list[str]:
    """`@wp.func`: parameters typed (GENERIC: `Any`), and `-> wp.<dtype>` unless Warp infers the
    return type (a GENERIC one, or several values)."""
    params = ", ".join(f"{n}: {_param_type(t)}" for n, t in h.params)
    ret = "" if h.ret == GENERIC or isinstance(h.ret, tuple) else f" -> {dtype_expr(h.ret)}"
    return ["@wp.func", f"def {h.name}({params}){ret}:", *render_block(h.body, 1)]


def _preamble(spec: KernelSpec) -> list[str]:
    """The imports (`typing.Any` only where a helper is generic) and the module's constants."""
    generic = any(t == GENERIC for h in spec.helpers for _, t in h.params)
    lines = (["from typing import Any", ""] if generic else []) + ["import warp as wp", ""]
    if spec.constants:
        lines += ["", *(f"{n} = wp.constant({literal(v, t)})" for n, t, v in spec.constants), ""]
    return lines


def render_source(spec: KernelSpec) -> str:
    """The kernel's complete Python module: `import warp as wp` (and `from typing import Any` where
    a helper is generic), constants, structs, helpers, then the kernel."""
    lines = _preamble(spec)
    for cls, fields in struct_classes(spec.args):  # a nested struct's field is typed by its class
        lines += ["", "@wp.struct", f"class {cls}:",
                  *(f"{INDENT}{f[0]}: {f[1] if len(f) == 3 else dtype_expr(f[1])}" for f in fields), ""]
    for h in spec.helpers:
        lines += ["", *render_helper(h), ""]
    params = ", ".join(f"{a.name}: {_annotation(a)}" for a in spec.args)
    lines += ["", "@wp.kernel", f"def {spec.name}({params}):"]
    tids = ", ".join(spec.tid_names)
    lines.append(f"{INDENT}{tids} = wp.tid()")
    lines += render_block(spec.body, 1)
    return "\n".join(lines) + "\n"
