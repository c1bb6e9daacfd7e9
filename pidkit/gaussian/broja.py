r"""The exact BROJA PID of a Gaussian, in closed form.

Setting. :math:`(M, X, Y)` jointly Gaussian; whiten the target and write each source as a
Gaussian channel (:mod:`pidkit.gaussian._channels`), with Fisher information matrices
:math:`Q_X = H_X^\top H_X`, :math:`Q_Y = H_Y^\top H_Y` (``d_m x d_m``) and posterior covariances
:math:`\Sigma_{M|X} = (I + Q_X)^{-1}`, :math:`\Sigma_{M|Y} = (I + Q_Y)^{-1}`. BROJA's unique
information is :math:`\mathrm{Uni}(M{:}X\setminus Y) = \min_{Q\in\Delta_P} I_Q(M; X | Y)` over
couplings with the given ``(M, X)`` and ``(M, Y)`` marginals; a Gaussian coupling is optimal
(Zhao et al. 2025), i.e. :math:`\min_C I_C(M; X, Y) - I(M; Y)` over the noise cross-covariance
:math:`C`, :math:`\|C\|_2 \le 1` (Venkatesh et al. 2023).

Theorem (closed form). Let :math:`\lambda_1, \dots, \lambda_{d_m}` be the generalized eigenvalues
of :math:`(I + Q_X,\ I + Q_Y)`, i.e. the eigenvalues of
:math:`\Sigma_{M|X}^{-1}\Sigma_{M|Y}`. Then

.. math::

    \mathrm{Uni}(M{:}X\setminus Y) = \tfrac12 \sum_i \log^+ \lambda_i, \qquad
    \mathrm{Uni}(M{:}Y\setminus X) = \tfrac12 \sum_i \log^+ \lambda_i^{-1},

with :math:`\log^+ t = \max(\log t, 0)`, and :math:`\mathrm{Red} = I(M;X) - \mathrm{Uni}_X`,
:math:`\mathrm{Syn} = I(M;X,Y) - \mathrm{Red} - \mathrm{Uni}_X - \mathrm{Uni}_Y`.

Proof. For any coupling, :math:`P = \Sigma_{M|X,Y}` satisfies :math:`P \preceq \Sigma_{M|X}` and
:math:`P \preceq \Sigma_{M|Y}` (conditioning on more reduces the error covariance), and
:math:`I_C(M; X, Y) = -\tfrac12\log\det P`. So :math:`f^* = \min_C I_C(M;X,Y) \ge
-\tfrac12 \max\{\log\det P : P \preceq \Sigma_{M|X},\ P \preceq \Sigma_{M|Y}\}` (a relaxation).
Conversely, for any :math:`K \succeq I + Q_X, I + Q_Y`, put :math:`Q = K - I` and
:math:`Z = Q^{1/2} M + N_Z`; since :math:`Q_X \preceq Q`, :math:`X \overset{d}{=} T_X Z + W_X`
with :math:`T_X = H_X Q^{-1/2}`, :math:`\|T_X\|_2 \le 1` and independent noise
:math:`W_X \sim \mathcal N(0, I - T_X T_X^\top)`; likewise :math:`Y`. Drawing
:math:`W_X, W_Y` independently gives a coupling with :math:`M - Z - (X, Y)` Markov, so
:math:`I(M; X, Y) \le I(M; Z) = \tfrac12\log\det K`: the relaxation is tight. In the basis where
:math:`L_Y^{-1}(I+Q_X)L_Y^{-\top} = V\,\mathrm{diag}(\lambda)V^\top`
(:math:`I + Q_Y = L_Y L_Y^\top`), the feasible set is invariant under the reflections
:math:`V\,\mathrm{diag}(\pm1)V^\top`, so by concavity of :math:`\log\det` the optimum is diagonal
there: :math:`K^* = L_Y V \mathrm{diag}(\max(\lambda_i, 1)) V^\top L_Y^\top`, which gives the
formula. The optimal coupling is :math:`C^* = H_X Q^{*+} H_Y^\top` (the noise cross-covariance of
the construction above). With a scalar target this is MMI (Barrett 2015).

Certificate. :func:`certificate` evaluates :math:`I_{C^*}(M; X, Y)` for the explicit coupling
:math:`C^*` through the generic coupling formula (an upper bound: :math:`C^*` is feasible) and
compares it with the relaxation bound (a lower bound): the gap measures the rounding error.

References
----------
Zhao, Balachandran, Tian, Liang, "Thin-PID", NeurIPS 2025 (Gaussian couplings are optimal).
Venkatesh, Bennett, Gowda, Schamberg, "Gaussian PID: bias correction and application to
high-dimensional data", NeurIPS 2023. Barrett, Phys. Rev. E 91, 052802 (2015).
Bertschinger, Rauh, Olbrich, Jost, Ay, "Quantifying unique information", Entropy 16 (2014).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._channels import cholesky

__all__ = ["broja_unique", "optimal_coupling", "certificate"]

#: Relative eigenvalue threshold of the pseudo-inverses used by :func:`certificate`.
PINV_RTOL = 1e-12


def _eigvalsh(xp: Any, a: Any) -> Any:
    if xp.name == "torch":
        return xp._lib.linalg.eigvalsh(a)
    return np.linalg.eigvalsh(a)


def _trisolve(xp: Any, lower: Any, b: Any) -> Any:
    if xp.name == "torch":
        return xp._lib.linalg.solve_triangular(lower, b, upper=False)
    return np.linalg.solve(lower, b)


def generalized_eigenvalues(xp: Any, h_x: Any, h_y: Any) -> Any:
    r"""Eigenvalues :math:`\lambda` of :math:`(I + Q_Y)^{-1}(I + Q_X)`, shape ``(..., d_m)``."""
    d_m = h_x.shape[-1]
    eye = xp.eye(d_m, like=h_x)
    k_x = eye + xp.swapaxes(h_x, -1, -2) @ h_x
    k_y = eye + xp.swapaxes(h_y, -1, -2) @ h_y
    low = cholesky(xp, k_y)
    half = _trisolve(xp, low, k_x)
    s = _trisolve(xp, low, xp.swapaxes(half, -1, -2))
    return _eigvalsh(xp, (s + xp.swapaxes(s, -1, -2)) / 2)


def broja_unique(xp: Any, h_x: Any, h_y: Any) -> tuple[Any, Any, Any]:
    r"""``(Uni_X, Uni_Y, lambda)`` in nats from the whitened channels ``(..., d_s, d_m)``."""
    lam = generalized_eigenvalues(xp, h_x, h_y)
    log_lam = xp.log(xp.maximum(lam, np.finfo(np.float64).tiny))
    uni_x = 0.5 * xp.sum(xp.maximum(log_lam, 0.0), axis=-1)
    uni_y = 0.5 * xp.sum(xp.maximum(-log_lam, 0.0), axis=-1)
    return uni_x, uni_y, lam


def optimal_coupling(h_x: np.ndarray, h_y: np.ndarray) -> np.ndarray:
    r"""The optimal noise cross-covariance :math:`C^* = H_X Q^{*+} H_Y^\top` ``(d_x, d_y)``."""
    d_m = h_x.shape[-1]
    k_x = np.eye(d_m) + h_x.T @ h_x
    k_y = np.eye(d_m) + h_y.T @ h_y
    low = np.linalg.cholesky(k_y)
    s = np.linalg.solve(low, np.linalg.solve(low, k_x).T)
    lam, vec = np.linalg.eigh((s + s.T) / 2)
    basis = low @ vec
    k_star = basis @ np.diag(np.maximum(lam, 1.0)) @ basis.T
    q_star = (k_star + k_star.T) / 2 - np.eye(d_m)
    return h_x @ np.linalg.pinv(q_star, rcond=PINV_RTOL, hermitian=True) @ h_y.T


def coupling_information(h_x: np.ndarray, h_y: np.ndarray, c: np.ndarray) -> float:
    r""":math:`I_C(M; X, Y)` in nats for the coupling with noise cross-covariance ``c``,
    :math:`-\tfrac12\log\det(I - H^\top A^{+} H)`, :math:`A = \Sigma_N(C) + H H^\top`
    (pseudo-inverse: valid on the boundary :math:`\|C\|_2 = 1`)."""
    h = np.concatenate([h_x, h_y])
    d_x = h_x.shape[0]
    a = h @ h.T
    a[:d_x, :d_x] += np.eye(d_x)
    a[d_x:, d_x:] += np.eye(h_y.shape[0])
    a[:d_x, d_x:] += c
    a[d_x:, :d_x] += c.T
    post = np.eye(h.shape[1]) - h.T @ np.linalg.pinv(a, rcond=PINV_RTOL, hermitian=True) @ h
    return float(-0.5 * np.linalg.slogdet((post + post.T) / 2)[1])


def _reduce(h: np.ndarray) -> np.ndarray:
    """``S V^T`` of the thin SVD: the same channel with at most ``d_m`` outputs (the other
    outputs are pure noise and never change :math:`I_C(M; X, Y)` at the optimum)."""
    _, s, vt = np.linalg.svd(h, full_matrices=False)
    return s[:, None] * vt


def certificate(h_x: np.ndarray, h_y: np.ndarray, i_y: float, uni_x: float) -> tuple[float, float]:
    r"""``(lower, upper)`` on :math:`\mathrm{Uni}(M{:}X\setminus Y)` in nats: the relaxation
    bound and the value of the explicit coupling :math:`C^*`, evaluated independently."""
    hx, hy = _reduce(h_x), _reduce(h_y)
    upper = coupling_information(hx, hy, optimal_coupling(hx, hy)) - i_y
    return min(uni_x, upper), max(uni_x, upper)
