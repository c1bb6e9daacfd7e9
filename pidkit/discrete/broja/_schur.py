r"""Assembly of the Schur complement of BROJA's Newton matrix, batched, in reused buffers.

The Newton matrix in :math:`(\lambda, \mu)` (see :mod:`._newton`) has the blocks

.. math::

    \begin{pmatrix} A & C^\top \\ C & B \end{pmatrix},\qquad
    A = \mathrm{blockdiag}_t(A_t),\quad B = \mathrm{blockdiag}_s(B_s),\quad
    C_s = Q_s + \Pi_s R_s,

with ``|Y| x |Y|`` diagonal blocks (:func:`pidkit.discrete.broja._newton.diagonal_blocks`)
and a coupling :math:`C_s` (rows ``y`` of ``mu[., s]``, columns ``(t, y)`` of ``lam``) that
is diagonal in ``y`` plus rank one per ``(t, s)``: :math:`Q_s` holds :math:`q_{yts}` on the
diagonal, :math:`\Pi_s` the softmax columns :math:`\pi_{ts}` and :math:`R_s` the rows
:math:`\rho_{ts}\pi_{ts}^\top`. Eliminating :math:`\mu` leaves the Schur complement

.. math:: S = A - \sum_s C_s^\top B_s^{-1} C_s \qquad (|T||Y| \times |T||Y|),

assembled here in two ways: :func:`structured_schur` from the explicit inverses
:math:`M_s = B_s^{-1}` in :math:`O(|Y|^2|T|^2|S|)` operations, and :func:`solved_schur` from
solves with :math:`B_s` (more accurate late in the run, where :math:`B_s` is ill-conditioned).
The large arrays (the two halves of the complement, ``|Y|^2|T|^2`` entries each, and two
scratch buffers of at most :data:`CHUNK` entries, one chunk of columns at a time) live in a
``work`` dictionary of flat buffers (:func:`buffer`), reused from one iteration to the next.
"""

from __future__ import annotations

import math
from typing import Any

from ..._backend import Backend

__all__ = ["structured_schur", "solved_schur", "subtract_from_a", "buffer", "contiguous",
           "column_chunks"]

#: Most entries of each ``(B, Y, S, u, Z)`` intermediate: the assemblies run over chunks of
#: the Schur complement's columns, so at k = 64 their two scratch buffers take 2 x 32 MiB
#: instead of 2 x 128 MiB (the peak of a solve fell from 610 to about 420 MiB; every column
#: is computed by the same products as before).
CHUNK = 2**22


