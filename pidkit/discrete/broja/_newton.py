r"""The Newton system of BROJA's interior-point method: factorise once, solve for several
right-hand sides.

At an iterate with block masses :math:`w_{ts}`, slacks :math:`s_{ts}` and softmax columns
:math:`\pi_{ts}` (see :mod:`._ipm`), the Newton step in the dual variables solves

.. math::

    H \begin{pmatrix}\Delta\lambda\\ \Delta\mu\end{pmatrix}
    = \begin{pmatrix} g_\lambda \\ g_\mu \end{pmatrix},\qquad
    H = E^\top \Big[\mathrm{Diag}(q) + \sum_{ts} \rho_{ts}\, \pi_{ts}\pi_{ts}^\top\Big] E,
    \qquad \rho = \frac{w}{s} - w,

where ``E`` maps :math:`(\lambda, \mu)` to the logits :math:`\lambda_{yt} + \mu_{ys}` and
:math:`q = w \pi`. One ``mu[y, s]`` per ``y`` is pinned (the gauge ``lam + c``, ``mu - c``),
and variables outside the support are fixed: their rows and columns of ``H`` are replaced by
identity ones, and their step is zero. In blocks,

.. math::

    H = \begin{pmatrix} A & C^\top \\ C & B \end{pmatrix},\quad
    A_t = \mathrm{diag}(q_{\cdot t}) + \sum_s \rho_{ts}\pi_{ts}\pi_{ts}^\top,\quad
    B_s = \mathrm{diag}(q_{\cdot s}) + \sum_t \rho_{ts}\pi_{ts}\pi_{ts}^\top,

with ``|Y| x |Y|`` diagonal blocks, one per ``t`` and one per ``s``
(:func:`diagonal_blocks`), so :math:`\mu` is eliminated block by block:

.. math::

    S\,\Delta\lambda = g_\lambda - \sum_s C_s^\top B_s^{-1} g_{\mu,s},\qquad
    \Delta\mu_s = B_s^{-1}(g_{\mu,s} - C_s \Delta\lambda),\qquad
    S = A - \sum_s C_s^\top B_s^{-1} C_s,

the Schur complement of size ``|Y||T|`` (the driver puts the smaller source in the ``T``
role). Two solvers, chosen by :func:`newton_solver`:

- :class:`DenseNewton` (``|Y||T||S| < STRUCTURED_SIZE``, batch memory permitting): :math:`S`
  from dense products with :math:`B_s^{-1} C_s`, factorised in float64; accurate to the end.
- :class:`StructuredNewton`: :math:`S` assembled from the diagonal-plus-rank-one structure of
  :math:`C_s` (:func:`pidkit.discrete.broja._schur.structured_schur`), factorised in float32
  when large, and used as the preconditioner of conjugate gradients on the exact ``H``
  (:func:`refine`); where that falls short of ``ACCURACY``, :math:`S` is reassembled from
  solves with :math:`B_s` and factorised again, in float32 when large (:data:`LEVELS`), and
  in float64 where that falls short too.

Factorisations are the backend's (:meth:`pidkit._backend.Backend.sym_factor`).
"""

from __future__ import annotations

from typing import Any

from ..._backend import Backend, Factor
from ._schur import solved_schur, structured_schur

__all__ = ["newton_solver", "DenseNewton", "StructuredNewton", "BlockInverse",
           "diagonal_blocks", "newton_product", "refine"]

