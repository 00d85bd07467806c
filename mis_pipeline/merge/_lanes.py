"""Fast squared Euclidean distances for the Ward kernel: numba intrinsics (LLVM IR).

The distances from a new cluster to its neighbours are independent, so up to ``LANES`` (8) of
them are computed in one pass over the features: at each block of 8 features, each
neighbour's block is loaded with one contiguous vector load (no transpose, no gather), the
difference to the new cluster's centroid formed, and its square added to that neighbour's
own vector accumulator by a fused multiply-add. Eight independent accumulator chains keep the
floating-point units busy, and the eight row streams overlap their cache misses.

Every difference ``a[f] - b[f]`` is exactly scikit-learn's (same centroids: exact float64
sums, correctly rounded divisions; see :class:`._ir._MixedRows`); only the order and the
roundings of the *sum* differ from scikit-learn's sequential loop. The kernel therefore
treats these values as approximations within a proven relative bound and settles every
comparison the bound cannot decide with exact, sequentially summed values (see
``_ward_kernel.py``, "Exact selection from fast distances").

Note for development: numba's on-disk cache is keyed on the source file of the compiled
function only. After editing this module, ``_ir.py`` or ``_heap.py``, delete
``mis_pipeline/merge/__pycache__/*.nb[ic]``, or a stale kernel may be loaded.

Each intrinsic assumes what the kernel guarantees: C-contiguous 2-D arrays with the same
number of columns (>= 1), every row index in range, index arrays and ``out`` long enough.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from ._ir import (
    _F64,
    _I64,
    _V_F64,
    LANES,
    _check_2d,
    _check_int,
    _divide,
    _is_opaque,
    _LaneSums,
    _MixedRows,
    _prefetch,
    _row_ptr,
    _Rows,
    _splat,
)

__all__ = [
    "LANES",
    "divide_by_size",
    "sqdist_pairs",
    "sqdist_row_mixed",
    "sqdist_merged",
    "sqdist_merged6",
    "prefetch",
    "prefetch_row",
]


@intrinsic
def divide_by_size(typingctx, m, s, r):
    """``m / s`` by :func:`_divide` (the kernel's centroid division), for tests: float64
    ``m``, ``s`` and ``r = 1.0 / s``."""
    for value, name in ((m, "m"), (s, "s"), (r, "r")):
        if value != types.float64:
            raise TypingError(f"{name} must be float64, got {value}")

    def codegen(context, builder, sig, args):
        return _divide(builder, *args)

    return types.float64(m, s, r), codegen


@intrinsic
def sqdist_pairs(typingctx, X, ra, rb, out, energy):
    """``out[q] ~ sum_f (X[ra[q], f] - X[rb[q], f]) ** 2`` for ``q < LANES`` (fast sums; the
    leaf pairs of the grid), where ``ra[q]`` for ``q >= LANES // 2`` is taken to be
    ``ra[q - LANES // 2]`` and not read (each leaf is measured against two neighbours; its
    row is read once), and
    ``energy[q] ~ sum_f X[ra[q], f] ** 2`` for ``q < LANES // 2`` (the value check:
    non-finite if a value is, and bounds every cost)."""
    _check_2d(X, "X")

    def codegen(context, builder, sig, args):
        x_val, ra_val, rb_val, out_val, en_val = args
        x_ty, ra_ty, rb_ty, out_ty, en_ty = sig.args
        rows_a = _Rows(context, builder, x_ty, x_val, ra_ty, ra_val, count=LANES // 2)
        rows_b = _Rows(context, builder, x_ty, x_val, rb_ty, rb_val)
        _, n_feat = _row_ptr(context, builder, x_ty, x_val, types.int64, ir.Constant(_I64, 0))
        acc = _LaneSums(builder)
        energy = _LaneSums(builder, LANES // 2)
        n_blocks = builder.udiv(n_feat, ir.Constant(_I64, LANES))
        with cgutils.for_range(builder, n_blocks) as loop:
            f0 = builder.mul(loop.index, ir.Constant(_I64, LANES))
            own = rows_a.block(f0)
            for q, (a, b) in enumerate(zip(own + own, rows_b.block(f0), strict=True)):
                acc.add(q, builder.fsub(a, b))
            for q in range(LANES // 2):
                energy.add(q, own[q])
        tail = builder.mul(n_blocks, ir.Constant(_I64, LANES))
        with cgutils.for_range_slice(builder, tail, n_feat, ir.Constant(_I64, 1)) as (f, _):
            own = rows_a.scalars(f)
            for q, (a, b) in enumerate(zip(own + own, rows_b.scalars(f), strict=True)):
                acc.add(q, builder.fsub(a, b))
            for q in range(LANES // 2):
                energy.add(q, own[q])
        acc.store(context, out_ty, out_val)
        energy.store(context, en_ty, en_val)
        return context.get_dummy_value()

    return types.void(X, ra, rb, out, energy), codegen


@intrinsic
def sqdist_row_mixed(typingctx, A, rk, W, X, rb, leaf_bits, sizes, recips, out):
    """``out[q] ~ sum_f (A[rk, f] - R_q[f]) ** 2`` (fast sums) for ``q < LANES``, ``R_q`` the
    centroid of neighbour ``q`` (see :class:`_MixedRows`: a row of ``X`` or a row of sums
    ``W`` divided by its size); the batches after the first one of a new cluster with more
    than 8 neighbours."""
    _check_2d(A, "A", float64=True)
    _check_2d(W, "W", float64=True)
    _check_2d(X, "X")
    _check_int(rk, "rk")
    _check_int(leaf_bits, "leaf_bits")

    def codegen(context, builder, sig, args):
        a_val, rk_val, w_val, x_val, rb_val, bits_val, sz_val, rc_val, out_val = args
        a_ty, rk_ty, w_ty, x_ty, rb_ty, bits_ty, sz_ty, rc_ty, out_ty = sig.args
        a_row, n_feat = _row_ptr(context, builder, a_ty, a_val, rk_ty, rk_val)
        rows = _MixedRows(
            context, builder, w_ty, w_val, x_ty, x_val, rb_ty, rb_val, bits_val, bits_ty,
            sz_ty, sz_val, rc_ty, rc_val,
        )  # fmt: skip
        acc = _LaneSums(builder)
        opaque = _is_opaque(a_row.type)
        n_blocks = builder.udiv(n_feat, ir.Constant(_I64, LANES))
        with cgutils.for_range(builder, n_blocks) as loop:
            f0 = builder.mul(loop.index, ir.Constant(_I64, LANES))
            ptr = builder.gep(a_row, [f0])
            if opaque:
                a = builder.load(ptr, typ=_V_F64, align=8)
            else:
                a = builder.load(builder.bitcast(ptr, _V_F64.as_pointer()), align=8)
            for q, r in enumerate(rows.block(f0)):
                acc.add(q, builder.fsub(a, r))
        tail = builder.mul(n_blocks, ir.Constant(_I64, LANES))
        with cgutils.for_range_slice(builder, tail, n_feat, ir.Constant(_I64, 1)) as (f, _):
            a = builder.load(builder.gep(a_row, [f]))
            for q, r in enumerate(rows.scalars(f)):
                acc.add(q, builder.fsub(a, r))
        acc.store(context, out_ty, out_val)
        return context.get_dummy_value()

    return types.void(A, rk, W, X, rb, leaf_bits, sizes, recips, out), codegen


def _sqdist_merged(
    lanes, keep_centroid, typingctx, S, X, WK, rk, ri, i_leaf, rj, j_leaf, size, rb, leaf_bits,
    sizes, recips, out,
):
    """Merge two clusters and measure the result against up to ``lanes`` neighbours, in one
    pass over the features (one compiled variant per lane count, see below):

    * sums ``S[rk, f] = P[f] + Q[f]``, where ``P = X[ri]`` if ``i_leaf`` else ``S[ri]``
      and likewise ``Q`` from ``rj`` / ``j_leaf`` (``rk`` may equal ``ri`` or ``rj``);
    * centroid ``WK[0, f] = S[rk, f] / size`` (a scratch row for later batches; written only
      by the variant that keeps it, ``keep_centroid``);
    * ``out[q] ~ sum_f (WK[0, f] - R_q[f]) ** 2`` (fast sums), ``q < lanes``, ``R_q`` the
      centroid of neighbour ``q``: ``X[rb[q]]`` for a leaf (bit ``q`` of ``leaf_bits``),
      else ``S[rb[q]] / sizes[q]`` (see :class:`_MixedRows`).

    Sums and centroids are exactly scikit-learn's (``m_k = m_i + m_j``, ``m_k / s_k``:
    float32 inputs widen exactly, addition commutes bit for bit, divisions are correctly
    rounded). Centroids are derived from sums on the fly, so no centroid array exists (half
    the memory, half the traffic of storing both). ``rb`` must not point at ``S[rk]``.
    """
    _check_2d(S, "S", float64=True)
    _check_2d(X, "X")
    _check_2d(WK, "WK", float64=True)
    for value, name in (
        (rk, "rk"),
        (ri, "ri"),
        (rj, "rj"),
        (i_leaf, "i_leaf"),
        (j_leaf, "j_leaf"),
        (leaf_bits, "leaf_bits"),
    ):
        _check_int(value, name)
    if not isinstance(size, types.Float):
        raise TypingError(f"size must be a float, got {size}")

    def codegen(context, builder, sig, args):
        (s_val, x_val, w_val, rk_val, ri_val, il_val, rj_val, jl_val, size_val, rb_val,
         bits_val, sz_val, rc_val, out_val) = args  # fmt: skip
        (s_ty, x_ty, w_ty, rk_ty, ri_ty, il_ty, rj_ty, jl_ty, size_ty, rb_ty, bits_ty,
         sz_ty, rc_ty, out_ty) = sig.args  # fmt: skip
        s_row, n_feat = _row_ptr(context, builder, s_ty, s_val, rk_ty, rk_val)
        w_row, _ = _row_ptr(context, builder, w_ty, w_val, types.int64, ir.Constant(_I64, 0))
        size64 = context.cast(builder, size_val, size_ty, types.float64)
        x_f64 = x_ty.dtype == types.float64
        vx_ty = _V_F64 if x_f64 else ir.VectorType(ir.FloatType(), LANES)
        # Source rows of the two merged clusters, in S (float64) and in X (input dtype).
        sources = []
        for r_val, r_ty, leaf_val, leaf_ty in (
            (ri_val, ri_ty, il_val, il_ty),
            (rj_val, rj_ty, jl_val, jl_ty),
        ):
            in_s, _ = _row_ptr(context, builder, s_ty, s_val, r_ty, r_val)
            in_x, _ = _row_ptr(context, builder, x_ty, x_val, r_ty, r_val)
            is_leaf = builder.icmp_signed(
                "!=", context.cast(builder, leaf_val, leaf_ty, types.int64), ir.Constant(_I64, 0)
            )
            sources.append((in_s, in_x, is_leaf))
        rows = _MixedRows(
            context, builder, s_ty, s_val, x_ty, x_val, rb_ty, rb_val, bits_val, bits_ty,
            sz_ty, sz_val, rc_ty, rc_val, count=lanes,
        )  # fmt: skip
        acc = _LaneSums(builder, lanes)
        opaque = _is_opaque(s_row.type)

        def vload(ptr, vty):
            if opaque:
                return builder.load(ptr, typ=vty, align=4)
            return builder.load(builder.bitcast(ptr, vty.as_pointer()), align=4)

        def vstore(value, ptr):
            if opaque:
                builder.store(value, ptr, align=8)
            else:
                builder.store(value, builder.bitcast(ptr, value.type.as_pointer()), align=8)

        def load_source(src, f0, vector):
            """One merged cluster's sums at f0 (a <LANES x double> block, or a double)."""
            in_s, in_x, is_leaf = src
            with builder.if_else(is_leaf) as (then, otherwise):
                with then:
                    bb_x = builder.block
                    ptr = builder.gep(in_x, [f0])
                    x = vload(ptr, vx_ty) if vector else builder.load(ptr)
                    if not x_f64:
                        x = builder.fpext(x, _V_F64 if vector else _F64)  # exact
                with otherwise:
                    bb_s = builder.block
                    ptr = builder.gep(in_s, [f0])
                    y = vload(ptr, _V_F64) if vector else builder.load(ptr)
            phi = builder.phi(_V_F64 if vector else _F64)
            phi.add_incoming(x, bb_x)
            phi.add_incoming(y, bb_s)
            return phi

        # k's centroid m / size, correctly rounded: by Markstein's FMA correction for float32
        # inputs (as for the neighbours, see _MixedRows), by a division for float64 ones.
        recip64 = builder.fdiv(ir.Constant(_F64, 1.0), size64)

        def centroid(m, s, r):
            return builder.fdiv(m, s) if x_f64 else _divide(builder, m, s, r)

        n_blocks = builder.udiv(n_feat, ir.Constant(_I64, LANES))
        with cgutils.for_range(builder, n_blocks) as loop:
            f0 = builder.mul(loop.index, ir.Constant(_I64, LANES))
            m = builder.fadd(load_source(sources[0], f0, True), load_source(sources[1], f0, True))
            vstore(m, builder.gep(s_row, [f0]))
            w = centroid(m, _splat(builder, size64, _V_F64), _splat(builder, recip64, _V_F64))
            if keep_centroid:
                vstore(w, builder.gep(w_row, [f0]))
            for q, r in enumerate(rows.block(f0)):
                acc.add(q, builder.fsub(w, r))
        tail = builder.mul(n_blocks, ir.Constant(_I64, LANES))
        with cgutils.for_range_slice(builder, tail, n_feat, ir.Constant(_I64, 1)) as (f, _):
            m = builder.fadd(load_source(sources[0], f, False), load_source(sources[1], f, False))
            builder.store(m, builder.gep(s_row, [f]))
            w = centroid(m, size64, recip64)
            if keep_centroid:
                builder.store(w, builder.gep(w_row, [f]))
            for q, r in enumerate(rows.scalars(f)):
                acc.add(q, builder.fsub(w, r))
        acc.store(context, out_ty, out_val)
        return context.get_dummy_value()

    return (
        types.void(S, X, WK, rk, ri, i_leaf, rj, j_leaf, size, rb, leaf_bits, sizes, recips, out),
        codegen,
    )