def structured_schur(qm: Any, rpl: Any, pr: Any, m_s: Any, a_t: Any, xp: Backend,
                     work: dict | None = None) -> Any:
    r"""The Schur complement :math:`A - \sum_s C_s^\top M_s C_s` as ``(B, |T||Y|, |T||Y|)``.

    With :math:`C_s = Q_s + \Pi_s R_s` (``qm[y,t,s]`` the diagonal part, ``pr`` the columns of
    :math:`\Pi_s`, ``rpl[y,t,s]`` = :math:`\rho_{ts}\pi_{ts}(y)` the rows of :math:`R_s`),
    :math:`G_s = M_s \Pi_s` and :math:`W_s = \Pi_s^\top M_s \Pi_s`, entry
    ``[(t,y), (u,z)]`` of :math:`\sum_s C_s^\top M_s C_s` is

    .. math::

        \sum_s q_{yts} V_{ysuz} + \sum_s \rho_{ts}\pi_{ts}(y) X_{tsuz},\quad
        V_{ysuz} = M_s[y,z] q_{zus} + G_s[y,u] r_{zus},\quad
        X_{tsuz} = G_s[z,t] q_{zus} + W_s[t,u] r_{zus}

    (the first sum holds :math:`Q^\top M Q + Q^\top M \Pi R`, the second the transpose of
    the cross term and :math:`R^\top W R`): two batches of plain matrix products, over ``y``
    and over ``t``, each :math:`2|Y|^2|T|^2|S|` flops, written straight into the final
    ``[t, y, u, z]`` layout, a chunk of rows ``y`` (then ``t``) at a time (:func:`row_chunks`).

    Parameters
    ----------
    qm, rpl, pr : array ``(B, Y, T, S)``
        :math:`q`, :math:`\rho\pi` and :math:`\pi`, masked by the free variables.
    m_s : array ``(B, S, Y, Y)``
        The inverses :math:`B_s^{-1}`.
    a_t : array ``(B, T, Y, Y)``
        The blocks of :math:`A`.
    xp : Backend
    work : dict, optional
        Buffers reused across calls (:func:`buffer`); the result lives in ``work["schur"]``.
    """
    nb, ny, nt, ns = qm.shape
    # the small factors of the broadcast products below, made contiguous: a strided innermost
    # axis makes those products several times slower
    q_t = contiguous(xp.einsum("bzus->bsuz", qm), xp)[:, None]   # (B, 1, S, U, Z)
    r_t = contiguous(xp.einsum("bzus->bsuz", rpl), xp)[:, None]
    pr_s = xp.einsum("byts->bsyt", pr)
    g_s = m_s @ pr_s                                              # G_s, (B, S, Y, T)
    w_s = xp.swapaxes(pr_s, 2, 3) @ g_s                           # W_s, (B, S, T, T)
    m_y = xp.moveaxis(m_s, 1, 2)[:, :, :, None, :]                # M_s[y, z], (B, Y, S, 1, Z)
    g_y = xp.moveaxis(g_s, 1, 2)[:, :, :, :, None]                # G_s[y, u], (B, Y, S, U, 1)
    g_t = contiguous(xp.einsum("bszt->btsz", g_s), xp)[:, :, :, None, :]  # (B, T, S, 1, Z)
    w_t = xp.einsum("bstu->btsu", w_s)[:, :, :, :, None]          # W_s[t, u], (B, T, S, U, 1)
    rpl_t = xp.einsum("byts->btys", rpl)
    cc = buffer(work, "cc", (nb, ny, nt, nt * ny), qm, xp)         # (B, Y, T, UZ)
    schur = buffer(work, "schur", (nb, nt, ny, nt * ny), qm, xp)   # (B, T, Y, UZ)
    block = nb * ns * nt * ny         # one row of V or X: a whole (S, U, Z) block, so the
    for y in row_chunks(ny, block):   # broadcast products below run over contiguous inner axes
        shape_v = (nb, y.stop - y.start, ns, nt, ny)
        v = buffer(work, "vx", shape_v, qm, xp)                   # V, (B, y, S, U, Z)
        xp.multiply(m_y[:, y], q_t, out=v)
        v += xp.multiply(g_y[:, y], r_t, out=buffer(work, "tmp", shape_v, qm, xp))
        xp.matmul(qm[:, y], xp.reshape(v, (*shape_v[:3], nt * ny)), out=cc[:, y])
    for t in row_chunks(nt, block):
        shape_x = (nb, t.stop - t.start, ns, nt, ny)
        x = buffer(work, "vx", shape_x, qm, xp)                   # X, (B, t, S, U, Z)
        xp.multiply(g_t[:, t], q_t, out=x)
        x += xp.multiply(w_t[:, t], r_t, out=buffer(work, "tmp", shape_x, qm, xp))
        xp.matmul(rpl_t[:, t], xp.reshape(x, (*shape_x[:3], nt * ny)), out=schur[:, t])
    return subtract_from_a(schur, cc, a_t, xp)


def solved_schur(qm: Any, rpl: Any, pr: Any, block_solve: Any, a_t: Any, xp: Backend,
                 work: dict | None = None) -> Any:
    r"""The Schur complement :math:`A - \sum_s C_s^\top X_s` with :math:`X_s = B_s^{-1} C_s`
    from ``block_solve`` (:class:`pidkit.discrete.broja._newton.BlockInverse`), as
    ``(B, |T||Y|, |T||Y|)``: slower than :func:`structured_schur` (it forms ``C`` and ``X``,
    :math:`2|Y|^3|T||S|` more flops) but without the explicit inverse of the ill-conditioned
    :math:`B_s`. :math:`C_s^\top X_s` uses the structure of ``C``:

    .. math::

        \sum_s C_s^\top X_s\,[(t,y), \cdot] = \sum_s q_{yts} X_s[y, \cdot]
        + \sum_s \rho_{ts}\pi_{ts}(y) \sum_a \pi_{ts}(a) X_s[a, \cdot],

    two batches of matrix products, :math:`O(|Y|^2|T|^2|S|)`, a chunk of columns at a time
    (the solves with :math:`B_s` are column by column too). Arguments as
    :func:`structured_schur`'s; the result lives in ``work["schur"]``.
    """
    nb, ny, nt, ns = qm.shape
    pr_z = xp.einsum("bzts->bszt", pr)[..., None]                 # pi(z, t, s), (B, S, Z, T, 1)
    rpl_y = xp.einsum("byts->bsty", rpl)[:, :, None]              # (B, S, 1, T, Y)
    q_y = xp.einsum("byts->bsty", qm)
    pr_t = xp.swapaxes(xp.einsum("byts->bsyt", pr), 2, 3)         # (B, S, T, Y)
    rpl_t = xp.einsum("byts->btys", rpl)
    cc = buffer(work, "cc", (nb, ny, nt, nt, ny), qm, xp)          # (B, Y, T, U, Z)
    schur = buffer(work, "schur", (nb, nt, ny, nt, ny), qm, xp)    # (B, T, Y, U, Z)
    for u in column_chunks(qm.shape):
        n_u = u.stop - u.start
        # C[b, s, z, u, y] = d(y,z) q(y,u,s) + pi(z,u,s) rho pi(y,u,s), columns u of this chunk
        c = buffer(work, "vx", (nb, ns, ny, n_u, ny), qm, xp)
        xp.multiply(pr_z[:, :, :, u], rpl_y[:, :, :, u], out=c)
        xp.diagonal(c, 2, 4)[...] += q_y[:, :, u]
        x = block_solve(xp.reshape(c, (nb, ns, ny, n_u * ny)), overwrite=True)  # X_s columns
        xp.matmul(qm, xp.moveaxis(x, 1, 2), out=columns(cc, u, xp))
        px = xp.matmul(pr_t, x, out=buffer(work, "tmp", (nb, ns, nt, n_u * ny), qm, xp))
        xp.matmul(rpl_t, xp.moveaxis(px, 1, 2), out=columns(schur, u, xp))
    return subtract_from_a(xp.reshape(schur, (nb, nt, ny, nt * ny)),
                           xp.reshape(cc, (nb, ny, nt, nt * ny)), a_t, xp)