#: Most conjugate-gradient steps refining each Newton direction (per factor).
REFINE = 10
#: Relative residual a structured Newton direction must reach (else the next factor of
#: :data:`LEVELS` is tried).
ACCURACY = 1e-12
#: Added to the unit diagonal of the scaled ``mu``-``mu`` blocks: once ``rho = w/s`` dwarfs
#: ``q`` they can be rank-deficient in floating point (a relative change far below the accuracy
#: the directions need).
RIDGE = 1e-13
#: Smallest Schur complement size |Y|min(|T|,|S|) factorised first in float32 (below, float64
#: is cheap enough and spares the extra refinement steps float32 needs).
SINGLE_SIZE = 2048
#: The factors :class:`StructuredNewton` tries in turn, as ``(solved, single)``: the
#: structured Schur complement, then the one from solves with :math:`B_s`, in float32 (when
#: ``|Y||T| >= SINGLE_SIZE``; else those levels are skipped) and then in float64. Late in a
#: run the structured assembly loses digits to cancellation and its float32 Cholesky breaks
#: down; the solved complement is accurate, so its float32 factor is enough as a
#: preconditioner (at k = 64 it brought the last iteration's directions to the target where
#: the float64 factor, 0.5 s more on one thread, was used before).
LEVELS = ((False, True), (True, True), (True, False))
#: Smallest |Y||T||S| for which the structured Schur complement is used (below: dense).
#: Measured on one pmf per size (2026-12-04, one BLAS thread, numpy / torch with backward):
#: dense 15.7 / 20.7 ms against structured 24.9 / 34.0 ms at k = 10, 32.7 / 39.0 against
#: 43.5 / 55.9 at k = 16, but 87 against 79 ms at k = 20 and 201 against 144 at k = 24.
STRUCTURED_SIZE = 6000
#: The dense solver also serves tables whose target alphabet is at most 1/SMALL_TARGET of the
#: smaller source's, up to DENSE_WORK multiply-adds ``|Y|^3 |T| |S| min(|T|, |S|)`` per Newton
#: matrix: there its cost is small and the structured one's is not (full solves, one BLAS
#: thread, 2026-12-05, structured / dense: 3 x 100 x 100 2.02 / 0.32 s, 4 x 64 x 64
#: 0.43 / 0.12 s, 8 x 40 x 40 0.12 / 0.07 s, 10 x 30 x 30 0.10 / 0.06 s, 12 x 48 x 48
#: 0.34 / 0.24 s; but 16 x 32 x 32 0.20 / 0.23 s and cubic 20 to 24: 0.93-0.94x).
SMALL_TARGET, DENSE_WORK = 3, 1e9
#: Most bytes the dense solver's coupling ``B_s^{-1} C_s`` (``8 |Y|^2 |T| |S|`` per item) may
#: take for a whole batch; larger batches use the structured solver whatever their size.
DENSE_MEMORY = 2**28


def newton_solver(q: Any, pi: Any, rho: Any, free_lam: Any, free_mu: Any, xp: Backend,
                  work: dict | None = None) -> DenseNewton | StructuredNewton:
    """Factorise the Newton matrix once; the returned solver maps ``(g_lam, g_mu)`` to
    ``(d_lam, d_mu)`` (call it).

    Parameters
    ----------
    q, pi : array ``(B, Y, T, S)``
        Primal point :math:`q = w\\pi` and the softmax columns.
    rho : array ``(B, T, S)``
        :math:`w/s - w` on live blocks, 0 elsewhere.
    free_lam, free_mu : bool array ``(B, Y, T)``, ``(B, Y, S)``
        Variables that move; the others get a unit diagonal and a zero step.
    xp : Backend
    work : dict, optional
        Buffers reused across Newton matrices (structured solver only).

    Returns
    -------
    DenseNewton or StructuredNewton
        :class:`DenseNewton` when its coupling fits in :data:`DENSE_MEMORY` bytes for the
        batch and either ``|Y||T||S| <`` :data:`STRUCTURED_SIZE` or the target is small next
        to the sources (:data:`SMALL_TARGET`, :data:`DENSE_WORK`).
    """
    nb, ny, nt, ns = q.shape
    small = ny * nt * ns < STRUCTURED_SIZE or (
        SMALL_TARGET * ny <= min(nt, ns) and ny ** 3 * nt * ns * min(nt, ns) <= DENSE_WORK)
    if small and 8 * nb * ny * ny * nt * ns <= DENSE_MEMORY:
        return DenseNewton(q, pi, rho, free_lam, free_mu, xp)
    return StructuredNewton(q, pi, rho, free_lam, free_mu, xp, work)


