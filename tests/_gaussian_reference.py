r"""Independent references for the Gaussian PID tests.

* Covariance builders for broadcast channels ``X = A M + noise``.
* ``mi``: Gaussian mutual information straight from log-determinants of blocks.
* ``generic_union``: an independent solver of the BROJA problem that knows nothing about the
  closed form: it minimises :math:`I_C(M; X, Y)` over the coupling cross-covariance of the
  whitened source noises, built in the *original* coordinates,
  :math:`\Sigma_{XY}(C) = \Sigma_{XM}\Sigma_{MM}^{-1}\Sigma_{MY} + L_{X|M} C L_{Y|M}^\top`, with
  :math:`C = K (I + K^\top K)^{-1/2}` (a smooth map onto the open spectral-norm ball), by
  scipy's L-BFGS from several starts.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize


def channel_cov(a_x: np.ndarray, a_y: np.ndarray, noise_x=None, noise_y=None,
                cross=None, cov_m=None) -> np.ndarray:
    """Covariance of ``(M, X, Y)`` with ``X = a_x M + N_x``, ``Y = a_y M + N_y``."""
    d_m = a_x.shape[1]
    cov_m = np.eye(d_m) if cov_m is None else cov_m
    nx = np.eye(a_x.shape[0]) if noise_x is None else noise_x
    ny = np.eye(a_y.shape[0]) if noise_y is None else noise_y
    cxy = np.zeros((a_x.shape[0], a_y.shape[0])) if cross is None else cross
    a = np.vstack([a_x, a_y])
    noise = np.block([[nx, cxy], [cxy.T, ny]])
    top = np.hstack([cov_m, cov_m @ a.T])
    bottom = np.hstack([a @ cov_m, a @ cov_m @ a.T + noise])
    return np.vstack([top, bottom])


def random_cov(rng: np.random.Generator, d: int, extra: int = 2) -> np.ndarray:
    """A random well-conditioned covariance (Wishart-like)."""
    z = rng.normal(size=(d, d + extra))
    return z @ z.T / (d + extra) + 0.1 * np.eye(d)


def logdet(a: np.ndarray) -> float:
    sign, value = np.linalg.slogdet(a)
    assert sign > 0
    return float(value)


def mi(cov: np.ndarray, a: list[int], b: list[int]) -> float:
    """Gaussian I(A; B) in nats from log-determinants."""
    ab = a + b
    return 0.5 * (logdet(cov[np.ix_(a, a)]) + logdet(cov[np.ix_(b, b)])
                  - logdet(cov[np.ix_(ab, ab)]))


def blocks(dims):
    d_m, d_x, d_y = dims
    return (list(range(d_m)), list(range(d_m, d_m + d_x)),
            list(range(d_m + d_x, d_m + d_x + d_y)))


def generic_union(cov: np.ndarray, dims, starts: int = 4, seed: int = 0) -> float:
    """min over Gaussian couplings of I(M; X, Y), in nats (independent of pidkit)."""
    m, x, y = blocks(dims)
    s_mm, s_mx, s_my = cov[np.ix_(m, m)], cov[np.ix_(m, x)], cov[np.ix_(m, y)]
    s_xx, s_yy = cov[np.ix_(x, x)], cov[np.ix_(y, y)]
    inv_mm = np.linalg.inv(s_mm)
    l_x = np.linalg.cholesky(s_xx - s_mx.T @ inv_mm @ s_mx)
    l_y = np.linalg.cholesky(s_yy - s_my.T @ inv_mm @ s_my)
    base = s_mx.T @ inv_mm @ s_my
    d_x, d_y = len(x), len(y)

    def objective(k_flat):
        k = k_flat.reshape(d_x, d_y)
        w, v = np.linalg.eigh(np.eye(d_y) + k.T @ k)
        c = k @ (v / np.sqrt(w)) @ v.T
        full = cov.copy()
        full[np.ix_(x, y)] = base + l_x @ c @ l_y.T
        full[np.ix_(y, x)] = full[np.ix_(x, y)].T
        sign, ld = np.linalg.slogdet(full)
        if sign <= 0:
            return 1e6
        return 0.5 * (logdet(s_mm) + np.linalg.slogdet(full[np.ix_(x + y, x + y)])[1] - ld)

    rng = np.random.default_rng(seed)
    best = np.inf
    for _ in range(starts):
        res = minimize(objective, rng.normal(size=d_x * d_y), method="L-BFGS-B",
                       options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10})
        best = min(best, res.fun)
    return float(best)


def separated_classes(rng: np.random.Generator, n: int, k: int = 3):
    """Labels ``y`` of ``k`` classes, their empirical entropy in bits, and ``layer(scale, d)``:
    ``d`` features whose class means, ``scale`` times a random direction per class, sit on unit
    noise (a large ``scale`` separates the classes, which the Gaussian estimator turns into
    informations above H(Y))."""
    y = rng.integers(0, k, n)
    shares = np.bincount(y, minlength=k) / n
    shares = shares[shares > 0]
    entropy = float(-(shares * np.log2(shares)).sum())

    def layer(scale: float, d: int = 8) -> np.ndarray:
        return np.eye(k)[y] @ rng.normal(size=(k, d)) * scale + rng.normal(size=(n, d))

    return y, entropy, layer
