"""Public entry points of bivariate BROJA: the registered measure, :func:`broja` (batched, numpy
or torch) and the torch path of :func:`pidkit.pid`.

Nothing here imports :mod:`pidkit.decompose` (which imports this package through the measure
registry): :func:`broja` builds its single-pmf result itself, exactly as :func:`pidkit.pid`
does for ``measure="broja"``."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ..._backend import NUMPY, Backend, get_namespace
from ...errors import ConvergenceWarning, PIDTypeError, PIDValueError, caller_stacklevel
from ...information import _mutual_information
from ...lattice import lattice
from ...result import (
    CERTIFIED_UNIQUE,
    TARGET_NAME,
    Certificate,
    PIDResult,
    SolverInfo,
    default_source_names,
)
from ...validation import (
    as_float_array,
    check_base,
    check_flag,
    check_int,
    check_pmf,
    check_target_sources,
    fail,
    is_outcome_mapping,
    pmf_from_mapping,
    pmf_sum_atol,
    pmf_sum_error,
    reject_meta,
)
from .._certified import check_solver_options
from ..registry import register_measure
from . import _host, _ipm, _small
from ._core import (
    Atoms,
    Information,
    _clamped,
    atoms_from_unique,
    certified,
    information,
    numpy_information,
    solve_atoms,
)
from ._three import compute_three
from ._warm import WarmStart, check_warm_start, fixed_warm_solver

#: Default certified gap on Uni(Y:X0\X1), in bits.
DEFAULT_TOL = 1e-9
#: Default limit on interior-point (Newton) iterations.
DEFAULT_MAX_ITER = 200
#: Name of the quantity the certificate brackets.

_LN2 = math.log(2.0)
#: The nodes of the two-source lattice, in the order of the atoms :func:`compute` returns.
_NODES = lattice(2).nodes


def _status(atoms: Atoms, xp: Backend, tol_bits: float, max_iter: int) -> tuple[str, bool]:
    """Overall status and convergence; warns (what to change) when the gap was not reached."""
    converged = xp.all(atoms.converged)
    if not converged:
        gap = float(xp.max((atoms.upper - atoms.lower) / _LN2))
        warnings.warn(
            f"BROJA: after {max_iter} interior-point iterations the certified gap is "
            f"{gap:.3g} bits > tol={tol_bits:g}; the reported atoms are within that gap of the "
            f"true values. Raise max_iter (e.g. max_iter={4 * max_iter}) or loosen tol.",
            ConvergenceWarning, stacklevel=caller_stacklevel())
        return "max_iter", False
    return ("closed_form" if atoms.iterations == 0 else "optimal"), True


@register_measure(
    "broja", max_sources=3, options=("tol", "max_iter"),
    reference="Bertschinger, Rauh, Olbrich, Jost, Ay 2014, Entropy 16, 2161; three sources: "
              "Chicharro 2017, arXiv:1708.03845; Makkeh et al. 2019, Entropy 21, 862",
    summary="BROJA unique information, min_{Q in Delta_P} I_Q(Y;X0|X1); exact and certified; "
            "two sources, or three (maximum-entropy extension)")
def compute(p: np.ndarray, tol: float = DEFAULT_TOL, max_iter: int = DEFAULT_MAX_ITER,
            warm_start: WarmStart | None = None):
    """BROJA atoms (nats) of ``p[y, x0, x1]`` with a certificate on ``Uni(Y:X0\\X1)``.

    ``tol`` is the certified gap in bits; ``max_iter`` bounds the interior-point iterations;
    ``warm_start``: a checked :class:`._warm.WarmStart` of a pmf of ``p``'s shape. Outcomes of
    zero probability are removed first (they carry no mass in any ``Q``); the returned
    ``SolverInfo.state`` is in ``p``'s full layout.
    """
    tol, max_iter = check_solver_options(tol, max_iter)
    if p.ndim == 4:  # three sources: the maximum-entropy extension (._three)
        return compute_three(p, tol, max_iter, compute)
    if p.ndim != 3:
        raise fail("sources", f"BROJA needs exactly two sources, got {p.ndim - 1}",
                   "Group axes into two composite sources, e.g. sources=[[1, 2], [3]]")
    raw, margins = numpy_information(p[None])
    ky, kt, ks = (m[0] > 0 for m in margins)
    full = ky.all() and kt.all() and ks.all()  # nothing to remove (the common case)
    keep = None if full else (np.ix_(ky, kt), np.ix_(ky, ks), np.ix_(ky, kt, ks))
    warm = warm_start if warm_start is None or full else WarmStart(
        *(x[0][k][None] for x, k in zip((warm_start.lam, warm_start.mu, warm_start.q), keep,
                                        strict=True)))
    atoms, out = solve_atoms((p if full else p[keep[2]])[None], NUMPY, tol * _LN2, max_iter,
                             solver=partial(_small.solve, warm=warm),
                             info=_clamped(raw, NUMPY) if full else None)
    status, converged = _status(atoms, NUMPY, tol, max_iter)
    values = [float(v[0]) for v in (atoms.redundancy, atoms.unique_t, atoms.unique_s,
                                    atoms.synergy)]
    cert = Certificate(CERTIFIED_UNIQUE, float(atoms.lower[0]), float(atoms.upper[0]))
    info = SolverInfo(status, converged, atoms.iterations, cert,
                      details={"tol_bits": tol, "max_iter": max_iter,
                               "algorithm": "primal-dual interior point on the dual"},
                      state=WarmStart(out.lam, out.mu, out.q) if full else WarmStart(
                          *(_expand(x, k, shape) for x, k, shape in zip(
                              (out.lam, out.mu, out.q), keep,
                              (p.shape[:2], p.shape[::2], p.shape), strict=True))))
    return dict(zip(_NODES, values, strict=True)), info


def _expand(x: np.ndarray, keep: tuple[np.ndarray, ...], shape: tuple[int, ...]) -> np.ndarray:
    """``x[0]``, given on the kept outcomes ``keep`` (an ``np.ix_`` index), placed into zeros
    of the full ``shape``, with a batch axis of 1."""
    full = np.zeros(shape)
    full[keep] = x[0]
    return full[None]

def _check_layout(p: Any, batch: bool, xp: Backend, ndim: int | None) -> int:
    """The checks of a pmf array that read no values: a floating-point dtype, ``ndim`` axes
    (after the batch axis, if ``batch``; any number from 2 on if ``ndim`` is None), no empty
    axis. Returns the number of leading batch axes (0 or 1)."""
    if not xp.is_floating(p):
        raise fail("p", f"must be a floating-point array, not dtype {p.dtype}",
                   "Convert it to float64 or float32 (e.g. p.double() for a torch tensor)",
                   kind=PIDTypeError)
    lead = 1 if batch else 0
    if ndim is not None and p.ndim != ndim + lead:
        what = "p[b, y, x0, x1]" if batch else "p[y, x0, x1]"
        raise fail("p", f"must have {ndim + lead} axes ({what}), has {p.ndim}",
                   "Reshape it, or use pidkit.pid to group axes into two sources")
    if p.ndim < 2 + lead:
        where = " after the batch axis" if batch else ""
        raise fail("p", f"needs at least 2 axes (one per variable){where}, has shape "
                        f"{tuple(p.shape)}", "Reshape it so that each variable has its own axis, "
                        "e.g. p.reshape(2, 2, 2)")
    if any(n == 0 for n in p.shape):
        raise fail("p", f"has an empty axis (shape {tuple(p.shape)})",
                   "Give every variable at least one outcome")
    return lead


def _check_tensor_pmf(p: Any, batch: bool, normalize: bool, xp: Backend, ndim: int | None,
                      atol: float | None = None):
    """Validate a floating-point pmf array of ``xp`` (numpy or torch), per batch item; returns
    it normalised, in float64 (divided after the cast: a float32 pmf divided in float32 moved by
    about 1e-7 relative, which the certificate then did not cover). ``atol``: the tolerance on
    ``|sum(p) - 1|``, by default :func:`~pidkit.validation.pmf_sum_atol` of ``p``'s dtype (pass
    the one of the dtype ``p`` was given in when it was converted already)."""
    lead = _check_layout(p, batch, xp, ndim)
    reject_meta(p, "p")
    if not xp.all(p == p) or not xp.all(xp.maximum(p, 0.0) < math.inf):
        raise fail("p", "contains NaN or infinite probabilities",
                   "Remove or replace the non-finite entries")
    if xp.any(p < 0):
        raise fail("p", "contains negative probabilities", "Probabilities must be >= 0")
    axes = tuple(range(lead, p.ndim))
    total = xp.sum(p, axis=axes, keepdims=True)
    if xp.any(total <= 0):
        raise fail("p", "has an item that is all zeros",
                   "At least one outcome needs positive probability")
    if atol is None:
        atol = pmf_sum_atol(p)
    if not normalize and xp.any(abs(total - 1.0) > atol):
        sums = xp.to_numpy(xp.float64(total)).ravel()     # for the message: one more read
        item = int(np.flatnonzero(np.abs(sums - 1.0) > atol)[0])
        raise pmf_sum_error("p", float(sums[item]), atol,
                            where=f" (item {item} of the batch)" if lead else "")
    p64 = xp.float64(p)
    return p64 / xp.sum(p64, axis=axes, keepdims=True)


def _atoms_arrays(p64, xp: Backend, tol_bits: float, max_iter: int,
                  warm: WarmStart | None = None, fixed: bool = False):
    """Atoms (nats) of a batch ``p64[b, y, t, s]``, the solver's output and the
    :class:`._core.Information` of ``p64``, differentiable if ``p64`` requires grad: the
    envelope theorem gives the gradient of :math:`f^*` with respect to ``P(y, t, s)`` as the
    optimal dual ``lam[y, t] + mu[y, s]`` (:meth:`~pidkit._backend.Backend.envelope`). With
    ``fixed``, exactly ``max_iter`` iterations without host reads
    (:func:`._ipm.solve_fixed`). A torch batch in host memory is solved by the numpy code
    (:func:`._host.atoms_arrays`), numpy with the lean driver where it applies
    (:func:`._small.solve`: single pmfs and small batches of small ones)."""
    tol = tol_bits * _LN2
    if not fixed and xp is not NUMPY and xp.on_host(p64):
        return _host.atoms_arrays(p64, xp, tol, max_iter, warm)
    if fixed:
        solver = _ipm.solve_fixed if warm is None else fixed_warm_solver(warm)
    else:
        solver = partial(_small.solve, warm=warm)
    info = information(p64, xp)
    if not xp.requires_grad(p64):
        return (*solve_atoms(p64, xp, tol, max_iter, solver=solver, info=info), info)
    with xp.no_grad():
        detached = Information(*(xp.detach(v) for v in vars(info).values()))
        atoms, out = solve_atoms(xp.detach(p64), xp, tol, max_iter, solver=solver,
                                 info=detached)
        p_yt, p_ys = xp.sum(p64, axis=3), xp.sum(p64, axis=2)
        lam = xp.where(p_yt > 0, out.lam, 0.0)
        mu = xp.where(p_ys > 0, out.mu, 0.0)
        grad = lam[:, :, :, None] + mu[:, :, None, :]
    f_upper = xp.envelope(p64, out.f_upper, grad)
    u, lower, upper = certified(out.f_lower, f_upper, info, xp)
    values = atoms_from_unique(u, info, xp)
    return (Atoms(*values, atoms.lower, atoms.upper, atoms.converged, atoms.iterations), out,
            info)


def broja(p: Any, *, base: float = 2, tol: float = DEFAULT_TOL,
          max_iter: int = DEFAULT_MAX_ITER, batch: bool = False,
          normalize: bool = False, warm_start: Any = None,
          iterations: int | None = None) -> PIDResult:
    r"""Bivariate BROJA decomposition of ``p[y, x0, x1]`` or of a batch ``p[b, y, x0, x1]``.

    .. math::

        \mathrm{Uni}(Y{:}X_0 \setminus X_1) = \min_{Q \in \Delta_P} I_Q(Y; X_0 \mid X_1),
        \qquad \mathrm{Red} = I(Y;X_0) - \mathrm{Uni}(Y{:}X_0 \setminus X_1),

    with :math:`\Delta_P` the pmfs with the same :math:`(Y, X_0)` and :math:`(Y, X_1)`
    marginals as ``p``. Solved by a primal-dual interior-point method on the dual (see
    :mod:`pidkit.discrete.broja`); the answer carries a certificate ``[lower, upper]`` on
    ``Uni(Y:X0\X1)`` that brackets every atom's error.

    Parameters
    ----------
    p : numpy.ndarray, torch.Tensor or mapping
        Joint pmf, target on the first axis (after the batch axis when ``batch=True``), or one
        pmf as a mapping ``{(y, x0, x1): probability}`` (as BROJA_2PID takes it; key positions
        are the axes, :func:`~pidkit.validation.pmf_from_mapping`). torch
        tensors may live on any device; the solver runs in float64 on that device and the
        atoms come back in ``p``'s dtype. Gradients flow to ``p`` when it requires grad.
    base : float, default 2
        Logarithm base of the results (2: bits).
    tol : float, default 1e-9
        Certified gap on ``Uni(Y:X0\X1)`` in bits.
    max_iter : int, default 200
        Most interior-point iterations; a :class:`~pidkit.errors.ConvergenceWarning` says when
        the gap was not reached.
    batch : bool, default False
        Whether the first axis indexes independent pmfs.
    normalize : bool, default False
        Divide each pmf by its sum instead of rejecting a sum different from 1.
    warm_start : PIDResult or WarmStart, optional
        The result of a previous ``pidkit.broja`` call on a pmf of the same shape (same
        ``batch``, library and device), or its ``solver.state``: its dual point, shifted to
        feasibility, and its primal point, refitted to the new marginals on its own support,
        are certified on ``p`` first; items whose bracket is below ``tol`` need no iteration,
        the others iterate from that point with re-centred block masses and slacks (from the
        cold start when it is far; docs: "Warm starts"). The certificate is valid whatever
        the warm start.
    iterations : int, optional
        torch tensors only: run exactly this many predictor-corrector iterations on the whole
        batch, with nothing read back from the device (for training steps on a GPU; without
        it, the default certified solve decides convergence on the host at every
        iteration). Each item is certified on the device after every iteration and frozen
        once its gap is below ``tol``; there is no crossover, so an item may end above
        ``tol``: its atoms are still within its reported certificate, but nothing warns
        during the call (the stalling families of the interior-point iteration stay slow:
        on 6 x 6 x 6 Dirichlet(0.01) pmfs, gaps up to 2e-3 bits after 40 iterations, where
        the default path finishes by its crossover). The value checks on ``p`` (finite,
        non-negative, sum) are made on the device too: an item that fails them gets NaN
        atoms. ``solver.status`` is
        ``"fixed_iterations"``, ``solver.converged`` a 0-d bool tensor (every item within
        ``tol``), ``solver.details["gap_bits"]`` the certified gaps in bits and
        ``details["valid"]`` the value checks, all on ``p``'s device; call
        ``solver.check()`` after the step to read them (one synchronisation): it raises
        :class:`~pidkit.errors.PIDValueError` for invalid items and warns with
        :class:`~pidkit.errors.ConvergenceWarning` when a gap exceeds ``tol``. ``max_iter``
        is ignored. Warm starts work as above, except that every item iterates from the
        warm point however far it is (no cold fallback), so that a few iterations per
        training step keep improving from step to step; the items it certifies already are
        frozen at once. Gradients are those of the default solve, the dual point ``g`` of
        the best lower bound (envelope theorem): exact at convergence; with a certified gap
        :math:`\varepsilon` on :math:`f^*` (nats) it is an
        :math:`\varepsilon`-subgradient, since the dual point is feasible for every pmf
        :math:`P'` of the same support:
        :math:`f^*(P') \ge \langle g, P'\rangle = f^*(P) + \langle g, P' - P\rangle -
        \varepsilon`. It approaches the exact gradient as the gap closes (two 4 x 4 x 4
        pmfs: up to 7e-6 per entry with gaps up to 4e-10 bits, 1e-10 with gaps up to
        6e-11 bits). The Newton systems use the dense solver at every size
        (``8 |Y|^2 |X0| |X1|`` bytes per item).

    Returns
    -------
    PIDResult
        For a single numpy pmf, float atoms (as :func:`pidkit.pid`). For a batch or a torch
        tensor, every atom, ``mutual_information`` and the certificate bounds are arrays of
        shape ``(B,)`` (``()`` without ``batch``) of ``p``'s library, dtype and device;
        ``solver.details["converged"]`` holds per-item convergence. ``solver.state`` holds
        the solution (a :class:`~pidkit.discrete.broja.WarmStart`) for ``warm_start``.

    Examples
    --------
    >>> import numpy as np, pidkit
    >>> p = np.zeros((2, 2, 2)); p[0, 0, 0] = p[0, 0, 1] = p[0, 1, 0] = p[1, 1, 1] = 0.25
    >>> r = pidkit.broja(p)                      # AND gate
    >>> round(r.redundancy, 6), round(r.synergy, 6)
    (0.311278, 0.5)
    >>> r = pidkit.broja(np.stack([p, p]), batch=True)
    >>> r.synergy.shape
    (2,)
    >>> r2 = pidkit.broja(np.stack([p, p]), batch=True, warm_start=r)   # already solved
    >>> r2.solver.iterations
    0
    >>> import torch
    >>> r = pidkit.broja(torch.tensor(p), iterations=20)   # no host read in the call
    >>> r.solver.status
    'fixed_iterations'
    >>> r.solver.check()                                     # after the step: one read
    True

    References
    ----------
    N. Bertschinger, J. Rauh, E. Olbrich, J. Jost, N. Ay, "Quantifying unique information",
    Entropy 16, 2161 (2014).
    """
    batch = check_flag(batch, "batch", "Pass batch=True for p[b, y, x0, x1]")
    normalize = check_flag(normalize, "normalize", "Pass normalize=True to rescale p")
    base = check_base(base)
    tol, max_iter = check_solver_options(tol, max_iter)
    if is_outcome_mapping(p):
        p = pmf_from_mapping(p, "p")
    xp = get_namespace(p)
    if iterations is not None:
        iterations = check_int(iterations, "iterations", 1)
        if xp.scalar_floats:
            raise fail("iterations", "is for torch tensors (the synchronisation-free mode of "
                       "training steps)", "Pass a torch tensor, or drop iterations= for the "
                       "certified solve", kind=PIDTypeError)
        p, valid = _device_pmf(p, batch, normalize, xp)
        warm = None if warm_start is None else check_warm_start(
            warm_start, p if batch else p[None], xp)
        return _fixed_result(p, valid, xp, batch, base, tol, iterations, warm)
    atol = None
    if xp.scalar_floats:  # host arrays and array-likes: pidkit.pid's checks, float64
        given = p
        p = as_float_array(p, "p")
        # the tolerance of the dtype p was given in (an array-like: float64), as for tensors
        atol = pmf_sum_atol(given if hasattr(given, "dtype") else p)
        if not batch:
            if p.ndim != 3:
                raise fail("p", f"must have 3 axes (p[y, x0, x1]), has {p.ndim}",
                           "Use pidkit.pid(p, measure='broja') for three sources or to group "
                           "axes into two sources, or batch=True")
            warm = None if warm_start is None else check_warm_start(warm_start, p[None], xp)
            return _float_result(p, base, normalize, tol, max_iter, atol, warm)
    like = p
    p = _check_tensor_pmf(p, batch, normalize, xp, 3, atol)
    warm = None if warm_start is None else check_warm_start(
        warm_start, p if batch else p[None], xp)
    return _result(p, xp, batch, base, tol, max_iter, source_names=default_source_names(2),
                   target_name=TARGET_NAME, warm=warm, like=like)


def _device_pmf(p: Any, batch: bool, normalize: bool, xp: Backend) -> tuple[Any, Any]:
    """The checks of :func:`_check_tensor_pmf` without reading values on the host: dtype and
    shape are checked (and raise) as there; the value checks (finite, non-negative, not all
    zeros, a sum within :func:`~pidkit.validation.pmf_sum_atol` of 1 unless ``normalize``)
    give a per-item bool array ``valid`` on ``p``'s device. Returns ``p`` normalised, with the
    uniform pmf in place of the invalid items (so that the solver stays finite), and
    ``valid`` (shape ``(B,)``, ``()`` without ``batch``)."""
    lead = _check_layout(p, batch, xp, 3)
    axes = tuple(range(lead, p.ndim))
    bad = ~xp.isfinite(p) | (p < 0)
    total = xp.sum(xp.where(bad, 0.0, p), axis=axes, keepdims=True)
    valid = ~xp.any(bad, axis=axes, keepdims=True) & (total > 0)
    if not normalize:
        valid = valid & (abs(total - 1.0) <= pmf_sum_atol(p))
    size = math.prod(p.shape[lead:])
    p = xp.where(valid, p / xp.where(valid, total, 1.0), 1.0 / size)
    return p, xp.reshape(valid, tuple(p.shape[:lead]))


@dataclass(frozen=True)
class FixedIterationInfo(SolverInfo):
    """The :class:`~pidkit.result.SolverInfo` of ``pidkit.broja(..., iterations=N)``: the
    certificate, ``converged`` and ``details["gap_bits"]``, ``details["converged"]``,
    ``details["valid"]`` are arrays on ``p``'s device, not read during the call
    (``status == "fixed_iterations"``); :meth:`check` reads them."""

    def check(self) -> bool:
        """Read the device once (a synchronisation on a GPU) and check the result: whether
        every item's certified gap is within ``tol``.

        Returns
        -------
        bool
            ``True`` when every gap is at most ``details["tol_bits"]``.

        Raises
        ------
        PIDValueError
            When an item of ``p`` failed the value checks (NaN, infinite or negative
            probabilities, all zeros, or a sum different from 1 without ``normalize``):
            its atoms are NaN.

        Warns
        -----
        ConvergenceWarning
            When some gap exceeds ``tol``: the atoms are within the reported certificate,
            not within ``tol``, of the true values.
        """
        gap, valid = self.details["gap_bits"], self.details["valid"]
        xp = get_namespace(gap)
        flat = xp.concatenate([xp.reshape(gap, (-1,)), xp.float64(xp.reshape(valid, (-1,)))])
        host = xp.to_numpy(flat)                                  # the one host read
        gaps, ok = host[:host.size // 2], host[host.size // 2:] > 0
        if not ok.all():
            raise PIDValueError(
                f"p: item(s) {np.flatnonzero(~ok).tolist()} contain NaN, infinite or negative "
                "probabilities, are all zeros, or do not sum to 1 (their atoms are NaN). Fix "
                "them, or pass normalize=True for sums different from 1")
        tol, n = self.details["tol_bits"], self.iterations
        worst = float(gaps.max())
        if worst > tol:
            warnings.warn(
                f"BROJA: after {n} fixed iterations the certified gap is {worst:.3g} bits > "
                f"tol={tol:g} (largest over the batch); the reported atoms are within that gap "
                f"of the true values. Raise iterations (e.g. iterations={2 * n}), warm-start "
                "from the previous step's result, or loosen tol.",
                ConvergenceWarning, stacklevel=2)
            return False
        return True


def _fixed_result(p, valid, xp: Backend, batch: bool, base: float, tol: float,
                  iterations: int, warm: WarmStart | None) -> PIDResult:
    """:func:`_result` for ``iterations=``: :func:`._ipm.solve_fixed`, no host read; items
    with ``valid`` false get NaN atoms and certificate."""
    p64 = xp.float64(p)
    if not batch:
        p64, valid = p64[None], valid[None]
    atoms, sol, info = _atoms_arrays(p64, xp, tol, iterations, warm, fixed=True)
    scale = 1.0 / math.log(base)

    def item(x):
        return x if batch else x[0]

    def out(x, up=None):
        x = xp.where(valid, x * scale, math.nan)
        return item(xp.to_dtype(x, p) if up is None else xp.to_dtype_outward(x, p, up))

    gap_bits = xp.where(valid, (atoms.upper - atoms.lower) / _LN2, math.nan)
    converged = atoms.converged & valid

    def solver(cert):
        return FixedIterationInfo(
            "fixed_iterations", ~xp.any(~converged), iterations, cert,
            details={"converged": item(converged), "gap_bits": item(gap_bits),
                     "valid": item(valid), "tol_bits": tol, "iterations": iterations,
                     "algorithm": "primal-dual interior point on the dual, fixed iterations"},
            state=WarmStart(sol.lam, sol.mu, sol.q))

    return _pid_result(atoms, info, out, base, solver, default_source_names(2), TARGET_NAME)


def _float_result(p: np.ndarray, base: float, normalize: bool, tol: float,
                  max_iter: int, atol: float | None = None,
                  warm: WarmStart | None = None) -> PIDResult:
    """The result of ``pidkit.pid(p, target=0, measure="broja", ...)`` for one float64 pmf
    ``p[y, x0, x1]``: Python floats, the same checks, values and details (``atol``: the
    tolerance on ``|sum(p) - 1|`` of the dtype ``p`` was given in, see :func:`broja`)."""
    p = np.ascontiguousarray(check_pmf(p, "p", normalize=normalize, atol=atol))
    atoms, info = compute(p, tol=tol, max_iter=max_iter, warm_start=warm)
    scale = 1.0 / math.log(base)
    return PIDResult(
        atoms={node: value * scale for node, value in atoms.items()},
        measure="broja",
        base=base,
        mutual_information=_mutual_information(p, (0,), (1, 2)) * scale,
        solver=info.scaled(scale),
        source_names=default_source_names(2),
        target_name=TARGET_NAME,
        details={"target_axes": [0], "source_axes": [[1], [2]]},
    )


def _result(p, xp: Backend, batch: bool, base: float, tol: float, max_iter: int,
            source_names: tuple[str, ...], target_name: str,
            warm: WarmStart | None = None, like: Any = None) -> PIDResult:
    """Solve a validated ``p`` (one item or a batch; ``warm``: a checked warm start) and wrap
    the arrays in a PIDResult in the dtype of ``like`` (default ``p``'s); the certificate's
    bounds are rounded outward to it."""
    like = p if like is None else like
    p64 = xp.float64(p)
    if not batch:
        p64 = p64[None]
    atoms, sol, info = _atoms_arrays(p64, xp, tol, max_iter, warm)
    status, converged = _status(atoms, xp, tol, max_iter)
    scale = 1.0 / math.log(base)

    def out(x, up=None):
        x = x * scale
        x = xp.to_dtype(x, like) if up is None else xp.to_dtype_outward(x, like, up)
        return x if batch else x[0]

    def solver(cert):
        return SolverInfo(status, converged, atoms.iterations, cert,
                          details={"converged": atoms.converged if batch else atoms.converged[0],
                                   "tol_bits": tol, "max_iter": max_iter,
                                   "algorithm": "primal-dual interior point on the dual"},
                          state=WarmStart(sol.lam, sol.mu, sol.q))

    return _pid_result(atoms, info, out, base, solver, source_names, target_name)


def _pid_result(atoms: Atoms, info: Information, out, base: float, solver,
                source_names: tuple[str, ...], target_name: str) -> PIDResult:
    """The :class:`~pidkit.result.PIDResult` of solved ``atoms`` (nats): every array passed
    through ``out`` (units, dtype, batch axis), the certificate of ``Uni(Y:X0\\X1)``, and the
    solver information ``solver(certificate)``."""
    values = [out(v) for v in (atoms.redundancy, atoms.unique_t, atoms.unique_s, atoms.synergy)]
    cert = Certificate(CERTIFIED_UNIQUE, out(atoms.lower, up=False), out(atoms.upper, up=True))
    return PIDResult(atoms=dict(zip(lattice(2).nodes, values, strict=True)), measure="broja",
                     base=base, mutual_information=out(info.i_ts), solver=solver(cert),
                     source_names=source_names, target_name=target_name)


def pid_tensor(p: Any, target: Any = 0, sources: Any = None, measure: str = "broja",
               base: float = 2, *, normalize: bool = False, **options: Any) -> PIDResult:
    """:func:`pidkit.pid` for a torch tensor ``p`` (one axis per variable): BROJA only, on one
    source (the closed form :math:`I(Y; X_0)`, as for every measure) or two (the
    differentiable solver); three-source BROJA runs on numpy arrays.

    Axes are arranged as in :func:`pidkit.decompose.arrange_pmf`; the result holds 0-d tensors
    (dtype and device of ``p``), differentiable with respect to ``p``.
    """
    if not isinstance(measure, str) or measure.lower() != "broja":
        raise fail("measure", "only 'broja' accepts a torch tensor",
                   "Pass p.detach().double().cpu().numpy() for other measures", measure)
    unknown = sorted(set(options) - {"tol", "max_iter"})
    if unknown:
        raise fail("options", f"{unknown} are not options of measure 'broja'",
                   "Options it accepts: tol, max_iter")
    base = check_base(base)
    tol, max_iter = check_solver_options(options.get("tol", DEFAULT_TOL),
                                   options.get("max_iter", DEFAULT_MAX_ITER))
    xp = get_namespace(p)
    like = p
    p = _check_tensor_pmf(p, False, normalize, xp, None)
    target_axes, groups = check_target_sources(p.ndim, target, sources)
    if len(groups) > 2:
        raise fail("sources", f"a torch tensor takes one or two sources (the differentiable "
                              f"solver), got {len(groups)}",
                   "Group axes into two composite sources (sources=[[1, 2], [3]]), or pass "
                   "p.detach().cpu().double().numpy() for three-source BROJA (not differentiable)")
    used = target_axes + tuple(ax for g in groups for ax in g)
    unused = tuple(ax for ax in range(p.ndim) if ax not in used)
    q = xp.sum(p, axis=unused) if unused else p
    kept = [ax for ax in range(p.ndim) if ax in used]
    q = xp.permute_dims(q, [kept.index(ax) for ax in used])
    sizes = [math.prod(p.shape[ax] for ax in g) for g in (target_axes, *groups)]
    q = q.reshape(sizes)
    if len(groups) == 1:                # the one-node lattice: I(Y; X0), no solve
        mi = information(xp.float64(q)[None, :, :, None], xp).i_t[0] / math.log(base)
        mi = xp.to_dtype(mi, like)
        return PIDResult(atoms={lattice(1).nodes[0]: mi}, measure="broja", base=base,
                         mutual_information=mi, solver=SolverInfo("closed_form"),
                         source_names=default_source_names(1), target_name=TARGET_NAME)
    return _result(q, xp, False, base, tol, max_iter, source_names=default_source_names(2),
                   target_name=TARGET_NAME, like=like)
