"""Convolution and max-pool with XLA's forward and faster gradients on XLA's CPU backend.

XLA:CPU computes two of AlexNet's gradients slowly: a convolution's weight gradient, which
it lowers to a convolution whose window is the output's H x W (slow when that is large:
conv2's at 224px took 3x PyTorch's), and max-pool's, `select_and_scatter`, a scalar loop.
Here the forward passes are XLA's own ops, unchanged, and the gradients are written as the
sums they are:

- weight gradient, where `im2col_pays`: the input's patches (im2col) times the output
  gradient, one matmul. A strided convolution is first rewritten as a stride-1 one over a
  space-to-depth view of its input, so the patches are read as contiguous channels.
- input gradient: XLA's own transposed convolution (`jax.vjp` of the forward op).
- max-pool gradient: each window's gradient goes to its FIRST maximum in row-major window
  order, the element `select_and_scatter` (and PyTorch) choose on ties.

The products and sums are XLA's; only the order of float additions within a sum differs.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

NHWC = ("NHWC", "HWIO", "NHWC")


def _plain_conv(x, w, strides, padding):
    return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=NHWC)


def _space_to_depth(x, block: int):
    """[B, H, W, C] -> [B, H/block, W/block, block*block*C], channels ordered (row, col, c)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // block, block, w // block, block, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h // block, w // block, block * block * c)


def _patches(x, k_h: int, k_w: int, out_h: int, out_w: int):
    """im2col of a stride-1 convolution: [B, out_h, out_w, k_h*k_w*C], taps ordered (i, j, c).

    Slices and a concatenation: in the whole train step this measured faster on XLA:CPU than
    one gather (which wins when timed alone).
    """
    taps = [x[:, i : i + out_h, j : j + out_w, :] for i in range(k_h) for j in range(k_w)]
    return jnp.concatenate(taps, axis=-1)