def _merged_variant(lanes: int, keep_centroid: bool):
    def typer(typingctx, S, X, WK, rk, ri, i_leaf, rj, j_leaf, size, rb, leaf_bits, sizes,
              recips, out):  # fmt: skip
        return _sqdist_merged(
            lanes, keep_centroid, typingctx, S, X, WK, rk, ri, i_leaf, rj, j_leaf, size, rb,
            leaf_bits, sizes, recips, out,
        )  # fmt: skip

    typer.__name__ = f"sqdist_merged{lanes}"
    typer.__doc__ = _sqdist_merged.__doc__
    return intrinsic(typer)


# A new cluster has 5-6 neighbours most of the time and 7-8 sometimes (grid merges); lanes
# past the neighbour count would repeat a lane's work for nothing, so the kernel picks the
# narrowest variant that fits (two variants: each one adds to the one-time compilation).
# Only a cluster with more than 8 neighbours has later batches, which read its centroid
# from the scratch row, so only the 8-lane variant stores it.
sqdist_merged6 = _merged_variant(6, False)
sqdist_merged = _merged_variant(LANES, True)


@intrinsic
def prefetch(typingctx, arr, i):
    """Hint the cache to fetch element ``i`` of the 1-D array ``arr`` for reading (no effect
    on results; an out-of-range ``i`` is harmless, a prefetch never faults)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1):
        raise TypingError(f"arr must be a 1-D array, got {arr}")
    _check_int(i, "i")

    def codegen(context, builder, sig, args):
        arr_val, i_val = args
        a = context.make_array(sig.args[0])(context, builder, arr_val)
        idx = context.cast(builder, i_val, sig.args[1], types.int64)
        _prefetch(builder, builder.ptrtoint(builder.gep(a.data, [idx]), _I64))
        return context.get_dummy_value()

    return types.void(arr, i), codegen


@intrinsic
def prefetch_row(typingctx, A, r, n_lines):
    """Hint the cache to fetch the first ``n_lines`` 64-byte lines of row ``r`` of the
    C-contiguous 2-D array ``A`` (no effect on results; a prefetch never faults)."""
    _check_2d(A, "A")
    _check_int(r, "r")
    _check_int(n_lines, "n_lines")

    def codegen(context, builder, sig, args):
        a_val, r_val, nl_val = args
        row, _ = _row_ptr(context, builder, sig.args[0], a_val, sig.args[1], r_val)
        base = builder.ptrtoint(row, _I64)
        count = context.cast(builder, nl_val, sig.args[2], types.int64)
        with cgutils.for_range(builder, count) as loop:
            _prefetch(builder, builder.add(base, builder.mul(loop.index, ir.Constant(_I64, 64))))
        return context.get_dummy_value()

    return types.void(A, r, n_lines), codegen
