"""Eight squared Euclidean distances at once, each summed strictly in order (numba intrinsics).

The Ward kernel must reproduce scikit-learn's criterion bit for bit, so every squared
distance ``sum_f (a[f] - b[f]) ** 2`` has to be accumulated sequentially over ``f`` in float64:
no reassociation, no fused multiply-add. A compiler will not vectorise such a reduction, and a
scalar loop is bound by the latency of the floating-point add. But the distances from a new
cluster to its several neighbours are *independent* sums, so they can share SIMD registers
with one lane per distance: at feature ``f`` a gather loads ``b_q[f]`` for the eight rows
``q``, and one vector subtract / multiply / add advances all eight sums by one term. Each lane
performs exactly the scalar operations in the scalar order (IEEE vector arithmetic rounds lane
by lane), so the results are bit-identical to the scalar loop; the tests check this against
scikit-learn's own ``compute_ward_dist``.

LLVM lowers the gather to ``vgatherqpd`` on AVX-512 / AVX2 and to scalar loads elsewhere; the
results are identical either way.

Each intrinsic assumes what the kernel guarantees: C-contiguous 2-D arrays with the same
number of columns (>= 1), row indices in range, index arrays and ``out`` with >= 8 entries.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

__all__ = ["LANES", "sqdist_rows_rows", "sqdist_row_rows"]

LANES = 8


def _check(arr: types.Type, name: str) -> None:
    if not (
        isinstance(arr, types.Array)
        and arr.ndim == 2
        and arr.layout == "C"
        and arr.dtype in (types.float32, types.float64)
    ):
        raise TypingError(f"{name} must be a C-contiguous 2-D float32/float64 array, got {arr}")


def _gather_fn(builder: ir.IRBuilder, elem: ir.Type, vptr: ir.VectorType) -> ir.Function:
    """Declare ``llvm.masked.gather`` for ``LANES`` elements of type ``elem``."""
    ptr = vptr.element
    suffix_e = "f64" if isinstance(elem, ir.DoubleType) else "f32"
    if getattr(ptr, "is_opaque", False):
        suffix_p = f"v{LANES}p0"
    else:  # typed pointers (older llvmlite)
        suffix_p = f"v{LANES}p0{suffix_e}"
    velem = ir.VectorType(elem, LANES)
    fnty = ir.FunctionType(
        velem, [vptr, ir.IntType(32), ir.VectorType(ir.IntType(1), LANES), velem]
    )
    name = f"llvm.masked.gather.v{LANES}{suffix_e}.{suffix_p}"
    return cgutils.get_or_insert_function(builder.module, fnty, name)


def _splat(builder: ir.IRBuilder, value: ir.Value, vty: ir.VectorType) -> ir.Value:
    i32 = ir.IntType(32)
    v = builder.insert_element(ir.Constant(vty, ir.Undefined), value, ir.Constant(i32, 0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, LANES), [0] * LANES))


def _codegen(a_is_row: bool):
    def codegen(context, builder, sig, args):
        a_val, ra_val, b_val, rb_val, out_val = args
        aty, raty, bty, rbty, outty = sig.args
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        f64 = ir.DoubleType()
        v_f64 = ir.VectorType(f64, LANES)
        v_i64 = ir.VectorType(i64, LANES)
        A = context.make_array(aty)(context, builder, a_val)
        B = context.make_array(bty)(context, builder, b_val)
        RB = context.make_array(rbty)(context, builder, rb_val)
        OUT = context.make_array(outty)(context, builder, out_val)
        n_feat = cgutils.unpack_tuple(builder, B.shape, 2)[1]
        a_row_bytes = cgutils.unpack_tuple(builder, A.strides, 2)[0]
        b_row_bytes = cgutils.unpack_tuple(builder, B.strides, 2)[0]
        a_elem = context.get_data_type(aty.dtype)
        b_elem = context.get_data_type(bty.dtype)
        a_size = context.get_abi_sizeof(a_elem)
        b_size = context.get_abi_sizeof(b_elem)

        def row_addresses(arr, row_bytes, idx_arr, idx_ty):
            """<LANES x i64> byte addresses of the rows idx_arr[0..LANES-1] of arr."""
            base = builder.ptrtoint(arr.data, i64)
            addrs = ir.Constant(v_i64, ir.Undefined)
            for q in range(LANES):
                r = builder.load(builder.gep(idx_arr.data, [ir.Constant(i64, q)]))
                r = context.cast(builder, r, idx_ty.dtype, types.int64)
                a = builder.add(base, builder.mul(r, row_bytes))
                addrs = builder.insert_element(addrs, a, ir.Constant(i32, q))
            return addrs

        b_addrs = row_addresses(B, b_row_bytes, RB, rbty)
        b_vptr = ir.VectorType(B.data.type, LANES)
        b_gather = _gather_fn(builder, b_elem, b_vptr)
        mask = ir.Constant(ir.VectorType(ir.IntType(1), LANES), [1] * LANES)
        if a_is_row:
            r = context.cast(builder, ra_val, raty, types.int64)
            a_row = builder.gep(A.data, [builder.mul(r, cgutils.unpack_tuple(builder, A.shape, 2)[1])])
        else:
            RA = context.make_array(raty)(context, builder, ra_val)
            a_addrs = row_addresses(A, a_row_bytes, RA, raty)
            a_vptr = ir.VectorType(A.data.type, LANES)
            a_gather = _gather_fn(builder, a_elem, a_vptr)

        acc = cgutils.alloca_once_value(builder, ir.Constant(v_f64, [0.0] * LANES))
        with cgutils.for_range(builder, n_feat) as loop:
            f = loop.index
            b_ptrs = builder.inttoptr(
                builder.add(b_addrs, _splat(builder, builder.mul(f, ir.Constant(i64, b_size)), v_i64)),
                b_vptr,
            )
            bv = builder.call(
                b_gather, [b_ptrs, ir.Constant(i32, b_size), mask, ir.Constant(ir.VectorType(b_elem, LANES), ir.Undefined)]
            )
            if b_elem != f64:
                bv = builder.fpext(bv, v_f64)  # float32 -> float64 is exact
            if a_is_row:
                x = builder.load(builder.gep(a_row, [f]))
                if a_elem != f64:
                    x = builder.fpext(x, f64)
                av = _splat(builder, x, v_f64)
            else:
                a_ptrs = builder.inttoptr(
                    builder.add(a_addrs, _splat(builder, builder.mul(f, ir.Constant(i64, a_size)), v_i64)),
                    a_vptr,
                )
                av = builder.call(
                    a_gather,
                    [a_ptrs, ir.Constant(i32, a_size), mask, ir.Constant(ir.VectorType(a_elem, LANES), ir.Undefined)],
                )
                if a_elem != f64:
                    av = builder.fpext(av, v_f64)
            # No fast-math flags: plain IEEE subtract, multiply, add (never fused), lane by lane.
            d = builder.fsub(av, bv)
            builder.store(builder.fadd(builder.load(acc), builder.fmul(d, d)), acc)
        res = builder.load(acc)
        for q in range(LANES):
            builder.store(
                builder.extract_element(res, ir.Constant(i32, q)),
                builder.gep(OUT.data, [ir.Constant(i64, q)]),
            )
        return context.get_dummy_value()

    return codegen


@intrinsic
def sqdist_rows_rows(typingctx, A, ra, B, rb, out):
    """``out[q] = sum_f (A[ra[q], f] - B[rb[q], f]) ** 2`` for ``q < 8`` (float64, in order)."""
    _check(A, "A")
    _check(B, "B")
    return types.void(A, ra, B, rb, out), _codegen(a_is_row=False)


@intrinsic
def sqdist_row_rows(typingctx, A, ra, B, rb, out):
    """``out[q] = sum_f (A[ra, f] - B[rb[q], f]) ** 2`` for ``q < 8``; ``ra`` is one row."""
    _check(A, "A")
    _check(B, "B")
    if not isinstance(ra, types.Integer):
        raise TypingError(f"ra must be an integer row index, got {ra}")
    return types.void(A, ra, B, rb, out), _codegen(a_is_row=True)
