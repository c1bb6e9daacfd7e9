r"""Teacher/student/label data whose true audit values are known exactly.

A knowledge audit estimates the BROJA decomposition of :math:`I(Y; T, S)` from samples of
continuous features. To measure its bias and spread, these generators draw features from
**discrete latent models**: a label :math:`Y` and discrete latents :math:`Z_T`, :math:`Z_S` with
a known joint pmf :math:`p(y, z_T, z_S)`. The teacher's feature vector is a fixed embedding of
:math:`Z_T` plus small Gaussian noise, the student's one of :math:`Z_S`:

.. math::

    T = e_T(Z_T) + \sigma \varepsilon_T, \qquad S = e_S(Z_S) + \sigma \varepsilon_S,

with :math:`e_T, e_S` fixed random unit vectors in :math:`\mathbb{R}^d`, one per latent value,
and :math:`\varepsilon` standard normal. When :math:`\sigma` is small against the distance
between embeddings (about :math:`\sqrt 2`), a discretiser recovers each latent (up to renaming
its values, which the PID ignores), so the truth of every audited quantity is the PID of
:math:`p` itself, computed exactly with ``pidkit.pid(p, measure="broja")`` (:attr:`truth`).

Four named models (:func:`known_answer_case`):

- ``"redundant"``: :math:`Z_T = Z_S = Y`, 10 classes; Red = :math:`\log_2 10`, all else 0;
- ``"unique"``: :math:`Z_T, Z_S` independent uniform on 10 values, :math:`Y = Z_T \bmod 2`;
  Uni(Y:T\S) = 1 bit, all else 0;
- ``"synergy"``: :math:`Z_T, Z_S` independent uniform on 10 values,
  :math:`Y = (Z_T + Z_S) \bmod 2`; Syn = 1 bit, all else 0;
- ``"mixed"``: a random pmf (seeded Dirichlet, 3 classes, 10 x 10 latents, sharpened) with
  every atom nonzero.

The Gaussian route of the audit (``estimator="gaussian"``) estimates a different quantity (the
Gaussian PID of one-hot labels and projected features), not the discrete PID; on these data its
"error" is that difference plus estimation error. A Gaussian known answer for that route needs
a Gaussian target, which the audit API (integer labels) does not take; the Gaussian estimator is
checked against :func:`pidkit.gaussian_pid` on the same covariance through
:func:`pidkit.estimate.gaussian_pid_from_samples` instead (``tests/test_audit_known_answer.py``,
:func:`gaussian_samples`).

Examples
--------
>>> from pidkit_distill.audits.known_answer import known_answer_case
>>> case = known_answer_case("unique", n=2000, seed=0)
>>> case.teacher.shape, round(case.truth["unique_teacher"], 6)
((2000, 32), 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pidkit.validation import check_choice, check_int, check_positive, fail

from .estimators import values_of

__all__ = ["CASES", "KnownAnswer", "case_pmf", "gaussian_samples", "known_answer_case",
           "latent_model", "pmf_truth"]

#: Names of the built-in latent models (:func:`known_answer_case`).
CASES = ("redundant", "unique", "synergy", "mixed")


@dataclass(frozen=True)
class KnownAnswer:
    """Samples of a known-answer model and their exact audit values.

    Attributes
    ----------
    labels : ndarray of int64, shape (n,)
    teacher, student : ndarray of float64, shape (n, dim)
    truth : dict
        Audit quantity (``"mi_teacher"``, ``"mi_student"``, ``"redundancy"``,
        ``"unique_teacher"``, ``"unique_student"``, ``"synergy"``) -> exact value in bits.
    pmf : ndarray, shape (k_y, k_T, k_S)
        The joint pmf of :math:`(Y, Z_T, Z_S)` the samples were drawn from.
    latents : ndarray of int64, shape (n, 2)
        The drawn :math:`(Z_T, Z_S)`, for checking a discretiser.
    name : str
        The model's name (:data:`CASES`, or ``"custom"``).
    settings : dict
        ``n``, ``seed``, ``dim`` and ``noise`` of the draw.
    """

    labels: np.ndarray
    teacher: np.ndarray
    student: np.ndarray
    truth: dict[str, float]
    pmf: np.ndarray
    latents: np.ndarray
    name: str = "custom"
    settings: dict[str, Any] = field(default_factory=dict)


def pmf_truth(pmf: Any) -> dict[str, float]:
    """Exact audit values (bits) of the joint pmf ``p(y, z_T, z_S)``: its BROJA PID.

    Parameters
    ----------
    pmf : array_like, shape (k_y, k_T, k_S)

    Returns
    -------
    dict
        Keys as in :data:`pidkit_distill.audits.report.QUANTITIES`.
    """
    import pidkit

    return values_of(pidkit.pid(np.asarray(pmf, dtype=np.float64), target=0, measure="broja",
                                base=2))


def _embedding(k: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    e = rng.normal(size=(k, dim))
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def latent_model(pmf: Any, n: int, *, seed: int = 0, dim: int = 32, noise: float = 0.05,
                 name: str = "custom") -> KnownAnswer:
    r"""Draw ``n`` samples of labels and teacher/student features from the latent model ``pmf``.

    Parameters
    ----------
    pmf : array_like, shape (k_y, k_T, k_S)
        Joint pmf of the label and the two latents (normalised here).
    n : int
        Number of samples.
    seed : int, default 0
        Seeds the draw. The embeddings :math:`e_T, e_S` depend only on the pmf's shape and
        ``dim`` (a fixed stream), so every seed samples the same model.
    dim : int, default 32
        Feature dimension of each side (at least ``max(k_T, k_S)`` so the embeddings are
        distinct and well separated).
    noise : float, default 0.05
        Standard deviation :math:`\sigma` of the Gaussian noise added to each coordinate.

    Returns
    -------
    KnownAnswer
    """
    p = np.asarray(pmf, dtype=np.float64)
    if p.ndim != 3 or p.min() < 0 or not np.isfinite(p).all() or p.sum() <= 0:
        raise fail("pmf", "must be a non-negative finite array of shape (k_y, k_T, k_S)",
                   "Pass a joint pmf of the label and the two latents", f"shape {p.shape}")
    p = p / p.sum()
    n = check_int(n, "n", 1)
    dim = check_int(dim, "dim", max(p.shape[1], p.shape[2]))
    noise = float(check_positive(noise, "noise", allow_zero=True))
    fixed = np.random.default_rng([7, *p.shape, dim])
    e_t, e_s = _embedding(p.shape[1], dim, fixed), _embedding(p.shape[2], dim, fixed)
    rng = np.random.default_rng(seed)
    cells = rng.choice(p.size, size=n, p=p.reshape(-1))
    y, z_t, z_s = np.unravel_index(cells, p.shape)
    teacher = e_t[z_t] + noise * rng.normal(size=(n, dim))
    student = e_s[z_s] + noise * rng.normal(size=(n, dim))
    return KnownAnswer(y.astype(np.int64), teacher, student, pmf_truth(p), p,
                       np.stack([z_t, z_s], axis=1).astype(np.int64), name,
                       {"n": n, "seed": seed, "dim": dim, "noise": noise})


def case_pmf(name: str) -> np.ndarray:
    """The joint pmf ``p(y, z_T, z_S)`` of a named model (see the module notes)."""
    name = check_choice(name, "name", CASES)
    k = 10
    if name == "redundant":
        p = np.zeros((k, k, k))
        p[np.arange(k), np.arange(k), np.arange(k)] = 1 / k
        return p
    if name in ("unique", "synergy"):
        p = np.zeros((2, k, k))
        zt, zs = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
        y = zt % 2 if name == "unique" else (zt + zs) % 2
        p[y, zt, zs] = 1 / k**2
        return p
    # "mixed": sharpened Dirichlet, fixed stream; every atom nonzero
    rng = np.random.default_rng(2017)
    p = rng.dirichlet(np.full(3 * k * k, 0.3)).reshape(3, k, k)
    return p / p.sum()


def known_answer_case(name: str, n: int, *, seed: int = 0, dim: int = 32,
                      noise: float = 0.05) -> KnownAnswer:
    """Samples of one of the named models :data:`CASES` (see :func:`latent_model`).

    Examples
    --------
    >>> case = known_answer_case("synergy", n=500, seed=1)
    >>> round(case.truth["synergy"], 6), round(case.truth["mi_teacher"], 6)
    (1.0, 0.0)
    """
    return latent_model(case_pmf(name), n, seed=seed, dim=dim, noise=noise, name=name)


def gaussian_samples(cov: Any, dims: tuple[int, int, int], n: int, *,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` samples ``(m, x, y)`` of the zero-mean Gaussian with covariance ``cov`` (blocks
    ordered target, source 1, source 2 with sizes ``dims``), drawn through a Cholesky factor.
    Their Gaussian PID is ``pidkit.gaussian_pid(cov, dims=dims)`` exactly."""
    c = np.asarray(cov, dtype=np.float64)
    dims = tuple(int(d) for d in dims)
    if c.shape != (sum(dims),) * 2:
        raise fail("cov", f"must be square of size sum(dims) = {sum(dims)}",
                   "Order the blocks (target, source 1, source 2)", f"shape {c.shape}")
    n = check_int(n, "n", 2)
    z = np.random.default_rng(seed).normal(size=(n, c.shape[0])) @ np.linalg.cholesky(c).T
    a, b = dims[0], dims[0] + dims[1]
    return z[:, :a], z[:, a:b], z[:, b:]