class BlockInverse:
    r""":math:`B_s^{-1} x` for the ``mu``-``mu`` blocks, by solves, never an explicit inverse.

    The blocks are ill-conditioned near the end, so they are scaled to a unit diagonal plus
    the ridge, :math:`\tilde B_s = D B_s D + \mathrm{RIDGE}\, I` with
    :math:`D = \mathrm{diag}(B_s)^{-1/2}` (:func:`unit_diagonal_scaling`), factorised once by
    Cholesky (LU solves at each call where rounding made a block indefinite), and

    .. math:: B_s^{-1} x = D \tilde B_s^{-1} D x.

    Call it with ``x`` of shape ``(B, S, Y, k)``; ``overwrite=True`` lets it solve in ``x``'s
    memory where the backend can (the ``(B, S, Y, |T||Y|)`` right-hand sides of
    :func:`~pidkit.discrete.broja._schur.solved_schur` are 134 MB at k = 64, and a fresh
    array of that size costs about as much to fault in as the solve). With ``unchecked``, the
    blocks are factorised by :meth:`~pidkit._backend.Backend.lu_factor` instead, whose status
    stays on the device.
    """

    def __init__(self, b_scaled: Any, d: Any, xp: Backend, unchecked: bool = False):
        self.b_scaled = b_scaled
        self.d = d[..., None]
        self.lu = xp.lu_factor(b_scaled) if unchecked else None
        self.chol = None if unchecked else xp.cho_factor(b_scaled)
        self.xp = xp

    def __call__(self, x: Any, overwrite: bool = False) -> Any:
        xp = self.xp
        if overwrite:
            x *= self.d
        else:
            x = self.d * x
        if self.lu is not None:
            x = xp.sym_solve(self.lu, x)
        elif self.chol is None:
            x = xp.solve(self.b_scaled, x)
        else:
            x = xp.cho_solve(self.chol, x, overwrite_b=overwrite)
        x *= self.d
        return x

    def lower(self, x: Any) -> Any:
        r""":math:`L_s^{-1} D x` for ``x`` ``(B, S, Y, k)``, where :math:`\tilde B_s = L_s
        L_s^\top` (the Cholesky factor; only where it exists, ``chol`` not ``None``): with
        :math:`K_s = L_s^{-1} D`, :math:`B_s^{-1} = K_s^\top K_s`."""
        return self.xp.cho_lower_solve(self.chol, self.d * x)


def diagonal_blocks(q: Any, rpi: Any, pi: Any, fl: Any, fm: Any, xp: Backend,
                    unchecked: bool = False) -> tuple[BlockInverse, Any]:
    r"""The diagonal blocks of the Newton matrix with fixed variables replaced by identity rows.

    Returns ``(inverse_b, a_t)``: ``inverse_b`` the :class:`BlockInverse` of the ``mu``-``mu``
    blocks, one per ``s``,
    :math:`B_s = \mathrm{diag}(q(\cdot, s)) + \sum_t \rho_{ts} \pi_{ts} \pi_{ts}^\top`;
    ``a_t`` ``(B, T, Y, Y)`` the ``lam``-``lam`` blocks, one per ``t``. ``rpi = rho * pi``;
    ``fl``, ``fm`` the free variables as floats; ``unchecked``: see :class:`BlockInverse`.
    """
    b_scaled = blocks(xp.sum(q, axis=2), rpi, pi, fm, 3, xp)
    d = unit_diagonal_scaling(b_scaled, xp)
    b_scaled *= d[:, :, :, None] * d[:, :, None, :]
    xp.diagonal(b_scaled)[...] += RIDGE
    inverse_b = BlockInverse(b_scaled, d, xp, unchecked)
    return inverse_b, blocks(xp.sum(q, axis=3), rpi, pi, fl, 2, xp)


def blocks(q_sum: Any, rpi: Any, pi: Any, free: Any, axis: int, xp: Backend) -> Any:
    r"""One family of diagonal blocks of the Newton matrix, ``(B, K, Y, Y)`` for ``K`` = ``T``
    (``axis`` 2 of ``pi[b, y, t, s]``) or ``S`` (``axis`` 3):

    .. math:: \mathrm{diag}(q_k) + \sum \rho \pi \pi^\top

    (the sum and ``q_sum`` ``(B, Y, K)`` over the other source; the rank-one sum one batched
    product, 2-3x faster than the equivalent ``einsum`` at ``|Y| = |T| = |S| = 4``), with the
    rows and columns of fixed variables (``free`` ``(B, Y, K)`` zero) replaced by identity
    ones."""
    free_k = xp.moveaxis(free, 1, 2)                              # (B, K, Y)
    other = 5 - axis
    out = (xp.permute_dims(rpi, (0, axis, 1, other))                  # (B, K, Y, other)
           @ xp.permute_dims(pi, (0, axis, other, 1)))                # (B, K, other, Y)
    out *= free_k[:, :, :, None] * free_k[:, :, None, :]
    xp.diagonal(out)[...] += xp.moveaxis(q_sum, 1, 2) * free_k + (1.0 - free_k)
    return out