def subtract_from_a(schur: Any, cross: Any, a_t: Any, xp: Backend) -> Any:
    r"""Finish a Schur complement in place: ``schur`` holds the ``(B, T, Y, TY)`` part of
    :math:`\sum_s C_s^\top X_s` that ``cross`` (``(B, Y, T, TY)``) completes; returns

    .. math:: A - \sum_s C_s^\top X_s + 10^{-15} \max_i S_{ii}\, I

    as ``(B, TY, TY)`` (``A`` block diagonal, blocks ``a_t`` of shape ``(B, T, Y, Y)``; the
    relative ridge keeps the factorisation away from exact singularity)."""
    nb, nt, ny = schur.shape[:3]
    schur += xp.swapaxes(cross, 1, 2)
    schur = xp.reshape(schur, (nb, nt, ny, nt, ny))
    schur *= -1.0
    xp.diagonal(schur, 1, 3)[...] += xp.einsum("btyz->byzt", a_t)  # block-diagonal A
    schur = xp.reshape(schur, (nb, nt * ny, nt * ny))
    diag = xp.diagonal(schur)
    diag += (1e-15 * xp.max(diag, axis=1))[:, None]
    return schur


def row_chunks(rows: int, row_size: int) -> list[slice]:
    """Slices of ``range(rows)`` covering at most :data:`CHUNK` entries each, for rows of
    ``row_size`` entries (at least one row per slice)."""
    step = max(1, CHUNK // row_size)
    return [slice(i, min(i + step, rows)) for i in range(0, rows, step)]


def column_chunks(shape: tuple[int, ...]) -> list[slice]:
    """Slices of the ``U`` axis of the Schur complement's columns ``(u, z)`` (``shape`` the
    ``(B, Y, T, S)`` of the problem), each with at most :data:`CHUNK` entries in the
    ``(B, Y, S, u, Z)`` intermediates of one slice."""
    nb, ny, nt, ns = shape
    return row_chunks(nt, nb * ny * ns * ny)


def columns(a: Any, u: slice, xp: Backend) -> Any:
    """The columns ``(u, z)``, ``u`` in slice ``u``, of ``a[..., U, Z]`` as a view
    ``(..., len(u) Z)`` (the last two axes merge without a copy)."""
    return xp.reshape(a[..., u, :], (*a.shape[:-2], (u.stop - u.start) * a.shape[-1]))


def contiguous(x: Any, xp: Backend) -> Any:
    """A C-contiguous copy of ``x`` (row-major, whatever the strides of ``x``)."""
    return xp.reshape(xp.reshape(x, (-1,)), tuple(x.shape))


def buffer(work: dict | None, name: str, shape: tuple[int, ...], like: Any,
           xp: Backend) -> Any:
    """An uninitialised array of ``shape`` (``like``'s dtype and device): the prefix of the
    flat buffer ``work[name]``, grown when too small, or a fresh array without ``work``.

    Two calls with one ``name`` share memory: a buffer is free again once the array taken
    from it before is no longer needed.
    """
    size = math.prod(shape)
    buf = None if work is None else work.get(name)
    if buf is None or buf.shape[0] < size or buf.dtype != like.dtype:
        buf = xp.empty((size,), like)
        if work is not None:
            work[name] = buf
    return xp.reshape(buf[:size], shape)
