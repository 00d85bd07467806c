"""LLVM IR building blocks for the lane intrinsics of :mod:`._lanes` (plain Python, run at
compile time): row readers (8 features per contiguous vector load), the correctly rounded FMA
division, per-lane FMA accumulators. See :mod:`._lanes` for what they compute and why.

(Editing this module changes the compiled kernel: clear the numba cache as noted there.)
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError

LANES = 8

_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_F64 = ir.DoubleType()
_V_F64 = ir.VectorType(_F64, LANES)  # a block of LANES consecutive features


def _check_2d(arr: types.Type, name: str, float64: bool = False) -> None:
    dtypes = (types.float64,) if float64 else (types.float32, types.float64)
    if not (
        isinstance(arr, types.Array) and arr.ndim == 2 and arr.layout == "C" and arr.dtype in dtypes
    ):
        kind = "float64" if float64 else "float32/float64"
        raise TypingError(f"{name} must be a C-contiguous 2-D {kind} array, got {arr}")


def _check_int(value: types.Type, name: str) -> None:
    if not isinstance(value, types.Integer):
        raise TypingError(f"{name} must be an integer, got {value}")


def _splat(builder: ir.IRBuilder, value: ir.Value, vty: ir.VectorType) -> ir.Value:
    v = builder.insert_element(ir.Constant(vty, ir.Undefined), value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(
        v, v, ir.Constant(ir.VectorType(_I32, vty.count), [0] * vty.count)
    )


def _is_opaque(ptr_type: ir.Type) -> bool:
    return bool(getattr(ptr_type, "is_opaque", False))


class _Rows:
    """``count`` rows of one 2-D array (rows ``idx[offset : offset + count]``): one byte
    address per row, read 8 features at a time with contiguous loads, or one feature at a
    time for the tail; values come as float64 (float32 widens exactly)."""

    def __init__(
        self, context, builder, arr_ty, arr_val, idx_ty, idx_val, offset=0, count=LANES
    ) -> None:
        arr = context.make_array(arr_ty)(context, builder, arr_val)
        idx = context.make_array(idx_ty)(context, builder, idx_val)
        self.builder = builder
        self.elem = context.get_data_type(arr_ty.dtype)
        self.elem_size = context.get_abi_sizeof(self.elem)
        self.ptr_ty = arr.data.type
        row_bytes = cgutils.unpack_tuple(builder, arr.strides, 2)[0]
        base = builder.ptrtoint(arr.data, _I64)
        self.row_addrs = []
        for q in range(count):
            r = builder.load(builder.gep(idx.data, [ir.Constant(_I64, offset + q)]))
            r = context.cast(builder, r, idx_ty.dtype, types.int64)
            self.row_addrs.append(builder.add(base, builder.mul(r, row_bytes)))

    def _values(self, f0, count):
        b = self.builder
        off = b.mul(f0, ir.Constant(_I64, self.elem_size))
        vty = ir.VectorType(self.elem, count) if count > 1 else self.elem
        out = []
        for addr in self.row_addrs:
            ptr = b.inttoptr(b.add(addr, off), self.ptr_ty)
            if count == 1:
                v = b.load(ptr)
            elif _is_opaque(self.ptr_ty):
                v = b.load(ptr, typ=vty, align=self.elem_size)
            else:
                v = b.load(b.bitcast(ptr, vty.as_pointer()), align=self.elem_size)
            if self.elem != _F64:
                v = b.fpext(v, ir.VectorType(_F64, count) if count > 1 else _F64)  # exact
            out.append(v)
        return out

    def block(self, f0: ir.Value) -> list[ir.Value]:
        """Per row, features f0 .. f0+7 as <8 x double>."""
        return self._values(f0, LANES)

    def scalars(self, f: ir.Value) -> list[ir.Value]:
        """Per row, feature f as double."""
        return self._values(f, 1)


def _divide(builder: ir.IRBuilder, m: ir.Value, s: ir.Value, r: ir.Value) -> ir.Value:
    """Correctly rounded ``m / s`` from ``r = RN(1 / s)`` by Markstein's FMA correction:
    ``q = RN(m * r)``, the remainder ``e = m - q * s`` (exact through an FMA), then
    ``RN(q + e * r)``. Valid while ``e`` does not underflow (``|m| >= 2**-900`` or ``m == 0``
    suffices; see :class:`_MixedRows`). Scalars or vectors of double."""
    vty = m.type
    name = f"llvm.fma.v{vty.count}f64" if isinstance(vty, ir.VectorType) else "llvm.fma.f64"
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3), name)
    quo = builder.fmul(m, r)
    rem = builder.call(fma, [builder.fneg(quo), s, m])
    return builder.call(fma, [rem, r, quo])


class _MixedRows:
    """Centroids of ``LANES`` neighbours, lane ``q`` being ``X[idx[q]]`` (a leaf: the input
    row, float32 or float64) if bit ``q`` of ``leaf_bits`` is set, else ``W[idx[q]] /
    sizes[q]`` (an internal cluster: its float64 sums divided by its size).

    Every lane keeps a valid address in both arrays (row 0 of the array it does not read)
    and loads from both, then selects: no branch, no gather, and a leaf's float32 row is used
    in place instead of being copied to float64 first (the copy's cache misses used to be
    serialised, one row after the other; these loads all overlap).

    The division is IEEE ``m / s`` exactly as scikit-learn computes centroids. With float32
    inputs it is evaluated as ``q = m * r; e = fma(-q, s, m); q + e * r`` by an FMA
    (``r = 1 / s`` correctly rounded, ``recips[q]``): Markstein's correction, which returns
    the correctly rounded quotient whenever the remainder ``e`` does not underflow - always
    here, as sums of float32 values are multiples of 2**-149 - and costs three pipelined
    operations instead of a slow division. (Leaves take ``s = r = 1``, an exact identity up
    to the sign of a zero, which the squared difference ignores.) float64 inputs, whose tiny
    values could underflow the remainder, use the division itself.
    """

    def __init__(
        self,
        context,
        builder,
        w_ty,
        w_val,
        x_ty,
        x_val,
        idx_ty,
        idx_val,
        bits_val,
        bits_ty,
        sizes_ty,
        sizes_val,
        recips_ty,
        recips_val,
        count=LANES,
    ) -> None:
        b = builder
        self.builder = b
        w = context.make_array(w_ty)(context, b, w_val)
        x = context.make_array(x_ty)(context, b, x_val)
        idx = context.make_array(idx_ty)(context, b, idx_val)
        bits = context.cast(b, bits_val, bits_ty, types.int64)
        self.x_elem = context.get_data_type(x_ty.dtype)
        self.x_size = context.get_abi_sizeof(self.x_elem)
        w_row_bytes = cgutils.unpack_tuple(b, w.strides, 2)[0]
        x_row_bytes = cgutils.unpack_tuple(b, x.strides, 2)[0]
        w_base = b.ptrtoint(w.data, _I64)
        x_base = b.ptrtoint(x.data, _I64)
        self.w_ptr_ty = w.data.type
        self.x_ptr_ty = x.data.type
        zero = ir.Constant(_I64, 0)
        sizes = context.make_array(sizes_ty)(context, b, sizes_val)
        recips = context.make_array(recips_ty)(context, b, recips_val)
        self.fdiv = x_ty.dtype == types.float64
        self.lanes = []
        for q in range(count):
            r = context.cast(
                b, b.load(b.gep(idx.data, [ir.Constant(_I64, q)])), idx_ty.dtype, types.int64
            )
            leaf = b.icmp_unsigned("!=", b.and_(bits, ir.Constant(_I64, 1 << q)), zero)
            w_addr = b.add(w_base, b.mul(b.select(leaf, zero, r), w_row_bytes))
            x_addr = b.add(x_base, b.mul(b.select(leaf, r, zero), x_row_bytes))
            s_q = b.load(b.gep(sizes.data, [ir.Constant(_I64, q)]))
            r_q = b.load(b.gep(recips.data, [ir.Constant(_I64, q)]))
            self.lanes.append((leaf, w_addr, x_addr, s_q, r_q))

    def _load(self, addr, ptr_ty, elem, count, align):
        b = self.builder
        ptr = b.inttoptr(addr, ptr_ty)
        vty = ir.VectorType(elem, count) if count > 1 else elem
        if count == 1:
            return b.load(ptr)
        if _is_opaque(ptr_ty):
            return b.load(ptr, typ=vty, align=align)
        return b.load(b.bitcast(ptr, vty.as_pointer()), align=align)

    def _lane_values(self, f0, count):
        """Per lane, features f0 .. f0+count-1 as float64 (a vector if count > 1)."""
        b = self.builder
        w_off = b.mul(f0, ir.Constant(_I64, 8))
        x_off = b.mul(f0, ir.Constant(_I64, self.x_size))
        out = []
        vty = ir.VectorType(_F64, count) if count > 1 else _F64
        for leaf, w_addr, x_addr, s_q, r_q in self.lanes:
            vw = self._load(b.add(w_addr, w_off), self.w_ptr_ty, _F64, count, 8)
            vx = self._load(b.add(x_addr, x_off), self.x_ptr_ty, self.x_elem, count, self.x_size)
            if self.x_elem != _F64:
                vx = b.fpext(vx, vty)  # exact
            m = b.select(leaf, vx, vw)
            s_v = _splat(b, s_q, vty) if count > 1 else s_q
            if self.fdiv:
                out.append(b.fdiv(m, s_v))
            else:
                out.append(_divide(b, m, s_v, _splat(b, r_q, vty) if count > 1 else r_q))
        return out

    def block(self, f0):
        """Per lane, the centroid's features f0 .. f0+7 as <8 x double>."""
        return self._lane_values(f0, LANES)

    def scalars(self, f):
        """Per lane, the centroid's feature f as double."""
        return self._lane_values(f, 1)


