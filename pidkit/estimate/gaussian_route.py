r"""The Gaussian estimator from samples, behind both entry points
(:func:`pidkit.estimate.pid_from_samples` with ``estimator="gaussian"`` and
:func:`pidkit.gaussian_pid_from_samples`, which calls it): samples -> (optionally PCA-reduced)
blocks -> sample covariance -> :func:`pidkit.gaussian_pid` -> Wishart bias correction, with
bootstrap intervals and a shuffle null from the engine (:mod:`pidkit.estimate.uncertainty`).

**Covariance.** For rows :math:`z_i = (m_i, x_i, y_i)` the estimate uses the maximum-likelihood
covariance :math:`\hat\Sigma = \frac1N \sum_i (z_i - \bar z)(z_i - \bar z)^\top`. Every Gaussian
information depends on :math:`\Sigma` only through the correlations between blocks, so it is
invariant to any per-variable rescaling, in particular to the divisor (:math:`N` or
:math:`N-1`); :math:`N` makes the plug-in PID the maximum-likelihood estimate of the PID (the MLE
is invariant under reparametrisation, Zehna 1966), and the bias correction below is derived from
the scatter matrix, in which the divisor cancels. To accept any finite input (samples scaled by
1e160 or 1e-160 overflow or underflow :math:`\sum z z^\top`) every column is scaled by a power
of two to a largest magnitude in [0.5, 1), centred, and scaled again by a power of two
(:func:`standardized`): these factors are exact in floating point and leave every atom unchanged.

**Bias correction** (on by default, ``bias_correction=False`` gives the plug-in atoms). For
:math:`N` i.i.d. samples of a :math:`p`-variate Gaussian the scatter matrix :math:`W` is Wishart
with :math:`N-1` degrees of freedom, so (Cai, Liang, Zhou 2015)

.. math::

    \mathbb E[\log\det W] = \log\det\Sigma + p\log 2 + \Psi_N(p), \qquad
    \Psi_N(p) = \sum_{i=1}^{p} \psi\!\left(\frac{N - i}{2}\right).

In a mutual information the :math:`\log\det\Sigma` and :math:`p\log 2` terms cancel, so the
plug-in :math:`I(A;B)` (dimensions :math:`a, b`) has the exact bias
:math:`b_N(a, b) = \tfrac12[\Psi_N(a) + \Psi_N(b) - \Psi_N(a+b)] > 0` (:func:`mi_bias`),
whatever :math:`\Sigma`; the corrected :math:`I(M;X)`, :math:`I(M;Y)`, :math:`I(M;X,Y)` are
exactly unbiased for Gaussian samples. Here :math:`a, b` count independent variables: the ranks
:func:`pidkit.gaussian_pid` computed each information on (``details["ranks"]``), which are below
the block sizes when a variable is constant (in a bootstrap resample: a class of a one-hot target
that it misses) or an exact linear function of others (a copied column, identical sources). The
BROJA union information
:math:`f^* = I(M;Y) + \mathrm{Uni}_X` equals :math:`I(M;Y)` when every generalized eigenvalue
:math:`\lambda_i \le 1` and :math:`I(M;X)` when every :math:`\lambda_i \ge 1`
(:mod:`pidkit.gaussian.broja`); its bias is then exactly :math:`b_Y` or :math:`b_X`, and in
general the interpolation :math:`(k_X b_X + k_Y b_Y)/d_m` is subtracted (:math:`k_X`: eigenvalues
above 1, ties count half). For MMI :math:`f^* = \max(I(M;X), I(M;Y))` of the corrected
informations. The atoms follow from the identities, so they still sum to the corrected
:math:`I(M;X,Y)`; a corrected atom can be slightly negative when the true atom is near 0. The
correction is on by default because it removes the dominant error at small :math:`N` at no cost
in variance (a constant shift of each information); for non-Gaussian data (e.g. a one-hot
target) it is the Gaussian approximation of that bias.

**Uncertainty.** A bootstrap replicate resamples the rows (the engine's index resampling) and
applies the same estimator, bias correction included, to the resampled covariance; a null
replicate permutes the target rows against the sources (only the target-source block of the
covariance changes). The rows are first put in lexicographic order (:func:`row_order`, in
:func:`gaussian_blocks`), so with one seed the replicates do not depend on the order in which
the samples were given. All replicate covariances are evaluated in one batched call of
:func:`pidkit.gaussian_pid`. A replicate whose covariance :func:`pidkit.gaussian_pid` rejects
(a small resample with too few distinct rows, or a class of a one-hot target missing so that a
block becomes constant) is dropped and counted (``details["dropped_replicates"]``, a warning
above :data:`~pidkit.estimate.uncertainty.DROP_WARN`); near-singular replicates that it
regularises are kept, with one summary :class:`~pidkit.errors.RegularizationWarning`.

**Discrete target.** Integer labels are encoded one-hot with the last column dropped
(:func:`~pidkit.estimate.codes.one_hot`), a target block of width :math:`k-1`. The numbers are
the PID of the Gaussian with the same covariance as (one-hot target, sources): a second-order
summary of the dependence. Gaussian mutual information depends only on the canonical correlations
between the blocks, which any invertible linear map of a block leaves unchanged, so the dropped
column, and any re-coding of the classes, do not matter. For a Gaussian target this route is
consistent for the exact Gaussian PID; for a discrete target it converges to the Gaussian PID of
the population covariance of the one-hot encoding, not to the discrete PID.

References
----------
T. T. Cai, T. Liang, H. H. Zhou, "Law of log determinant of sample covariance matrix and optimal
estimation of differential entropy for high-dimensional Gaussian distributions", J. Multivariate
Anal. 137 (2015).
P. W. Zehna, "Invariance of maximum likelihood estimators", Ann. Math. Statist. 37 (1966).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import digamma

from .._backend import get_namespace, is_torch
from ..errors import PIDValueError, RegularizationWarning, caller_stacklevel
from ..gaussian._covariance import check_cov, prepare
from ..gaussian.api import gaussian_pid
from ..lattice import lattice
from ..result import PIDResult, SolverInfo
from ..validation import check_base, check_choice, check_int, fail
from ._checks import as_labels, as_matrix, refuse_labels, to_numpy, warn_constant
from .codes import encode, one_hot
from .projection import Projector, subsample
from .uncertainty import Replicates, assemble, bootstrap, permutation_null, seed_sequences, vector

__all__ = ["TARGET_ENCODINGS", "class_counts", "constant_target", "exponents",
           "gaussian_blocks", "gaussian_estimate", "gaussian_from_covariance", "gaussian_point",
           "gaussian_vectors", "label_entropy", "logdet_bias", "mi_bias", "row_order",
           "scaled_covariance", "standardized", "times_pow2"]

TARGET_ENCODINGS = ("auto", "onehot", "continuous")

#: A float target of one column whose values are all whole numbers, with at most this many
#: distinct ones, looks like class labels: ``target_encoding="auto"`` reads it as one continuous
#: variable, as for any float target, but warns (the plug-in route reads such floats as labels;
#: on one pmf the two readings gave a unique atom of 0 against 0.32 bits).
LABEL_LIKE_CLASSES = 10


# -- bias of Gaussian informations --------------------------------------------------------------
def _psi(n: Any, p: Any) -> Any:
    """:math:`\\Psi_n(p)` for scalars or broadcast arrays of sample sizes ``n`` and dimensions
    ``p`` (NaN where ``n <= p``)."""
    n, p = np.broadcast_arrays(np.asarray(n, dtype=np.float64), np.asarray(p, dtype=np.int64))
    i = np.arange(1, int(p.max(initial=0)) + 1)
    arg = (n[..., None] - i) / 2
    used = i <= p[..., None]
    terms = np.where(used, digamma(np.maximum(arg, 0.5)), 0.0)
    out = np.where(((arg > 0) | ~used).all(axis=-1), terms.sum(axis=-1), np.nan)
    return float(out) if out.ndim == 0 else out


def logdet_bias(n: int, p: int) -> float:
    r""":math:`\Psi_n(p) = \sum_{i=1}^p \psi((n-i)/2)`: the bias of :math:`\log\det W`
    beyond :math:`\log\det\Sigma + p\log 2` for a scatter matrix of ``n`` samples (nats)."""
    if n <= p:
        raise fail("samples", f"{n} samples are too few for a {p}-dimensional covariance",
                   f"Pass more than {p + 1} samples")
    return _psi(n, p)


def mi_bias(n: Any, a: Any, b: Any) -> Any:
    r"""Exact bias :math:`b_n(a,b)` (nats) of the plug-in Gaussian :math:`I(A;B)`, dims ``a, b``
    (the numbers of linearly independent variables), from ``n`` samples (mean estimated);
    ``n``, ``a`` and ``b`` may be arrays, broadcast together (NaN where ``n <= a + b``)."""
    return 0.5 * (_psi(n, a) + _psi(n, b) - _psi(n, np.add(a, b)))


# -- covariance ----------------------------------------------------------------------------------
def exponents(a: Any) -> np.ndarray:
    """Per column of ``a (n, d)`` (numpy or torch): the exponent ``e`` with the largest magnitude
    in :math:`[2^{e-1}, 2^e)` (``numpy.frexp``), 0 for a zero column; int64 numpy (read on the
    host)."""
    xp = get_namespace(a)
    host = xp.to_numpy(xp.max(abs(xp.detach(a)), axis=0))
    _, e = np.frexp(host)
    return np.where(host > 0, e, 0).astype(np.int64)


def times_pow2(a: Any, k: np.ndarray) -> Any:
    """``a (n, d)`` with column ``j`` multiplied by :math:`2^{k_j}`: exact whenever the result is
    a normal number (any finite input reaches [0.5, 1) this way;
    :meth:`~pidkit._backend.Backend.ldexp`: autograd sees constant factors)."""
    return get_namespace(a).ldexp(a, k)


def _pow2_scaled(a: Any) -> Any:
    """``a (n, d)`` with every column multiplied by the power of two that brings its largest
    magnitude into [0.5, 1) (exact; zero columns unchanged)."""
    return times_pow2(a, -exponents(a))


def standardized(z: Any) -> Any:
    r"""Rows ``z (n, d)`` (float64 numpy or torch) centred, each column scaled by powers of two
    before and after centring (module notes): no overflow or underflow for any finite input, and
    the same Gaussian informations as ``z``. Differentiable for torch (constant factors).

    Centred twice: the rounding error :math:`\delta` of the first mean is of the order of
    :math:`\epsilon |\bar z|`, which for data far from the origin (1e12 + N(0, 1)) is not small
    next to their spread and would add :math:`\delta^2` to every variance; the second pass
    removes it (its own error is :math:`\epsilon` times the spread), so the estimate does not
    depend on where the data sit."""
    z1 = _pow2_scaled(z)
    c = z1 - z1.mean(0)
    return _pow2_scaled(c - c.mean(0))


def scaled_covariance(z: Any) -> Any:
    """The maximum-likelihood covariance of the :func:`standardized` rows of ``z``: the
    covariance of ``z`` up to one power-of-two factor per variable, which leaves every Gaussian
    information unchanged."""
    c = standardized(z)
    cov = c.T @ c / c.shape[0]
    return (cov + cov.T) / 2


def _weighted_covariances(c: np.ndarray, counts: np.ndarray) -> np.ndarray:
    r"""Covariances ``(b, d, d)`` of the rows ``c`` resampled with multiplicities ``counts``.

    Each is formed from the rows centred on their weighted mean (never as
    :math:`E[zz^\top] - \bar z\bar z^\top`, whose cancellation leaves a variable that is
    constant in the resample a variance of rounding size, of either sign), and a variable that
    takes one value in every resampled row (a class of a one-hot target absent from the
    resample) gets an exactly zero row and column: :func:`pidkit.gaussian_pid` then drops it as
    constant, as it would for those rows passed as data."""
    out = np.empty((counts.shape[0], c.shape[1], c.shape[1]))
    for k, w in enumerate(counts.astype(np.float64)):
        used = w > 0
        rows, w = c[used], w[used]
        d = rows - w @ rows / w.sum()
        cov = (d * w[:, None]).T @ d / w.sum()
        flat = rows.max(axis=0) == rows.min(axis=0)
        cov[flat, :] = 0.0
        cov[:, flat] = 0.0
        out[k] = (cov + cov.T) / 2
    return out


def _permuted_covariances(c: np.ndarray, cov: np.ndarray, d_m: int,
                          perms: np.ndarray) -> np.ndarray:
    """Covariances ``(b, d, d)`` with the target rows of ``c`` permuted: only the target-source
    block changes (``c`` is centred)."""
    out = np.repeat(cov[None], perms.shape[0], axis=0)
    for k, perm in enumerate(perms):
        cross = c[perm, :d_m].T @ c[:, d_m:] / c.shape[0]
        out[k, :d_m, d_m:] = cross
        out[k, d_m:, :d_m] = cross.T
    return out


# -- the estimator --------------------------------------------------------------------------------
def _relu(v: Any) -> Any:
    return get_namespace(v).maximum(v, 0.0)


def _union_shift(lam: Any, b_x: Any, b_y: Any) -> Any:
    """Bias subtracted from the BROJA union information (module notes); ``lam`` holds the
    eigenvalues of one item or a list of them for a batch."""
    items = [np.asarray(lam)] if np.ndim(lam[0] if len(lam) else 0) == 0 else lam
    frac = np.array([((v > 1).sum() + 0.5 * (v == 1).sum()) / max(v.size, 1) for v in
                     (np.asarray(v) for v in items)])
    shift = frac * b_x + (1 - frac) * b_y
    return float(shift[0]) if np.ndim(b_x) == 0 and len(items) == 1 else shift


def _ranks(r: PIDResult, dims: tuple[int, int, int]) -> tuple[Any, Any, Any, Any]:
    """The numbers of linearly independent variables of the target, each source and both
    sources that :func:`pidkit.gaussian_pid` computed ``r`` on (``details["ranks"]``: below
    ``dims`` where it dropped a constant variable, a duplicated column, a source identical to
    the other one, ...), as ints or, for a batch, ``(B,)`` arrays."""
    ranks = np.asarray(r.details.get("ranks", (*dims, dims[1] + dims[2])))
    return ranks[..., 0], ranks[..., 1], ranks[..., 2], ranks[..., 3]


def _wishart_biases(n: Any, ranks: tuple[Any, Any, Any, Any]) -> tuple[Any, Any, Any]:
    """Wishart biases (nats) of the plug-in :math:`I(M;X)`, :math:`I(M;Y)`, :math:`I(M;X,Y)`
    from ``n`` samples, for the :func:`_ranks` the informations were computed on: the
    information of a block with an exactly redundant variable is that of its independent part,
    whose estimate has the bias of the smaller dimension."""
    d_m, d_x, d_y, d_xy = ranks
    return mi_bias(n, d_m, d_x), mi_bias(n, d_m, d_y), mi_bias(n, d_m, d_xy)


def _atoms(r: PIDResult, n: Any, dims: tuple[int, int, int], measure: str,
           correct: bool) -> dict[str, Any]:
    """``red``, ``uni_x``, ``uni_y``, ``syn``, ``mi`` (nats) of a nats result ``r`` of
    :func:`pidkit.gaussian_pid` (one item or a batch; numpy or torch) from ``n`` samples (a
    scalar or one per item), bias-corrected when ``correct``."""
    red, (ux, uy), syn, mi = r.redundancy, r.unique, r.synergy, r.mutual_information
    if not correct:
        return {"red": red, "uni_x": ux, "uni_y": uy, "syn": syn, "mi": mi}
    b_x, b_y, b_xy = _wishart_biases(n, _ranks(r, dims))
    i_x, i_y, i_xy = red + ux - b_x, red + uy - b_y, mi - b_xy
    if measure == "mmi":
        f_star = i_x + _relu(i_y - i_x)
    else:
        f_star = red + ux + uy - _union_shift(r.details["eigenvalues"], b_x, b_y)
    return {"red": i_x + i_y - f_star, "uni_x": f_star - i_y, "uni_y": f_star - i_x,
            "syn": i_xy - f_star, "mi": i_xy}


_KEYS = ("red", "uni_x", "uni_y", "syn", "mi")  # lattice order of two sources, then I(M; X, Y)


def gaussian_vectors(covs: np.ndarray, n: Any, dims: tuple[int, int, int], measure: str,
                     bias_correction: bool) -> np.ndarray:
    """Atoms (lattice order) and :math:`I(M; X, Y)`, nats, of the estimator applied to a batch
    of covariances ``(B, d, d)`` from ``n`` samples each (a scalar or ``(B,)``), shape
    ``(B, 5)``: the evaluation hook of the bootstrap and the null. A covariance that
    :func:`pidkit.gaussian_pid` rejects gives a row of NaN (dropped by the engine);
    regularisation warnings of the batch are summarised in one."""
    if covs.shape[0] == 0:
        return np.zeros((0, 5))
    n = np.broadcast_to(np.asarray(n, dtype=np.float64), (covs.shape[0],))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RegularizationWarning)
        try:
            r = gaussian_pid(covs, dims=dims, measure=measure, base=math.e, certify=False)
            atoms = _atoms(r, n, dims, measure, bias_correction)
            out = np.column_stack([np.asarray(atoms[k], dtype=np.float64) for k in _KEYS])
        except PIDValueError:  # some replicate is degenerate: find which, one by one
            out = np.full((covs.shape[0], 5), np.nan)
            for b in range(covs.shape[0]):
                try:
                    r = gaussian_pid(covs[b], dims=dims, measure=measure, base=math.e,
                                     certify=False)
                except PIDValueError:
                    continue
                atoms = _atoms(r, float(n[b]), dims, measure, bias_correction)
                out[b] = [float(atoms[k]) for k in _KEYS]
    regularised = 0
    for w in caught:
        if issubclass(w.category, RegularizationWarning):
            regularised += 1
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if regularised:
        warnings.warn(f"{regularised} of {covs.shape[0]} resampled covariances were "
                      "near-singular and were regularised by pidkit.gaussian_pid (a ridge on "
                      "the target block); their atoms are kept", RegularizationWarning,
                      stacklevel=caller_stacklevel())
    return out


def gaussian_point(cov: Any, n: int, dims: tuple[int, int, int], measure: str,
                   bias_correction: bool, names: tuple[str, str, str] | None = None
                   ) -> tuple[PIDResult, dict[str, Any]]:
    """The estimate (nats) from one covariance ``cov`` of ``n`` samples (numpy, or torch with
    autograd), and the plug-in atoms (``red``, ``uni_x``, ``uni_y``, ``syn``, nats). A plug-in
    estimate keeps :func:`pidkit.gaussian_pid`'s certificate; a corrected one has none (the
    certificate bounds the uncorrected value). ``names``: the arguments the user passed the
    target and the sources as; a covariance :func:`pidkit.gaussian_pid` refuses because a
    block is constant or a source is collinear with the target is then an error naming that
    argument (:func:`_named_failure`), since the user passed samples, not ``cov``."""
    try:
        r = gaussian_pid(cov, dims=dims, measure=measure, base=math.e,
                         certify=not bias_correction and not is_torch(cov))
    except PIDValueError as err:
        if names is not None:
            _named_failure(cov, dims, names, err)
        raise
    atoms = _atoms(r, n, dims, measure, bias_correction)
    nodes = lattice(2).nodes
    point = PIDResult(atoms=dict(zip(nodes, (atoms[k] for k in _KEYS[:4]), strict=True)),
                      measure=measure, base=math.e, mutual_information=atoms["mi"],
                      solver=r.solver, source_names=r.source_names, target_name=r.target_name,
                      details={"ranks": tuple(int(v) for v in _ranks(r, dims))})
    plugin = {k: r.atoms[a] for k, a in zip(_KEYS[:4], nodes, strict=True)}
    return point, plugin


def _named_failure(cov: Any, dims: tuple[int, int, int], names: tuple[str, str, str],
                   err: PIDValueError) -> None:
    """Re-run the reduction that refused ``cov`` (:func:`pidkit.gaussian._covariance.prepare`)
    with the user's argument ``names``: a constant block or an exactly collinear source raises
    the error naming its argument (chained to ``err``); any other failure returns, and the
    caller re-raises ``err``."""
    try:
        xp, cov64, _, checked = check_cov(cov, dims)
        prepare(xp.to_numpy(cov64)[0], checked, names=names)
    except PIDValueError as named:
        if str(named).startswith(tuple(f"{n}: " for n in names)):
            raise named from err


def check_size(n: int, dims: tuple[int, ...]) -> None:
    """Enough samples for a covariance of ``sum(dims)`` variables and its bias correction."""
    d = sum(dims)
    if n <= d + 1:
        raise fail("samples", f"{n} samples are too few for {d} Gaussian variables",
                   f"Pass more than {d + 1} samples (many more for useful estimates), or "
                   "reduce with n_components")


def label_entropy(class_counts: Any, joint_mi: float, base: float, where: str) -> float:
    r"""The entropy :math:`H(Y)` (units of ``base``) of labels with ``class_counts``, the most
    any representation can carry about them, with a warning naming ``where`` when the Gaussian
    estimate ``joint_mi`` of :math:`I(Y; \text{sources})` (nats) exceeds it.

    The Gaussian estimator reads one-hot labels as Gaussian variables, a second-order summary
    that is not bounded by :math:`H(Y)`: well separated classes drive its informations far
    above it (a 3-class label gave 17 bits, at most :math:`\log_2 3 = 1.58`), and its values
    are then not informations of the labels."""
    counts = np.asarray(class_counts, dtype=np.float64)
    p = counts[counts > 0] / counts.sum()
    entropy = float(-(p * np.log(p)).sum()) + 0.0     # one class: 0, not -0.0
    if joint_mi > entropy * (1 + 1e-9) + 1e-12:
        unit = math.log(base)
        warnings.warn(
            f"{where}: the Gaussian estimate of I(Y;T,S) = {joint_mi / unit:.4g} exceeds the "
            f"labels' entropy H(Y) = {entropy / unit:.4g} (units of base {base:g}), the most "
            f"any representation can carry about them: the Gaussian estimator reads one-hot "
            f"labels as Gaussian variables, which well separated classes push beyond H(Y). "
            f"Read its values as relative trends, or use a discrete estimator (plug-in codes, "
            f"estimator='discretize'; audits: 'paper') for values that are informations of "
            f"the labels", UserWarning, stacklevel=caller_stacklevel())
    return entropy / math.log(base)


def class_counts(low: np.ndarray, high: np.ndarray,
                 sums: Callable[[], tuple[np.ndarray, np.ndarray]], n: int
                 ) -> np.ndarray | None:
    r"""The class counts of a target block that is a one-hot encoding of classes, read from its
    column minima ``low`` and maxima ``high`` and, when every column lies in ``[0, 1]``, from
    ``sums()``: its column sums and sums of products (about 0) over ``n`` rows; None when the
    block is not one.

    A one-hot block (:func:`~pidkit.estimate.codes.one_hot`, with or without its last column)
    holds 0 and 1 only, with at most one 1 per row; the counts are the column sums, then the
    rows of zeros (the dropped class). The test is exact: on :math:`[0, 1]`,
    :math:`x^2 \le x` with equality only at 0 and 1, so columns within ``[0, 1]`` whose sums of
    squares equal their sums hold 0 and 1 only; and non-negative columns whose products sum to
    0 are never 1 in the same row. One-hot sums are integers, exact in float64 (up to
    :math:`2^{53}` rows), so the test holds for every one-hot block, and values that are not
    0 or 1 fail it by far more than rounding. A block of width 0 (one class) gives ``[n]``.
    """
    if not ((low >= 0) & (high <= 1)).all():
        return None
    total, cross = sums()
    if not np.array_equal(np.diag(cross), total) or (cross - np.diag(np.diag(cross))).any():
        return None
    return np.append(total, n - total.sum())


def target_block(target: Any, encoding: str, name: str = "target") -> tuple[np.ndarray, str]:
    """The target as a float64 block, and the encoding actually used (``name``: the argument
    named in errors)."""
    check_choice(encoding, "target_encoding", TARGET_ENCODINGS, exact=True, what="encoding")
    if encoding == "auto":
        raw = _one_column(to_numpy(target, name))
        encoding = "onehot" if raw.dtype.kind in "biu" and raw.ndim == 1 else "continuous"
        _warn_label_like(raw, name)
    if encoding == "onehot":
        # the default advice ("or use estimator='gaussian'") is this route's own
        labels = _one_column(as_labels(target, name, "Pass integer class labels, or "
                                       "target_encoding='continuous' (or 'auto') for a "
                                       "continuous target"))
        if labels.ndim != 1:
            raise fail(name, "must be one label per sample for a one-hot encoding",
                       "Pass labels of shape (n,) or (n, 1)", labels.shape)
        codes, k = encode(labels)
        return one_hot(codes, k), encoding     # one class: no column (a constant target)
    return as_matrix(target, name), encoding


def _one_column(arr: np.ndarray) -> np.ndarray:
    """A column ``(n, 1)`` as the vector ``(n,)`` it holds (a view); other shapes unchanged.

    One variable per sample, whichever of the two shapes holds it (``df[["label"]]``, a
    ``(n, 1)`` label tensor): both are the same target, read by the same rule."""
    return arr.reshape(-1) if arr.ndim == 2 and arr.shape[1] == 1 else arr


def _warn_label_like(raw: np.ndarray, name: str) -> None:
    """Warn when a 1-D float target (or one column, already :func:`_one_column`), read as
    continuous, looks like class labels (whole numbers, at most :data:`LABEL_LIKE_CLASSES`
    distinct values)."""
    if raw.ndim != 1 or raw.dtype.kind != "f" or not np.isfinite(raw).all():
        return
    values = np.unique(raw)
    if values.size > LABEL_LIKE_CLASSES or not np.array_equal(values, np.round(values)):
        return
    warnings.warn(f"{name}: float values that are all whole numbers ({values.size} distinct: "
                  f"{values[:5].tolist()}{' ...' if values.size > 5 else ''}) are read as one "
                  f"continuous Gaussian variable (target_encoding='auto' reads floats so). If "
                  f"they are class labels, pass target_encoding='onehot' or integer labels "
                  f"({name}.astype(int)); pass target_encoding='continuous' to keep this "
                  f"reading without the warning", UserWarning, stacklevel=caller_stacklevel())


def row_order(blocks: list[np.ndarray]) -> np.ndarray:
    """The permutation that puts the rows of ``blocks`` (arrays ``(n, d_i)`` read side by side
    as one row per sample) in lexicographic order, first column first: a function of the
    multiset of rows alone. Rows in that order make every draw indexed by position (bootstrap
    resamples, shuffles, subsamples) independent of the order the samples came in; rows equal
    in every column may come in either order, since they are interchangeable in every sum.

    Sorted on the first ``k`` columns, ``k`` doubling while two neighbours still agree on all of
    them (a one-hot target ties whole classes, a continuous column breaks the ties): a few
    passes instead of one per column of wide blocks.

    >>> row_order([np.array([[1.0], [0.0], [1.0]]), np.array([[2.0], [5.0], [-1.0]])])
    array([1, 2, 0])
    """
    columns = [b[:, j] for b in blocks for j in range(b.shape[1])]
    k = 1
    while True:
        keys = columns[:k]
        order = np.lexsort(keys[::-1])             # lexsort: the last key is the primary one
        if k >= len(columns):
            return order
        tied = np.ones(order.size - 1, dtype=bool)
        for c in keys:
            ranked = c[order]
            tied &= ranked[1:] == ranked[:-1]
        if not tied.any():
            return order
        k *= 2


def gaussian_blocks(target: Any, sources: tuple[Any, ...], *, target_encoding: str = "auto",
                    n_components: int | None = None, scaling: str | None = None,
                    fit_size: int | None = None, random_state: int | None = None,
                    names: tuple[str, ...] | None = None
                    ) -> tuple[np.ndarray, tuple[int, ...], dict[str, Any]]:
    """Rows ``z = (target block, source blocks)`` in float64, block widths, and settings
    (``names``: the arguments named in errors, default ``target``, ``sources[i]``).

    Each source is optionally scaled and reduced to ``n_components`` principal components
    (:class:`~pidkit.estimate.projection.Projector`, fitted on ``fit_size`` rows). Columns of zero
    variance make the covariance singular and raise an error, except in a target that is
    constant as a whole (every column, or a single class), whose atoms are all 0
    (:func:`gaussian_estimate`). Labels (strings, objects) are refused, with the advice to
    encode them or to use the plug-in route.

    The rows come out in the :func:`row_order` of (target block, sources as given), taken before
    any projection, so that everything drawn from them (the projection's ``fit_size`` rows, the
    bootstrap resamples and the shuffles of :func:`gaussian_estimate`) and every sum in the
    result is the same whatever the order in which the samples were passed.
    """
    names = names or ("target",) + tuple(f"sources[{i}]" for i in range(len(sources)))
    if fit_size is not None:  # checked even when no projection is fitted
        check_int(fit_size, "fit_size", 2)
    refuse_labels(target, names[0], "The Gaussian route reads numbers: pass integer class "
                  f"labels, which it one-hot encodes (pidkit.estimate.encode({names[0]})[0]), "
                  "or use estimator='plugin' (pid_from_samples), which reads labels of any kind")
    for s, name in zip(sources, names[1:], strict=True):
        refuse_labels(s, name, "The Gaussian route reads numbers: one-hot encode the "
                      f"categories (pidkit.estimate.one_hot(pidkit.estimate.encode({name})[0]))"
                      ", or use estimator='plugin' (pid_from_samples), which reads labels of "
                      "any kind")
    m, used = target_block(target, target_encoding, names[0])
    given = []
    for s, name in zip(sources, names[1:], strict=True):
        x = as_matrix(s, name)
        if x.shape[0] != m.shape[0]:
            raise fail("samples", f"target has {m.shape[0]} samples, {name} has {x.shape[0]}",
                       "Pass one row per sample for the target and every source, aligned")
        given.append(x)
    order = row_order([m, *given])
    blocks = [m[order]]
    rng = np.random.default_rng(random_state)
    for x, name in zip(given, names[1:], strict=True):
        x = x[order]
        if n_components is not None or scaling is not None:
            proj = Projector(n_components, scaling=scaling, dtype="float64",
                             random_state=random_state)
            proj.fit(subsample(x, fit_size, rng), name)
            x = proj.transform(x, name)
        blocks.append(x)
    for i, (b, name) in enumerate(zip(blocks, names, strict=True)):
        flat = np.flatnonzero(b.max(axis=0) == b.min(axis=0))
        if flat.size and not (i == 0 and flat.size == b.shape[1]):
            raise fail(name, f"has constant column(s) {flat[:5].tolist()} (zero variance), so "
                       "the covariance is singular", "Drop constant features, or reduce with "
                       "n_components=...")
    settings = {"target_encoding": used, "n_components": n_components, "scaling": scaling,
                "fit_size": fit_size}
    return np.concatenate(blocks, axis=1), tuple(b.shape[1] for b in blocks), settings


def gaussian_estimate(z: np.ndarray, dims: tuple[int, ...], *, measure: str, base: float,
                      ci: float | None, n_boot: int, n_perm: int, seed: int,
                      bias_correction: bool, details: dict[str, Any],
                      interval: str = "percentile",
                      names: tuple[str, ...] = ("target", "sources[0]", "sources[1]")
                      ) -> PIDResult:
    """The Gaussian estimator (module notes) of the rows ``z`` (float64, blocks ``dims``), with
    bootstrap intervals and a shuffle null drawn by the engine from the bootstrap and null
    streams of :func:`~pidkit.estimate.uncertainty.seed_sequences` ``(seed)``. ``names``: the
    arguments the target and the sources were passed as, named in errors. A constant target
    (no column, or every column one value) gives zeros (:func:`constant_target`)."""
    if len(dims) != 3:
        raise fail("sources", f"the Gaussian route takes two sources, got {len(dims) - 1}",
                   "Pass a target and two sources (concatenate columns to group variables)")
    dims = (int(dims[0]), int(dims[1]), int(dims[2]))
    n = z.shape[0]
    check_size(n, dims)
    target = z[:, :dims[0]]
    if (target.max(axis=0) == target.min(axis=0)).all():
        return constant_target(measure=measure, base=base, ci=ci, n_boot=n_boot, n_perm=n_perm,
                               bias_correction=bias_correction, details=details,
                               interval=interval, name=names[0])
    c = standardized(z)
    cov = c.T @ c / n
    cov = (cov + cov.T) / 2
    point, plugin = gaussian_point(cov, n, dims, measure, bias_correction,
                                   (names[0], names[1], names[2]))
    _, (_, boot_seed, null_seed) = seed_sequences(seed)

    def evaluate(covs: np.ndarray) -> np.ndarray:
        return gaussian_vectors(covs, n, dims, measure, bias_correction)

    boot, dropped_boot = bootstrap(lambda w: _weighted_covariances(c, w), evaluate,
                                   np.ones(n, dtype=np.int64), n_boot,
                                   np.random.default_rng(boot_seed))
    null, dropped_null = permutation_null(
        lambda p: _permuted_covariances(c, cov, dims[0], p), evaluate, n, n_perm,
        np.random.default_rng(null_seed))
    reps = Replicates(vector(point), boot, null, dropped_boot, dropped_null)
    info = _info(n, point.details["ranks"], base, bias_correction, plugin)
    return assemble(point, reps, ci, {**details, **info}, base, interval)


def _info(n: int, ranks: tuple[int, int, int, int], base: float, bias_correction: bool,
          plugin: dict[str, Any]) -> dict[str, Any]:
    """The estimator's details: the correction used, the ranks the informations were computed
    on (:func:`_ranks`), the Wishart biases of the three mutual informations and the plug-in
    atoms, in units of ``base``."""
    unit = 1 / math.log(base)
    b_x, b_y, b_xy = _wishart_biases(n, ranks)
    wishart = {"I(Y;X0)": b_x * unit, "I(Y;X1)": b_y * unit, "I(Y;X0,X1)": b_xy * unit}
    return {"bias_correction": bias_correction, "ranks": list(ranks),
            "mutual_information_bias_wishart": wishart,
            "plugin": {k: float(v) * unit for k, v in plugin.items()}}


def gaussian_from_covariance(cov: np.ndarray, n: int, dims: tuple[int, int, int], *,
                             measure: str, base: float, bias_correction: bool,
                             details: dict[str, Any],
                             names: tuple[str, str, str] = ("target", "sources[0]",
                                                            "sources[1]")) -> PIDResult:
    """The same estimator from a covariance of ``n`` samples (any per-variable scaling, e.g.
    :meth:`~pidkit.estimate.GaussianMoments.pid`), without resampling (the rows are gone).
    ``names``: the arguments the samples' blocks were passed as, named in errors. A target
    block of exact zeros (a constant target: :class:`~pidkit.estimate.GaussianMoments` gives a
    variable with one value in every sample exactly zero covariances) gives zeros
    (:func:`constant_target`)."""
    base = check_base(base)
    check_size(n, dims)
    if not np.asarray(cov)[:dims[0], :dims[0]].any():      # exactly 0: a constant target
        return constant_target(measure=measure, base=base, ci=None, n_boot=0, n_perm=0,
                               bias_correction=bias_correction, details=details,
                               name=names[0])
    point, plugin = gaussian_point(cov, n, dims, measure, bias_correction, names)
    empty = np.zeros((0, 5))
    info = _info(n, point.details["ranks"], base, bias_correction, plugin)
    return assemble(point, Replicates(vector(point), empty, empty), None, {**details, **info},
                    base)


def constant_target(*, measure: str, base: float, ci: float | None, n_boot: int, n_perm: int,
                    bias_correction: bool, details: dict[str, Any], interval: str = "percentile",
                    name: str = "target") -> PIDResult:
    """The estimate for a constant target ``name``, with a warning
    (:func:`~pidkit.estimate._checks.warn_constant`): it carries no information, so every atom,
    the mutual information, their plug-in values and Wishart biases (:func:`mi_bias` of a
    0-dimensional block) and every bootstrap and shuffle replicate (a resample or shuffle of a
    constant is that constant) are exactly 0. Nothing is drawn and no covariance is evaluated
    (its target block is singular); ``solver.details["constant_target"]`` is True."""
    warn_constant(name, target=True)
    zeros = np.zeros(5)
    point = PIDResult(atoms=dict.fromkeys(lattice(2).nodes, 0.0), measure=measure,
                      base=math.e, mutual_information=0.0,
                      solver=SolverInfo(details={"constant_target": True}))
    reps = Replicates(zeros, np.zeros((n_boot, 5)), np.zeros((n_perm, 5)))
    info = {"bias_correction": bias_correction,
            "mutual_information_bias_wishart": dict.fromkeys(("I(Y;X0)", "I(Y;X1)",
                                                              "I(Y;X0,X1)"), 0.0),
            "plugin": dict.fromkeys(_KEYS[:4], 0.0)}
    return assemble(point, reps, ci, {**details, **info}, base, interval)