def unit_diagonal_scaling(b_s: Any, xp: Backend) -> Any:
    """``1 / sqrt(diag(b_s))`` per block, ``(B, S, Y)``; 1 where the diagonal is 0 (a free
    ``mu[y, s]`` whose softmax weights all underflowed: its row is then zero and only the ridge
    keeps the block invertible, instead of a division by zero poisoning the item)."""
    diag = xp.einsum("bsyy->bsy", b_s)
    return 1.0 / xp.where(diag > 0, diag, 1.0) ** 0.5


class DenseNewton:
    r"""The Newton system through the dense Schur complement
    :math:`S = A - \sum_s C_s^\top B_s^{-1} C_s`, factorised in float64
    (:math:`O(|Y|^3|T|^2|S|)` operations: slower for large problems but accurate to the end).

    Shapes and arguments as :func:`newton_solver`'s. Where every block :math:`\tilde B_s`
    has a Cholesky factor :math:`L_s` (:class:`BlockInverse`), the symmetric form: with
    :math:`K_s = L_s^{-1} D` (so :math:`B_s^{-1} = K_s^\top K_s`) and :math:`N_s = K_s C_s`
    (kept), :math:`S = A - N^\top N`, and a solve is :math:`u = K g_\mu`,
    :math:`S\,\Delta\lambda = g_\lambda - N^\top u`,
    :math:`\Delta\mu = K^\top (u - N \Delta\lambda)`: one forward substitution per block for
    the whole Newton matrix, and two products with the small :math:`K_s` per right-hand side.
    Otherwise (some block indefinite by rounding, or ``unchecked``), with
    :math:`X_s = B_s^{-1} C_s` (kept) and :math:`v = B^{-1} g_\mu`:
    :math:`S = A - C^\top X`, :math:`S\,\Delta\lambda = g_\lambda - C^\top v`,
    :math:`\Delta\mu = v - X \Delta\lambda`, one solve with ``B`` per right-hand side. At
    k = 4 the symmetric form spares the coupling :math:`C` (``|Y|^2 |T| |S|`` entries per
    item) and the back substitutions, about a fifth of the time of the Newton matrix (batches
    of 1024 pmfs, one thread, 2026-12-06). With ``unchecked`` every factorisation is an LU one
    whose status stays on the device (:meth:`~pidkit._backend.Backend.lu_factor`): the solver
    of the fixed-iteration mode (:func:`pidkit.discrete.broja._ipm.solve_fixed`) at every
    size.
    """

    def __init__(self, q: Any, pi: Any, rho: Any, free_lam: Any, free_mu: Any, xp: Backend,
                 unchecked: bool = False):
        nb, ny, nt, ns = q.shape
        self.xp = xp
        self.shape = (nb, ny, nt, ns)
        self.fl = fl = xp.float64(free_lam)
        self.fm = fm = xp.float64(free_mu)
        self.q, self.pi = q, pi
        self.rpi = rpi = rho[:, None] * pi
        self.block_solve, a_t = diagonal_blocks(q, rpi, pi, fl, fm, xp, unchecked)
        # coupling C[b, s, z, t, y] = fl(y,t) fm(z,s) (d(y,z) q(y,t,s) + rho pi(y) pi(z))
        # (contiguous products in the layouts used below: two-operand einsums, no views)
        pi_m = xp.einsum("bzts,bzs->bszt", pi, fm)                       # (B, S, Y, T)
        r_l = xp.einsum("byts,byt->bsty", rpi, fl)[:, :, None]           # (B, S, 1, T, Y)
        q_l = xp.einsum("byts,byt->bsty", q, fl)[:, :, None]
        fm_s = xp.moveaxis(fm, 1, 2)                                     # (B, S, Y)
        symmetric = self.block_solve.chol is not None
        self.k = None                          # K_s (symmetric form), set by _solved_cross
        self.x = self._solved_cross(pi_m, r_l, q_l, fm_s, xp, symmetric)
        if symmetric:
            self.cross_t = xp.swapaxes(self.x, 1, 2)
        else:
            cross = pi_m[..., None] * r_l
            xp.diagonal(cross, 2, 4)[...] += q_l[:, :, 0] * fm_s[:, :, None, :]
            cross = xp.reshape(cross, (nb, ns, ny, nt * ny))
            self.cross_t = xp.swapaxes(xp.reshape(cross, (nb, ns * ny, nt * ny)), 1, 2)
        schur = self.cross_t @ self.x
        schur *= -1.0
        per_block = xp.reshape(schur, (nb, nt, ny, nt, ny))
        xp.diagonal(per_block, 1, 3)[...] += xp.einsum("btyz->byzt", a_t)  # block-diagonal A
        diag = xp.diagonal(schur)
        diag += (1e-15 * xp.max(diag, axis=1))[:, None]
        self.factor = xp.lu_factor(schur) if unchecked else xp.sym_factor(schur)

    def _solved_cross(self, pi_m: Any, r_l: Any, q_l: Any, fm_s: Any, xp: Backend,
                      symmetric: bool) -> Any:
        r""":math:`X_s = B_s^{-1} C_s`, or with ``symmetric`` :math:`N_s = K_s C_s` (then
        :math:`K_s` with the columns of fixed variables zero is kept, ``k``
        ``(B, S, Y, Y)``), as ``(B, S |Y|, |T| |Y|)``, from
        ``|Y| + |T|`` right-hand sides instead of the ``|T||Y|`` columns of :math:`C_s`:
        column ``(t, y)`` of :math:`C_s` is :math:`f_{yt}\,(f_{ys}\, q(y,t,s)\, e_y +
        r(y,t,s)\, f_s \circ \pi_{ts})` (``f`` the free masks, :math:`r = \rho\pi`), so with
        :math:`[M_s \mid G_s] = B_s^{-1} [\mathrm{Diag}(f_s) \mid f_s \circ \Pi_s]` (or
        :math:`K_s [\ldots]`, :meth:`BlockInverse.lower`),

        .. math:: X_s[:, (t, y)] = f_{yt}\,(M_s[:, y]\, q(y,t,s) + G_s[:, t]\, r(y,t,s)).

        Both parts of :math:`C_s` are non-negative, so solving them separately loses nothing
        to cancellation. ``pi_m`` ``(B, S, Y, T)`` is :math:`f_s \circ \Pi_s`; ``r_l``,
        ``q_l`` ``(B, S, 1, T, Y)`` hold :math:`f_{yt} r` and :math:`f_{yt} q`."""
        nb, ns, ny, nt = pi_m.shape
        identity = xp.eye(ny, like=pi_m) * fm_s[:, :, None, :]         # (B, S, Y, Y)
        rhs = xp.concatenate([identity, pi_m], axis=3)
        solved = self.block_solve.lower(rhs) if symmetric else self.block_solve(rhs)
        m_s, g_s = solved[..., :ny], solved[..., ny:]
        if symmetric:
            self.k = xp.copy(m_s)
        x = m_s[:, :, :, None, :] * q_l
        x += g_s[..., None] * r_l
        return xp.reshape(x, (nb, ns * ny, nt * ny))

    def solve(self, g_lam: Any, g_mu: Any) -> tuple[Any, Any]:
        """``(d_lam, d_mu)`` of shapes ``(B, Y, T)``, ``(B, Y, S)`` for the right-hand side
        ``(g_lam, g_mu)``."""
        xp, fl, fm = self.xp, self.fl, self.fm
        nb, ny, nt, ns = self.shape
        if self.k is None:
            v = self.block_solve(xp.moveaxis(g_mu * fm, 1, 2)[..., None])   # B_s^{-1} g_mu_s
        else:
            v = xp.einsum("bsyz,bzs->bsy", self.k, g_mu)                     # K_s g_mu_s
        v = xp.reshape(v, (nb, ns * ny, 1))
        rhs = xp.reshape(xp.moveaxis(g_lam * fl, 1, 2), (nb, nt * ny, 1)) - self.cross_t @ v
        d_lam = xp.sym_solve(self.factor, rhs)                        # (B, T*Y, 1)
        d_mu = xp.reshape(v - self.x @ d_lam, (nb, ns, ny))           # (B, S, Y)
        if self.k is not None:
            d_mu = xp.einsum("bszy,bsz->bsy", self.k, d_mu)                  # K_s^T (...)
        d_lam = xp.moveaxis(xp.reshape(d_lam, (nb, nt, ny)), 1, 2) * fl
        return d_lam, xp.moveaxis(d_mu, 1, 2) * fm

    def refined(self, g_lam: Any, g_mu: Any, rows: Any) -> tuple[Any, Any]:
        r""":meth:`solve` and, for the items ``rows`` ``(B,)``, one step of iterative
        refinement against the exact Newton matrix (:func:`newton_product`, without the ridge
        and the diagonal shift of the factorised matrices):
        :math:`d \leftarrow d + \tilde H^{-1}(g - H d)`. Late in the run
        (``rho = w/s >> q``) those perturbations leave relative errors near 1e-8 in the
        directions, and some iterations stall above ``tol``. Per item, so that an item's
        direction does not depend on the others of its batch."""
        g_lam, g_mu = g_lam * self.fl, g_mu * self.fm
        d_lam, d_mu = self.solve(g_lam, g_mu)
        h_lam, h_mu = newton_product(self, d_lam, d_mu)
        e_lam, e_mu = self.solve(g_lam - h_lam, g_mu - h_mu)
        rows = rows[:, None, None]
        return (d_lam + self.xp.where(rows, e_lam, 0.0),
                d_mu + self.xp.where(rows, e_mu, 0.0))

    __call__ = solve