def _row_ptr(context, builder, arr_ty, arr_val, row_ty, row_val):
    """(element pointer to the start of row ``row`` of a C-contiguous 2-D array, n_cols)."""
    arr = context.make_array(arr_ty)(context, builder, arr_val)
    n_cols = cgutils.unpack_tuple(builder, arr.shape, 2)[1]
    r = context.cast(builder, row_val, row_ty, types.int64)
    return builder.gep(arr.data, [builder.mul(r, n_cols)]), n_cols


class _LaneSums:
    """``LANES`` independent float64 sums of squares ``sum_f d_q[f] ** 2``, one per lane ``q``:
    a vector accumulator per lane for blocks of ``LANES`` features and a scalar one for the
    tail, each updated by fused multiply-adds; :meth:`store` adds each lane's partial sums
    in a fixed tree order. The order differs from a sequential sum (that is the point: no
    add-latency chain), so results differ from it by rounding; the kernel bounds that
    difference (see ``_ward_kernel.py``, "Exact selection from fast distances")."""

    def __init__(self, builder: ir.IRBuilder, count: int = LANES) -> None:
        self.builder = builder
        self.count = count
        self.vec = [
            cgutils.alloca_once_value(builder, ir.Constant(_V_F64, [0.0] * LANES))
            for _ in range(count)
        ]
        self.sca = [cgutils.alloca_once_value(builder, ir.Constant(_F64, 0.0)) for _ in range(count)]

    def add(self, q: int, d: ir.Value) -> None:
        """acc_q += d * d (one rounding), ``d`` a <LANES x double> block or a double."""
        b = self.builder
        acc = self.vec[q] if isinstance(d.type, ir.VectorType) else self.sca[q]
        b.store(_fma(b, d, d, b.load(acc)), acc)

    def store(self, context, out_ty, out_val, offset: int = 0) -> None:
        """``out[offset + q]`` = lane ``q``'s total, for every lane."""
        b = self.builder
        out = context.make_array(out_ty)(context, b, out_val)
        for q in range(self.count):
            v = b.load(self.vec[q])
            parts = [b.extract_element(v, ir.Constant(_I32, e)) for e in range(LANES)]
            while len(parts) > 1:
                parts = [b.fadd(parts[e], parts[e + len(parts) // 2]) for e in range(len(parts) // 2)]
            total = b.fadd(parts[0], b.load(self.sca[q]))
            b.store(total, b.gep(out.data, [ir.Constant(_I64, offset + q)]))


def _prefetch(builder: ir.IRBuilder, addr: ir.Value) -> None:
    """Prefetch (for reading, into all cache levels) the line at integer address ``addr``."""
    i8p = ir.IntType(8).as_pointer()
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [i8p, _I32, _I32, _I32]), "llvm.prefetch"
    )
    args = [builder.inttoptr(addr, i8p)] + [ir.Constant(_I32, v) for v in (0, 3, 1)]
    builder.call(fn, args)


def _fma(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, c: ir.Value) -> ir.Value:
    """``a * b + c`` with one rounding (llvm.fma), scalars or vectors of double."""
    ty = a.type
    name = f"llvm.fma.v{ty.count}f64" if isinstance(ty, ir.VectorType) else "llvm.fma.f64"
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty] * 3), name)
    return builder.call(fn, [a, b, c])