def conv_weight_grad(x, g, kernel_shape, strides, padding):
    """d(sum(conv(x, w) * g)) / dw for an NHWC / HWIO convolution, as one matmul.

    `padding` is ((top, bottom), (left, right)); `g` is the output gradient [B, Ho, Wo, O].
    """
    k_h, k_w, c_in, c_out = kernel_shape
    s_h, s_w = strides
    _, out_h, out_w, _ = g.shape
    # Taps per block: a stride-s convolution with a k-tap kernel is a stride-1 one with
    # ceil(k/s) taps over s*s-times the channels (extra taps past k are dropped at the end).
    q_h, q_w = -(-k_h // s_h), -(-k_w // s_w)
    need_h, need_w = s_h * (out_h - 1 + q_h), s_w * (out_w - 1 + q_w)
    (top, _), (left, _) = padding
    x = lax.pad(
        x,
        jnp.zeros((), x.dtype),
        [(0, 0, 0), (top, need_h - x.shape[1] - top, 0), (left, need_w - x.shape[2] - left, 0)]
        + [(0, 0, 0)],
    )
    if (s_h, s_w) != (1, 1):
        if s_h != s_w:
            raise ValueError(f"unequal strides {strides} are not supported")
        x = _space_to_depth(x, s_h)
    cols = _patches(x, q_h, q_w, out_h, out_w)
    grad = lax.dot_general(
        cols.reshape(-1, cols.shape[-1]),
        g.reshape(-1, c_out),
        (((0,), (0,)), ((), ())),
        preferred_element_type=jnp.float32,
    ).astype(g.dtype)
    # Rows are ordered (qi, qj, ri, rj, c) with kernel tap (qi*s + ri, qj*s + rj).
    grad = grad.reshape(q_h, q_w, s_h, s_w, c_in, c_out).transpose(0, 2, 1, 3, 4, 5)
    return grad.reshape(q_h * s_h, q_w * s_w, c_in, c_out)[:k_h, :k_w]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_im2col_gradient(x, w, strides, padding):
    """XLA's NHWC / HWIO convolution, whose weight gradient is `conv_weight_grad`."""
    return _plain_conv(x, w, strides, padding)


def _conv_fwd(x, w, strides, padding):
    return _plain_conv(x, w, strides, padding), (x, w)


def _conv_bwd(strides, padding, residuals, g):
    x, w = residuals
    _, input_grad = jax.vjp(lambda x_: _plain_conv(x_, w, strides, padding), x)
    return input_grad(g)[0], conv_weight_grad(x, g, w.shape, strides, padding)


conv_im2col_gradient.defvjp(_conv_fwd, _conv_bwd)


def conv_general_dilated(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    batch_group_count=1,
    precision=None,
    preferred_element_type=None,
):
    """`lax.conv_general_dilated` for flax's `nn.Conv(conv_general_dilated=...)`.

    Plain NHWC convolutions with explicit padding where `im2col_pays` take the im2col weight
    gradient; anything else (small outputs, dilation, groups, string padding) is handed to
    `lax.conv_general_dilated` as is.
    """
    im2col = (
        not isinstance(padding, str)
        and all(d == 1 for d in (lhs_dilation or (1, 1)) + (rhs_dilation or (1, 1)))
        and feature_group_count == batch_group_count == 1
        and lhs.ndim == 4
        and _is_nhwc(dimension_numbers, lhs.ndim)
        and precision is None
        and preferred_element_type is None
        and len(set(window_strides)) == 1
        and im2col_pays(lhs.shape, rhs.shape, window_strides, padding)
    )
    if not im2col:
        return lax.conv_general_dilated(
            lhs,
            rhs,
            window_strides,
            padding,
            lhs_dilation,
            rhs_dilation,
            dimension_numbers,
            feature_group_count,
            batch_group_count,
            precision,
            preferred_element_type,
        )
    padding = tuple(tuple(p) for p in padding)
    return conv_im2col_gradient(lhs, rhs, tuple(window_strides), padding)


def im2col_pays(lhs_shape, rhs_shape, strides, padding) -> bool:
    """Whether the im2col weight gradient beats XLA's for this NHWC / HWIO convolution.

    XLA:CPU's weight gradient is a convolution whose window is the output's H x W: it slows
    down as the output grows (AlexNet at 224px: conv1's 55x55 3x slower than im2col, conv2's
    27x27 2.5x, conv3-5's 13x13 1.3x), but on small outputs it beats im2col, whose cost is
    copying the patches (the demo's 64px: conv1's 15x15 with 32 channels 3x faster in XLA,
    conv2's 7x7 1.5x). im2col pays on large outputs, or on mid-sized ones with enough output
    channels to spread the copy over.
    """
    positions = 1
    for size, k, s, (lo, hi) in zip(lhs_shape[1:3], rhs_shape[:2], strides, padding, strict=True):
        positions *= (size + lo + hi - k) // s + 1
    return positions >= 500 or (positions >= 100 and rhs_shape[3] >= 128)


def _is_nhwc(dimension_numbers, ndim: int) -> bool:
    if dimension_numbers is None:
        return False
    if isinstance(dimension_numbers, tuple) and all(isinstance(d, str) for d in dimension_numbers):
        return tuple(dimension_numbers) == NHWC
    # flax passes ConvDimensionNumbers: compare with NHWC's.
    return dimension_numbers == lax.conv_dimension_numbers((1,) * ndim, (1,) * ndim, NHWC)


def _window_views(x, window: int, stride: int, out_h: int, out_w: int):
    """The window's taps as strided views [B, out_h, out_w, C], in row-major window order."""
    for i in range(window):
        for j in range(window):
            limit = (x.shape[0], i + stride * (out_h - 1) + 1, j + stride * (out_w - 1) + 1)
            yield i, j, lax.slice(x, (0, i, j, 0), limit + x.shape[3:], (1, stride, stride, 1))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def max_pool(x, window: int, stride: int):
    """Max over `window` x `window` windows every `stride` pixels, VALID padding, NHWC."""
    lowest = jnp.array(-jnp.inf, x.dtype)
    return lax.reduce_window(
        x, lowest, lax.max, (1, window, window, 1), (1, stride, stride, 1), "VALID"
    )


def _max_pool_fwd(x, window, stride):
    y = max_pool(x, window, stride)
    return y, (x, y)


def _max_pool_bwd(window, stride, residuals, g):
    """Each window's gradient to its first maximum: `select_and_scatter` with `ge`."""
    x, y = residuals
    _, out_h, out_w, _ = y.shape
    taken = jnp.zeros(y.shape, bool)
    grad = jnp.zeros_like(x)
    zero = jnp.zeros((), x.dtype)
    for i, j, view in _window_views(x, window, stride, out_h, out_w):
        chosen = (view == y) & ~taken
        taken = taken | chosen
        part = jnp.where(chosen, g, zero)
        # Back to the input grid: tap (i, j) of output (r, c) is input (i + stride*r, ...).
        high_h = x.shape[1] - (i + stride * (out_h - 1) + 1)
        high_w = x.shape[2] - (j + stride * (out_w - 1) + 1)
        config = [(0, 0, 0), (i, high_h, stride - 1), (j, high_w, stride - 1), (0, 0, 0)]
        grad = grad + lax.pad(part, zero, config)
    return (grad,)


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)
