"""Several squared Euclidean distances at once, each summed strictly in order.

numba intrinsics (LLVM IR) used by the Ward kernel.

The kernel must reproduce scikit-learn's criterion bit for bit, so every squared distance
``sum_f (a[f] - b[f]) ** 2`` has to be accumulated sequentially over ``f`` in float64: no
reassociation, no fused multiply-add. A compiler will not vectorise such a reduction, and a
scalar loop is bound by the latency of the floating-point add. But the distances from a new
cluster to its neighbours are *independent* sums, so they can share SIMD registers with one
lane per distance: at feature ``f`` a vector holds ``b_q[f]`` for eight rows ``q``, and one
vector subtract / multiply / add advances all eight sums by one term. Each lane performs
exactly the scalar operations in the scalar order (IEEE vector arithmetic rounds lane by lane;
no fast-math flags are set, so nothing is fused or reordered), so the results are
bit-identical to the scalar loop; the tests check this against scikit-learn's own
``compute_ward_dist``.

How the column vectors ``(b_0[f], ..., b_7[f])`` are formed: each row's features are read
8 at a time with one contiguous load, and the 8x8 block is transposed in registers by
shuffles. (Measured: as fast as or faster than gathers, and with no vector-of-pointers
instructions it compiles the same way on any target.) In :func:`sqdist_merged`, a leaf
neighbour's lane reads its input row in place and an internal one its sums divided by its
size: each lane loads from both arrays (the unused address points at a valid row) and
selects. In :func:`sqdist_left_up` the left neighbours come from a lane shift. Short batches
are padded by the caller (repeat a valid row; extra results unused): a lane costs nothing
in a loop bound by the add latency. One 8-wide vector per batch beat two interleaved 4-wide
ones.

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
    _I32,
    _I64,
    _V_F64,
    LANES,
    _add_square,
    _check_2d,
    _check_int,
    _divide,
    _is_opaque,
    _MixedRows,
    _row_ptr,
    _Rows,
    _splat,
    _store_lanes,
    _vec,
    _zero_acc,
)

__all__ = ["LANES", "divide_by_size", "sqdist_left_up", "sqdist_row_mixed", "sqdist_merged"]


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
def sqdist_left_up(typingctx, X, ra, ru, prev, out_left, out_up):
    """Both grid edges of ``2 * LANES`` consecutive leaves at once.

    ``ra`` holds consecutive rows ``v0, v0 + 1, ...`` (``2 * LANES`` entries), ``ru`` the
    rows above them and ``prev`` the row ``v0 - 1``. Returns ``out_left[q] = sum_f
    (X[ra[q], f] - X[ra[q] - 1, f]) ** 2`` (``X[prev]`` standing in for ``X[ra[0] - 1]``) and
    ``out_up[q] = sum_f (X[ra[q], f] - X[ru[q], f]) ** 2``, each in order of ``f``.

    The left neighbours are the same rows shifted by one lane, so they come from a shuffle:
    each block of 8 features costs 32 contiguous row loads and four 8x8 transposes for 32
    distances (initial leaf pairs are about a quarter of all distances).
    """
    _check_2d(X, "X")
    _check_int(prev, "prev")

    def codegen(context, builder, sig, args):
        x_val, ra_val, ru_val, prev_val, ol_val, ou_val = args
        x_ty, ra_ty, ru_ty, prev_ty, ol_ty, ou_ty = sig.args
        own = [_Rows(context, builder, x_ty, x_val, ra_ty, ra_val, g * LANES) for g in range(2)]
        up = [_Rows(context, builder, x_ty, x_val, ru_ty, ru_val, g * LANES) for g in range(2)]
        p_row, n_feat = _row_ptr(context, builder, x_ty, x_val, prev_ty, prev_val)
        acc_left = [_zero_acc(builder) for _ in own]
        acc_up = [_zero_acc(builder) for _ in own]
        vty = _vec(_F64)
        # lane q of a shifted vector = lane q - 1 of the concatenation (previous, current)
        shift = ir.Constant(ir.VectorType(_I32, LANES), list(range(LANES - 1, 2 * LANES - 1)))

        def step(x_prev, own_cols, up_cols):
            """One feature: prev row's value, then per group its own and upper columns."""
            if x_prev.type != _F64:
                x_prev = builder.fpext(x_prev, _F64)
            before = _splat(builder, x_prev, vty)
            for g, a in enumerate(own_cols):
                left = builder.shuffle_vector(before, a, shift)
                _add_square(builder, acc_left[g], a, left)
                _add_square(builder, acc_up[g], a, up_cols[g])
                before = a

        p_vty = ir.VectorType(context.get_data_type(x_ty.dtype), LANES)
        n_blocks = builder.udiv(n_feat, ir.Constant(_I64, LANES))
        with cgutils.for_range(builder, n_blocks) as loop:
            f0 = builder.mul(loop.index, ir.Constant(_I64, LANES))
            p_ptr = builder.gep(p_row, [f0])
            if _is_opaque(p_row.type):
                p_vec = builder.load(p_ptr, typ=p_vty, align=4)
            else:
                p_vec = builder.load(builder.bitcast(p_ptr, p_vty.as_pointer()), align=4)
            own_blocks = [rows.block(f0) for rows in own]
            up_blocks = [rows.block(f0) for rows in up]
            for e in range(LANES):
                step(
                    builder.extract_element(p_vec, ir.Constant(_I32, e)),
                    [blk[e] for blk in own_blocks],
                    [blk[e] for blk in up_blocks],
                )
        tail = builder.mul(n_blocks, ir.Constant(_I64, LANES))
        with cgutils.for_range_slice(builder, tail, n_feat, ir.Constant(_I64, 1)) as (f, _):
            step(
                builder.load(builder.gep(p_row, [f])),
                [rows.column(f) for rows in own],
                [rows.column(f) for rows in up],
            )
        for g in range(len(own)):
            _store_lanes(context, builder, ol_ty, ol_val, acc_left[g], g * LANES)
            _store_lanes(context, builder, ou_ty, ou_val, acc_up[g], g * LANES)
        return context.get_dummy_value()

    return types.void(X, ra, ru, prev, out_left, out_up), codegen