class StructuredNewton:
    r"""The Newton system through the structured Schur complement, as the preconditioner of
    conjugate gradients on the exact Newton matrix.

    The coupling of ``lam[., t]`` and ``mu[., s]`` is :math:`C_s = Q_s + \Pi_s R_s`, diagonal
    in ``y`` plus rank one per ``(t, s)``, so with :math:`M_s = B_s^{-1}` (``|Y| x |Y|``,
    computed after a symmetric diagonal scaling, :class:`BlockInverse`) the Schur complement
    :math:`A - \sum_s C_s^\top M_s C_s` is assembled in :math:`O(|Y|^2 |T|^2 |S|)` operations
    (:func:`~pidkit.discrete.broja._schur.structured_schur`; the dense product
    :math:`C^\top (B^{-1} C)` costs :math:`O(|Y|^3 |T|^2 |S|)`), in float64 (a float32
    assembly loses too much to cancellation late in the run), then factorised by Cholesky
    (:math:`O(|Y|^3 |T|^3)`) in float32 when ``|Y||T| >= SINGLE_SIZE`` (half the time of
    float64). The factor only preconditions: each direction is refined by conjugate gradients
    on the exact Newton matrix (applied matrix-free in float64, :meth:`apply`) until its
    relative residual is below ``ACCURACY`` (:func:`refine`); where that fails, the Schur
    complement is reassembled from solves with :math:`B_s`
    (:func:`~pidkit.discrete.broja._schur.solved_schur`) and factorised in float32 (large
    complements), then in float64 (:data:`LEVELS`). Each factor is computed at most once per
    Newton matrix and kept for the next right-hand side.

    Shapes and arguments as :func:`newton_solver`'s.
    """

    def __init__(self, q: Any, pi: Any, rho: Any, free_lam: Any, free_mu: Any, xp: Backend,
                 work: dict | None = None):
        nb, ny, nt, ns = q.shape
        self.xp, self.work, self.shape = xp, work, (nb, ny, nt, ns)
        self.q, self.pi = q, pi
        self.fl = fl = xp.float64(free_lam)
        self.fm = fm = xp.float64(free_mu)
        self.qm = q * fl[:, :, :, None] * fm[:, :, None, :]           # D part, (B, Y, T, S)
        self.rpl = rho[:, None] * pi * fl[:, :, :, None]              # lam side of the rank one
        self.pr = pi * fm[:, :, None, :]                              # mu side of the rank one
        self.rpi = rho[:, None] * pi
        self.block_solve, self.a_t = diagonal_blocks(q, self.rpi, pi, fl, fm, xp)
        self.m_s = self.block_solve(xp.eye(ny, like=q))              # B_s^{-1}, (B, S, Y, Y)
        self.schur = structured_schur(self.qm, self.rpl, self.pr, self.m_s, self.a_t, xp, work)
        self.levels = (LEVELS if nt * ny >= SINGLE_SIZE        # else float64 throughout
                       else tuple(dict.fromkeys((solved, False) for solved, _ in LEVELS)))
        self.factors: dict[int, Factor] = {}
        self.reassembled = False                  # self.schur holds the solved complement
        self.solved: list[Factor] = []            # the factors of the solved complement

    def factor(self, level: int) -> Factor:
        """The factor of ``self.levels[level]``, or of the next level where its Cholesky
        breaks down (the last level's never does: an LU factorisation takes over)."""
        if level not in self.factors:
            solved, single = self.levels[level]
            if solved and not self.reassembled:
                # the same buffer as the structured complement, whose factor is made by now
                self.schur = solved_schur(self.qm, self.rpl, self.pr, self.block_solve,
                                          self.a_t, self.xp, self.work)
                self.reassembled = True
            factor = self.xp.sym_factor(self.schur, single=single)
            if factor is None:
                factor = self.factor(level + 1)
            elif solved:
                self.solved.append(factor)
            self.factors[level] = factor
        return self.factors[level]

    def inverse_b(self, x: Any, exact: bool) -> Any:
        """:math:`B_s^{-1} x` for ``x`` ``(B, S, Y)``: the explicit inverse :math:`M_s`, or
        (``exact``) solves with the scaled blocks."""
        if exact:
            return self.block_solve(x[..., None])[..., 0]
        return (self.m_s @ x[..., None])[..., 0]

    def approx_solve(self, factor: Factor, g_l: Any, g_m: Any) -> tuple[Any, Any]:
        r"""The Newton direction through the factorised Schur complement ``factor``:

        .. math::

            S\,\Delta\lambda = g_\lambda - \sum_s C_s^\top B_s^{-1} g_{\mu,s},\qquad
            \Delta\mu_s = B_s^{-1} (g_{\mu,s} - C_s \Delta\lambda).

        With a factor of the solved Schur complement, :math:`B_s^{-1}` by solves too (the
        explicit inverse loses the digits that factor keeps)."""
        xp, fl, fm = self.xp, self.fl, self.fm
        nb, ny, nt, ns = self.shape
        qm, rpl, pr = self.qm, self.rpl, self.pr
        exact = any(factor is f for f in self.solved)
        g_ms = xp.moveaxis(g_m * fm, 1, 2)                            # (B, S, Y)
        v = xp.moveaxis(self.inverse_b(g_ms, exact), 1, 2)[:, :, None, :]  # (B, Y, 1, S)
        pv = xp.sum(pr * v, axis=1, keepdims=True)                    # (B, 1, T, S)
        ctv = xp.sum(qm * v + rpl * pv, axis=3)                       # C^T M g_mu, (B, Y, T)
        rhs = xp.reshape(xp.moveaxis(g_l * fl - ctv, 1, 2), (nb, nt * ny, 1))
        d_l = xp.moveaxis(xp.reshape(xp.sym_solve(factor, rhs), (nb, nt, ny)), 1, 2) * fl
        d_l4 = d_l[:, :, :, None]
        rd = xp.sum(rpl * d_l4, axis=1, keepdims=True)                # (B, 1, T, S)
        c_d = xp.moveaxis(xp.sum(qm * d_l4 + pr * rd, axis=2), 1, 2)  # C d_lam, (B, S, Y)
        d_m = self.inverse_b(g_ms - c_d, exact)                       # (B, S, Y)
        return d_l, xp.moveaxis(d_m, 1, 2) * fm

    def apply(self, d_l: Any, d_m: Any) -> tuple[Any, Any]:
        """The exact Newton matrix times ``(d_l, d_m)`` (:func:`newton_product`)."""
        return newton_product(self, d_l, d_m)

    def solve(self, g_lam: Any, g_mu: Any) -> tuple[Any, Any]:
        """``(d_lam, d_mu)`` for the right-hand side ``(g_lam, g_mu)``.

        The factors of :data:`LEVELS` in turn while refinement leaves some item above
        ``ACCURACY`` (the structured assembly loses digits to cancellation once
        ``rho = w/s`` is large); each factor is kept for the next right-hand side; per item
        the direction with the smallest residual."""
        xp = self.xp
        g_lam, g_mu = g_lam * self.fl, g_mu * self.fm
        target = ACCURACY**2 * dot(g_lam, g_mu, g_lam, g_mu, xp)
        tried = [self.factor(0)]
        d_lam, d_mu, size = refine(self, tried[0], g_lam, g_mu, target)
        for level in range(1, len(self.levels)):
            if not xp.any(size > target):
                break
            factor = self.factor(level)
            if any(factor is f for f in tried):   # a level whose Cholesky broke down
                continue
            tried.append(factor)
            d_l, d_m, size_l = refine(self, factor, g_lam, g_mu, target)
            better = size_l < size
            d_lam = xp.where(better[:, None, None], d_l, d_lam)
            d_mu = xp.where(better[:, None, None], d_m, d_mu)
            size = xp.where(better, size_l, size)
        return d_lam, d_mu

    __call__ = solve


