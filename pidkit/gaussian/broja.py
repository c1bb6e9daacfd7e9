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

__all__ = ["generalized_eigenvalues", "broja_unique", "optimal_coupling",
           "coupling_information", "certificate"]

#: Relative eigenvalue threshold of the pseudo-inverses used by :func:`certificate`.
PINV_RTOL = 1e-12


def _eigvalsh(xp: Any, a: Any) -> Any:
    """Eigenvalues of a (batch of) symmetric matrix, ascending. On CUDA, torch reads the
    solver's status on the host (one synchronisation per call; torch has no unchecked
    variant)."""
    return xp.eigvalsh(a)


def generalized_eigenvalues(xp: Any, p_x: Any, p_y: Any) -> Any:
    r"""Eigenvalues :math:`\lambda` of :math:`\Sigma_{M|X}^{-1}\Sigma_{M|Y}` from the posterior
    covariances ``(..., d_m, d_m)``, via :math:`L_X^{-1}\Sigma_{M|Y}L_X^{-\top}`."""
    low = xp.cholesky(p_x)         # NaN instead of an error (torch: no host read)
    half = xp.solve_triangular(low, p_y)
    s = xp.solve_triangular(low, xp.swapaxes(half, -1, -2))
    return _eigvalsh(xp, (s + xp.swapaxes(s, -1, -2)) / 2)


def broja_unique(xp: Any, p_x: Any, p_y: Any) -> tuple[Any, Any, Any]:
    r"""``(Uni_X, Uni_Y, lambda)`` in nats from the posterior covariances of the target."""
    lam = generalized_eigenvalues(xp, p_x, p_y)
    log_lam = xp.log(xp.maximum(lam, np.finfo(np.float64).tiny))
    uni_x = 0.5 * xp.sum(xp.maximum(log_lam, 0.0), axis=-1)
    uni_y = 0.5 * xp.sum(xp.maximum(-log_lam, 0.0), axis=-1)
    return uni_x, uni_y, lam


def _mT(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def _channel(p: np.ndarray, whiten: np.ndarray) -> np.ndarray:
    r"""Channels :math:`H` (``(B, d_m, d_m)``) with :math:`H^\top H = (W P W^\top)^{-1} - I`."""
    k = np.linalg.inv(whiten @ p @ _mT(whiten))
    q, v = np.linalg.eigh((k + _mT(k)) / 2 - np.eye(k.shape[-1]))
    return np.sqrt(np.maximum(q, 0))[..., :, None] * _mT(v)


def optimal_coupling(h_x: np.ndarray, h_y: np.ndarray) -> np.ndarray:
    r"""The optimal noise cross-covariances :math:`C^* = H_X Q^{*+} H_Y^\top` (batched)."""
    eye = np.eye(h_x.shape[-1])
    k_x = eye + _mT(h_x) @ h_x
    k_y = eye + _mT(h_y) @ h_y
    low = np.linalg.cholesky(k_y)
    s = np.linalg.solve(low, _mT(np.linalg.solve(low, k_x)))
    lam, vec = np.linalg.eigh((s + _mT(s)) / 2)
    basis = low @ vec
    k_star = (basis * np.maximum(lam, 1.0)[..., None, :]) @ _mT(basis)
    q_star = (k_star + _mT(k_star)) / 2 - eye
    return h_x @ np.linalg.pinv(q_star, rcond=PINV_RTOL, hermitian=True) @ _mT(h_y)


def coupling_information(h_x: np.ndarray, h_y: np.ndarray, c: np.ndarray) -> np.ndarray:
    r""":math:`I_C(M; X, Y)` in nats for couplings with noise cross-covariance ``c`` (batched),
    :math:`-\tfrac12\log\det(I - H^\top A^{+} H)`, :math:`A = \Sigma_N(C) + H H^\top`
    (pseudo-inverse: valid on the boundary :math:`\|C\|_2 = 1`)."""
    h = np.concatenate([h_x, h_y], axis=-2)
    d_x = h_x.shape[-2]
    a = h @ _mT(h) + np.eye(h.shape[-2])
    a[..., :d_x, d_x:] += c
    a[..., d_x:, :d_x] += _mT(c)
    post = np.eye(h.shape[-1]) - _mT(h) @ np.linalg.pinv(a, rcond=PINV_RTOL, hermitian=True) @ h
    return -0.5 * np.linalg.slogdet((post + _mT(post)) / 2)[1]


def certificate(p_x: np.ndarray, p_y: np.ndarray, c_mm: np.ndarray, i_y: np.ndarray,
                uni_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``(lower, upper)`` on :math:`\mathrm{Uni}(M{:}X\setminus Y)` in nats, for a batch
    (``(B, d_m, d_m)`` posteriors and target covariances, ``(B,)`` informations): the relaxation
    bound (the closed form) and the value of the explicit coupling :math:`C^*`, evaluated with
    the generic coupling formula on channels rebuilt from the posterior covariances."""
    whiten = np.linalg.inv(np.linalg.cholesky(c_mm))
    h_x, h_y = _channel(p_x, whiten), _channel(p_y, whiten)
    upper = coupling_information(h_x, h_y, optimal_coupling(h_x, h_y)) - i_y
    return np.minimum(uni_x, upper), np.maximum(uni_x, upper)