@intrinsic
def sqdist_row_mixed(typingctx, A, rk, W, X, rb, leaf_bits, sizes, recips, out):
    """``out[q] = sum_f (A[rk, f] - R_q[f]) ** 2`` (float64, in order of ``f``) for
    ``q < LANES``, ``R_q`` the centroid of neighbour ``q`` (see :class:`_MixedRows`: a row of
    ``X`` or a row of sums ``W`` divided by its size); the batches after the first one of a
    new cluster with more than 8 neighbours."""
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
            context,
            builder,
            w_ty,
            w_val,
            x_ty,
            x_val,
            rb_ty,
            rb_val,
            bits_val,
            bits_ty,
            sz_ty,
            sz_val,
            rc_ty,
            rc_val,
        )
        acc = _zero_acc(builder)
        with cgutils.for_range(builder, n_feat) as loop:
            x = _splat(builder, builder.load(builder.gep(a_row, [loop.index])), _V_F64)
            _add_square(builder, acc, x, rows.column(loop.index))
        _store_lanes(context, builder, out_ty, out_val, acc, 0)
        return context.get_dummy_value()

    return types.void(A, rk, W, X, rb, leaf_bits, sizes, recips, out), codegen


@intrinsic
def sqdist_merged(
    typingctx, S, X, WK, rk, ri, i_leaf, rj, j_leaf, size, rb, leaf_bits, sizes, recips, out
):
    """Merge two clusters and measure the result against up to ``LANES`` neighbours, in one
    pass over the features:

    * sums ``S[rk, f] = P[f] + Q[f]``, where ``P = X[ri]`` if ``i_leaf`` else ``S[ri]``
      and likewise ``Q`` from ``rj`` / ``j_leaf`` (``rk`` may equal ``ri`` or ``rj``);
    * centroid ``WK[0, f] = S[rk, f] / size`` (a scratch row, for later batches);
    * ``out[q] = sum_f (WK[0, f] - R_q[f]) ** 2`` in order of ``f``, ``q < LANES``, ``R_q``
      the centroid of neighbour ``q``: ``X[rb[q]]`` for a leaf (bit ``q`` of ``leaf_bits``),
      else ``S[rb[q]] / sizes[q]`` (see :class:`_MixedRows`).

    Exactly scikit-learn's operations (``m_k = m_i + m_j``, ``m_k / s_k``, then the sum):
    float32 inputs widen exactly, addition commutes bit for bit, divisions are correctly
    rounded. Fusing the passes lets the cache misses on the sums and the divisions run in the
    shadow of the add-latency-bound distance loop; and since centroids are derived from sums
    on the fly, no centroid array exists (half the memory, half the traffic of storing both).
    ``rb`` must not point at ``S[rk]``.
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
        (
            s_val,
            x_val,
            w_val,
            rk_val,
            ri_val,
            il_val,
            rj_val,
            jl_val,
            size_val,
            rb_val,
            bits_val,
            sz_val,
            rc_val,
            out_val,
        ) = args
        (
            s_ty,
            x_ty,
            w_ty,
            rk_ty,
            ri_ty,
            il_ty,
            rj_ty,
            jl_ty,
            size_ty,
            rb_ty,
            bits_ty,
            sz_ty,
            rc_ty,
            out_ty,
        ) = sig.args
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
            context,
            builder,
            s_ty,
            s_val,
            x_ty,
            x_val,
            rb_ty,
            rb_val,
            bits_val,
            bits_ty,
            sz_ty,
            sz_val,
            rc_ty,
            rc_val,
        )
        acc = _zero_acc(builder)
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

        def load_source(src, f0):
            """<LANES x double> of one merged cluster's sums at features f0..f0+LANES-1."""
            in_s, in_x, is_leaf = src
            with builder.if_else(is_leaf) as (then, otherwise):
                with then:
                    bb_x = builder.block
                    vx = vload(builder.gep(in_x, [f0]), vx_ty)
                    if not x_f64:
                        vx = builder.fpext(vx, _V_F64)  # exact
                with otherwise:
                    bb_s = builder.block
                    vs = vload(builder.gep(in_s, [f0]), _V_F64)
            phi = builder.phi(_V_F64)
            phi.add_incoming(vx, bb_x)
            phi.add_incoming(vs, bb_s)
            return phi

        def load_scalar(src, f):
            in_s, in_x, is_leaf = src
            with builder.if_else(is_leaf) as (then, otherwise):
                with then:
                    bb_x = builder.block
                    x = builder.load(builder.gep(in_x, [f]))
                    if not x_f64:
                        x = builder.fpext(x, _F64)
                with otherwise:
                    bb_s = builder.block
                    y = builder.load(builder.gep(in_s, [f]))
            phi = builder.phi(_F64)
            phi.add_incoming(x, bb_x)
            phi.add_incoming(y, bb_s)
            return phi

        n_blocks = builder.udiv(n_feat, ir.Constant(_I64, LANES))
        with cgutils.for_range(builder, n_blocks) as loop:
            f0 = builder.mul(loop.index, ir.Constant(_I64, LANES))
            m = builder.fadd(load_source(sources[0], f0), load_source(sources[1], f0))
            vstore(m, builder.gep(s_row, [f0]))
            w = builder.fdiv(m, _splat(builder, size64, _V_F64))
            vstore(w, builder.gep(w_row, [f0]))
            cols = rows.block(f0)
            for e in range(LANES):
                x = _splat(builder, builder.extract_element(w, ir.Constant(_I32, e)), _V_F64)
                _add_square(builder, acc, x, cols[e])
        tail = builder.mul(n_blocks, ir.Constant(_I64, LANES))
        with cgutils.for_range_slice(builder, tail, n_feat, ir.Constant(_I64, 1)) as (f, _):
            m = builder.fadd(load_scalar(sources[0], f), load_scalar(sources[1], f))
            builder.store(m, builder.gep(s_row, [f]))
            x = builder.fdiv(m, size64)
            builder.store(x, builder.gep(w_row, [f]))
            _add_square(builder, acc, _splat(builder, x, _V_F64), rows.column(f))
        _store_lanes(context, builder, out_ty, out_val, acc, 0)
        return context.get_dummy_value()

    return (
        types.void(S, X, WK, rk, ri, i_leaf, rj, j_leaf, size, rb, leaf_bits, sizes, recips, out),
        codegen,
    )