def newton_product(system: DenseNewton | StructuredNewton, d_l: Any,
                   d_m: Any) -> tuple[Any, Any]:
    r"""The exact Newton matrix of ``system`` times ``(d_l, d_m)``, matrix-free in float64:
    :math:`E^\top [\mathrm{Diag}(q) + \sum \rho\pi\pi^\top] E`, with :math:`z = E d`;
    fixed variables: identity."""
    xp, fl, fm = system.xp, system.fl, system.fm
    z = d_l[:, :, :, None] + d_m[:, :, None, :]
    u = system.q * z + system.rpi * xp.sum(system.pi * z, axis=1, keepdims=True)
    return (fl * xp.sum(u, axis=3) + (1.0 - fl) * d_l,
            fm * xp.sum(u, axis=2) + (1.0 - fm) * d_m)


def dot(a_l: Any, a_m: Any, b_l: Any, b_m: Any, xp: Backend) -> Any:
    """The inner product of the pairs ``(a_l, a_m)`` and ``(b_l, b_m)`` per batch item."""
    return xp.sum(a_l * b_l, axis=(1, 2)) + xp.sum(a_m * b_m, axis=(1, 2))


def refine(system: StructuredNewton, factor: Factor, g_lam: Any, g_mu: Any,
           target: Any) -> tuple[Any, Any, Any]:
    r"""Preconditioned conjugate gradients on the exact Newton matrix ``H`` (``system.apply``)
    with the preconditioner :math:`P^{-1}` = ``system.approx_solve(factor, .)``.

    From :math:`x_0 = P^{-1} g`, at most ``REFINE`` steps (residuals recomputed from the
    iterate at every step, not updated):

    .. math::

        r_k = g - H x_k,\quad z_k = P^{-1} r_k,\quad
        \beta_k = \frac{r_k^\top z_k}{r_{k-1}^\top z_{k-1}},\quad p_k = z_k + \beta_k p_{k-1},
        \quad x_{k+1} = x_k + \frac{r_k^\top z_k}{p_k^\top H p_k} p_k,

    stopping once every item's :math:`\|r\|^2` is below ``target``. Returns the iterate with
    the smallest residual per item and that squared residual: ``(d_lam, d_mu, size)``.
    """
    xp = system.xp
    x_l, x_m = system.approx_solve(factor, g_lam, g_mu)
    h_l, h_m = system.apply(x_l, x_m)
    r_l, r_m = g_lam - h_l, g_mu - h_m
    best_l, best_m, best = x_l, x_m, dot(r_l, r_m, r_l, r_m, xp)
    if REFINE == 0 or xp.all(best <= target):
        return best_l, best_m, best
    p_l, p_m = system.approx_solve(factor, r_l, r_m)
    rz = dot(r_l, r_m, p_l, p_m, xp)
    for _ in range(REFINE):
        h_l, h_m = system.apply(p_l, p_m)
        php = dot(p_l, p_m, h_l, h_m, xp)
        ok = (php > 0) & (rz > 0)
        alpha = xp.where(ok, rz / xp.where(ok, php, 1.0), 0.0)[:, None, None]
        x_l, x_m = x_l + alpha * p_l, x_m + alpha * p_m
        h_l, h_m = system.apply(x_l, x_m)
        r_l, r_m = g_lam - h_l, g_mu - h_m
        size = dot(r_l, r_m, r_l, r_m, xp)
        better = size < best
        best_l = xp.where(better[:, None, None], x_l, best_l)
        best_m = xp.where(better[:, None, None], x_m, best_m)
        best = xp.where(better, size, best)
        if xp.all(best <= target):
            break
        z_l, z_m = system.approx_solve(factor, r_l, r_m)
        rz_new = dot(r_l, r_m, z_l, z_m, xp)
        beta = xp.where(rz > 0, rz_new / xp.where(rz > 0, rz, 1.0), 0.0)[:, None, None]
        p_l, p_m = z_l + beta * p_l, z_m + beta * p_m
        rz = rz_new
    return best_l, best_m, best
