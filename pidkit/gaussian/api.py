r""":func:`gaussian_pid`: the exact PID of a jointly Gaussian ``(M, X, Y)`` from its covariance."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._backend import get_namespace
from ..lattice import lattice
from ..result import (
    CERTIFIED_UNIQUE,
    TARGET_NAME,
    Certificate,
    PIDResult,
    SolverInfo,
    default_source_names,
)
from ..validation import check_base, check_choice, check_flag, fail
from ._channels import posteriors, reorder
from ._covariance import Prepared, apply_prepared, as_batch, check_cov, prepare, screen
from .broja import broja_unique, certificate

__all__ = ["gaussian_pid", "gaussian_atoms_nats", "gaussian_atoms_unvalidated", "MEASURES"]

MEASURES = ("broja", "mmi")
#: Names in the result: those of every result (:mod:`pidkit.result`), as :func:`pidkit.pid` gives
#: them for a pmf. The docstrings write the math with a target ``M`` and sources ``X``, ``Y``;
#: results say ``Y`` and ``X0``, ``X1``, and the certificate brackets ``"unique[0]"``
#: (:math:`\mathrm{Uni}_X`), as the discrete BROJA certificate does.
_SOURCE_NAMES = default_source_names(2)


def _measure_atoms(xp: Any, post: dict[str, Any], measure: str) -> tuple[dict[str, Any], Any]:
    """The informations and unique atoms (nats) of one group of items from its
    :func:`~pidkit.gaussian._channels.posteriors`, and the BROJA eigenvalues (``None`` for
    MMI)."""
    if measure == "broja":
        ux, uy, lam = broja_unique(xp, post["p_x"], post["p_y"])
    else:
        top = xp.maximum(post["i_x"], post["i_y"])
        ux, uy, lam = top - post["i_y"], top - post["i_x"], None
    return {"i_x": post["i_x"], "i_y": post["i_y"], "i_xy": post["i_xy"], "uni_x": ux,
            "uni_y": uy}, lam


def _complete(xp: Any, out: dict[str, Any]) -> dict[str, Any]:
    r"""Add ``red`` and ``syn`` to ``out`` and make the unique atoms consistent with it.

    Red is taken from both sides, :math:`\tfrac12((I_X - U_X) + (I_Y - U_Y))` (they agree up
    to rounding), except where a unique atom is exactly 0 (a degraded source, e.g. every
    scalar target): Red is then that source's information, so the atom stays exactly 0
    instead of a rounding of either sign. Then :math:`U_X = I_X - \mathrm{Red}`,
    :math:`U_Y = I_Y - \mathrm{Red}`, :math:`\mathrm{Syn} = I_{XY} - I_X - I_Y +
    \mathrm{Red}`."""
    red_x, red_y = out["i_x"] - out["uni_x"], out["i_y"] - out["uni_y"]
    red = xp.where(out["uni_y"] == 0, red_y,
                   xp.where(out["uni_x"] == 0, red_x, 0.5 * (red_x + red_y)))
    out["red"] = red
    out["uni_x"] = out["i_x"] - red
    out["uni_y"] = out["i_y"] - red
    out["syn"] = out["i_xy"] - out["i_x"] - out["i_y"] + red
    return out


def gaussian_atoms_nats(xp: Any, cov64: Any, dims: tuple[int, int, int], measure: str,
                        screened: tuple[np.ndarray, np.ndarray, np.ndarray],
                        preps: dict[int, Prepared]) -> dict[str, Any]:
    """Atoms in nats for a validated batch ``cov64 (B, d, d)`` (float64, namespace ``xp``).

    ``screened = (ok, scale, corr, factor)`` from :func:`~pidkit.gaussian._covariance.screen`: items
    with ``ok[b]`` are only rescaled and computed as one batch; the others use their exact
    reduction ``preps[b]``. Returns a dict of ``(B,)`` arrays ``red``, ``uni_x``, ``uni_y``,
    ``syn``, ``i_x``, ``i_y``, ``i_xy``, and per item (lists, numpy) the posterior covariances
    ``p_x``, ``p_y``, the target covariance ``c_mm`` and the eigenvalues ``lam`` (BROJA).
    """
    ok, scale, corr, factor = screened
    groups: list[tuple[np.ndarray, Any, tuple[int, int, int], Any, Any]] = []
    plain = np.flatnonzero(ok)
    if plain.size:
        # the screen ran on host numpy arrays: where those are of the input's library, reuse
        # its reordered correlations and factors (else rescale on the input's device)
        if get_namespace(corr) is xp:
            every = plain.size == len(ok)
            groups.append((plain, corr if every else corr[plain], dims, None,
                           factor if every else factor[plain]))
        else:
            s = xp.asarray(scale[plain], like=cov64)
            sub = cov64 if plain.size == len(ok) else cov64[xp.indices(plain, cov64)]
            scaled = reorder(xp, sub * s[:, :, None] * s[:, None, :], dims)
            groups.append((plain, scaled, dims, None, None))
    for b, p in preps.items():
        reordered = reorder(xp, apply_prepared(xp, cov64[b], p), p.dims)
        groups.append((np.array([b]), reordered[None], p.dims, p.z_map, None))
    keys = ("i_x", "i_y", "i_xy", "uni_x", "uni_y")
    parts: dict[str, list[Any]] = {k: [] for k in keys}
    per_item: dict[str, list[Any]] = {k: [None] * len(ok) for k in ("p_x", "p_y", "c_mm", "lam")}
    for idx, cov, gdims, z_map, fac in groups:
        post = posteriors(xp, cov, gdims, z_map, fac)
        group, lm = _measure_atoms(xp, post, measure)
        lm = [None] * len(idx) if lm is None else xp.to_numpy(lm)
        for k in keys:
            parts[k].append(group[k])
        host = {k: xp.to_numpy(post[k]) for k in ("p_x", "p_y", "c_mm")}
        host["lam"] = lm
        for j, b in enumerate(idx):
            for k in per_item:
                per_item[k][b] = host[k][j]
    order = np.concatenate([g[0] for g in groups])
    inverse = xp.indices(np.argsort(order), cov64)
    out = _complete(xp, {k: xp.concatenate(v)[inverse] for k, v in parts.items()})
    out.update(per_item)
    return out


def gaussian_atoms_unvalidated(xp: Any, cov64: Any, dims: tuple[int, int, int],
                               measure: str) -> dict[str, Any]:
    """Atoms in nats of a batch ``cov64 (B, d, d)`` (float64, namespace ``xp``) trusted to be
    symmetric positive definite: the computation of the validated fast path (rescale to
    correlations, reorder, :func:`~pidkit.gaussian._channels.posteriors`) with nothing read on
    the host. Returns ``(B,)`` arrays ``red``, ``uni_x``, ``uni_y``, ``syn``, ``i_x``, ``i_y``,
    ``i_xy`` and ``lam`` (``(B, d_m)`` eigenvalues for BROJA, ``None`` for MMI)."""
    scale = 1 / xp.diagonal(cov64) ** 0.5
    scaled = reorder(xp, cov64 * scale[:, :, None] * scale[:, None, :], dims)
    out, lam = _measure_atoms(xp, posteriors(xp, scaled, dims), measure)
    out = _complete(xp, out)
    out["lam"] = lam
    return out


def gaussian_pid(cov: Any, dims: Any, measure: str = "broja", base: float = 2, *,
                 certify: bool | None = None, validate: bool = True) -> PIDResult:
    r"""Exact partial information decomposition of a jointly Gaussian target and two sources.

    For :math:`(M, X, Y) \sim \mathcal N(0, \Sigma)` (blocks ordered target, source 1, source 2;
    the result names them as :func:`pidkit.pid` does: target ``"Y"``, sources ``"X0"``,
    ``"X1"``) the atoms split :math:`I(M; X, Y) = \mathrm{Red} + \mathrm{Uni}_X + \mathrm{Uni}_Y +
    \mathrm{Syn}` with :math:`\mathrm{Red} + \mathrm{Uni}_X = I(M;X)` and
    :math:`\mathrm{Red} + \mathrm{Uni}_Y = I(M;Y)`. Gaussian mutual information is
    :math:`I(M; X) = \tfrac12 \log\det\Sigma_{MM} - \tfrac12\log\det\Sigma_{M|X}`.

    ``measure="broja"`` (Bertschinger et al. 2014): exact, in closed form
    (:mod:`pidkit.gaussian.broja`),

    .. math::

        \mathrm{Uni}(M{:}X\setminus Y) = \tfrac12\sum_i \log^+\lambda_i\big(\Sigma_{M|X}^{-1}
        \Sigma_{M|Y}\big),\qquad
        \mathrm{Uni}(M{:}Y\setminus X) = \tfrac12\sum_i \log^+\lambda_i\big(\Sigma_{M|Y}^{-1}
        \Sigma_{M|X}\big).

    ``measure="mmi"``: :math:`\mathrm{Red} = \min(I(M;X), I(M;Y))` (Barrett 2015); equal to
    BROJA for a scalar target.

    Parameters
    ----------
    cov : array_like or torch.Tensor, shape ``(d, d)`` or ``(..., d, d)``
        Covariance of ``(M, X, Y)``, ``d = d_m + d_x + d_y``; leading axes are a batch. A torch
        tensor (CPU or GPU, float32 or float64) gives torch results on the same device, with
        autograd: every step is differentiable (Cholesky, triangular solves, a symmetric
        eigenvalue problem), computed in float64 and cast back to the input dtype.
    dims : tuple of int
        ``(d_m, d_x, d_y)``: the sizes of the target and source blocks.
    measure : {"broja", "mmi"}
    base : float, default 2
        Logarithm base of the results (2: bits, ``math.e``: nats).
    certify : bool, optional
        For BROJA, attach a :class:`~pidkit.result.Certificate` bracketing
        :math:`\mathrm{Uni}(M{:}X\setminus Y)` (quantity ``"unique[0]"``, as for a discrete
        BROJA result): the closed form is a relaxation bound, and the
        explicit optimal coupling is evaluated independently; the gap is the rounding error.
        Costs :math:`O(d_m^3)` per item on the CPU; pass ``False`` inside training loops.
        Default: ``validate``. It needs the host, so it cannot be combined with
        ``validate=False``.
    validate : bool, default True
        Check the covariance on the host (finite, symmetric, positive semi-definite) and reduce
        singular or near-singular input exactly (see Raises and Warns). ``validate=False`` is
        for trusted input that is symmetric positive definite by construction, such as a
        ridge-regularised batch correlation matrix inside a training step: it runs the same
        computation as the validated path on well-conditioned input (rescale to correlations,
        Cholesky factors, triangular solves; for BROJA a symmetric eigenvalue problem) on the
        input's device and reads nothing back to the host, so a GPU never waits for it. With
        torch, ``details["mi_sources"]`` and ``details["eigenvalues"]`` are then tensors.
        ``details["reductions"]`` is empty. A covariance that is not numerically positive
        definite gives NaN atoms instead of an error, with numpy as with torch, and NaN in the
        same places of every output (no ``LinAlgError``, no ``RuntimeWarning``; each item of
        a batch on its own). One synchronisation remains on CUDA for BROJA:
        ``torch.linalg.eigvalsh`` checks its solver status on the host (torch has no unchecked
        variant); MMI has none.

    Returns
    -------
    PIDResult
        Atoms ``{0}{1}`` (redundancy), ``{0}``, ``{1}`` (unique of source 1, 2), ``{0:1}``
        (synergy); floats, numpy arrays of the batch shape, or torch tensors. ``source_names``
        is ``("X0", "X1")`` and ``target_name`` ``"Y"``, as for a pmf. ``details`` holds
        ``mi_sources`` (:math:`I(M;X)`, :math:`I(M;Y)`), ``eigenvalues`` (the
        :math:`\lambda_i`, BROJA), ``reductions`` (what input handling did) and ``ranks``:
        the numbers of linearly independent variables the atoms were computed on, after
        constant variables and exact linear dependencies were dropped, as
        ``(d_m, d_x, d_y, d_xy)`` (target, source 1, source 2, both sources together; the
        block sizes when nothing was reduced, and always with ``validate=False``), a tuple of
        ints, or an int array of shape ``batch_shape + (4,)`` for a batch.

    Raises
    ------
    PIDValueError, PIDTypeError
        Non-symmetric, non-PSD, non-finite input (checked when ``validate=True``), wrong
        ``dims``, or infinite information (a linear function of the target observed without
        noise). Exactly singular blocks (a variable that is a linear function of others in its
        block, or of the other source) are reduced exactly.

    Warns
    -----
    RegularizationWarning
        Near-singular input (a canonical correlation rho with the target, 1 - rho**2 < 1e-10):
        a ridge on the target block is added and its size reported.

    Notes
    -----
    Units do not matter. The decomposition is invariant under any rescaling of each variable,
    :math:`\Sigma \mapsto D\Sigma D` with :math:`D` diagonal and positive (indeed under any
    invertible linear map within a block), and so is every decision taken here: each variable is
    standardised by its own standard deviation before any test, so every tolerance is relative
    to that variable or applies to the correlation matrix:

    * constant variable: variance exactly 0 (or below the smallest normal float64, ~2.2e-308,
      which has lost its significant digits); its covariances must then be 0 (at most
      :math:`\sqrt{\Sigma_{ii}\Sigma_{jj}}`), and it is dropped. No variance is ever
      compared with another variable's;
    * symmetry: :math:`|\Sigma_{ij} - \Sigma_{ji}| \le 10^{-8}\sqrt{\Sigma_{ii}\Sigma_{jj}}`
      (or 100 machine epsilons of the input's dtype, if larger);
    * not positive semi-definite: a correlation beyond :math:`[-1, 1]`, or an eigenvalue of
      the correlation matrix below :math:`-10^{-8}` times its largest;
    * exactly singular direction (reduced exactly): an eigenvalue of a block's correlation
      matrix at most :math:`10^{-12}` times its largest; infinite information: a canonical
      correlation :math:`\rho` with :math:`1 - \rho^2 \le 10^{-12}`;
    * near-singular (ridge, warning): :math:`1 - \rho^2 < 10^{-10}`; the fast path needs a
      reciprocal condition estimate of the correlation matrix above :math:`10^{-10}`.

    Results for rescaled inputs agree to rounding: the correlation matrices agree to a few
    units in the last place, so the atoms agree to about
    :math:`d^2\varepsilon/\lambda_{\min}^2` (:math:`\lambda_{\min}` the smallest eigenvalue of
    the correlation matrix). ``validate=False`` standardises the same way.

    Examples
    --------
    >>> import numpy as np, pidkit
    >>> # M = (M1, M2) ~ N(0, I), X = M1 + N1, Y = M2 + N2 with unit independent noise
    >>> cov = np.block([[np.eye(2), np.eye(2)], [np.eye(2), 2 * np.eye(2)]])
    >>> r = pidkit.gaussian_pid(cov, dims=(2, 1, 1))
    >>> [round(float(v), 12) + 0.0 for v in (r.redundancy, *r.unique, r.synergy)]
    [0.0, 0.5, 0.5, 0.0]

    As a differentiable training regulariser (features ``a``, ``b`` and target ``t`` of a
    mini-batch, each ``(n, d_*)``)::

        z = torch.cat([t, a, b], dim=1)
        z = (z - z.mean(0)) / z.std(0)             # standardise: a unit-free ridge
        cov = z.T @ z / (len(z) - 1) + 1e-4 * torch.eye(z.shape[1])   # ridge: keep it PD
        r = pidkit.gaussian_pid(cov, dims=(t.shape[1], a.shape[1], b.shape[1]),
                                measure="broja", base=math.e, certify=False)
        loss = task_loss - beta * r.redundancy       # r.redundancy is a 0-d tensor

    The matrix above is positive definite by construction (the ridge), so the checks can be
    skipped: ``validate=False`` gives the same values with no host round trip. A ridge added to
    an unstandardised covariance would make the value depend on the features' units
    (:mod:`pidkit_distill.losses.pid` standardises, and guards constant columns).

    >>> import torch
    >>> c = torch.tensor(cov, requires_grad=True)
    >>> fast = pidkit.gaussian_pid(c, (2, 1, 1), validate=False)
    >>> checked = pidkit.gaussian_pid(c, (2, 1, 1), certify=False)
    >>> bool(torch.allclose(fast.unique[0], checked.unique[0], rtol=0, atol=1e-12))
    True

    References
    ----------
    Bertschinger, Rauh, Olbrich, Jost, Ay, Entropy 16, 2161 (2014). Barrett, Phys. Rev. E 91,
    052802 (2015). Venkatesh et al., NeurIPS 2023. Zhao et al., NeurIPS 2025 (Gaussian
    couplings are optimal for BROJA).
    """
    measure = check_choice(measure, "measure", MEASURES)
    base = check_base(base)
    validate = check_flag(validate, "validate", "Pass validate=False only for covariances "
                          "that are positive definite by construction")
    certify = check_flag(validate if certify is None else certify, "certify",
                         "Pass certify=False to skip it")
    if certify and not validate:
        raise fail("certify", "needs the covariance on the host, which validate=False avoids",
                   "Pass certify=False (or leave it out) with validate=False", certify)
    factor = 1.0 / math.log(base)
    method = ("generalized eigenvalues of (Cov(Y|X0), Cov(Y|X1)), closed form"
              if measure == "broja" else "min(I(Y;X0), I(Y;X1)), closed form")
    if not validate:
        return _unvalidated(cov, dims, measure, base, factor, method)
    xp, cov64, batch_shape, dims = check_cov(cov, dims)
    host = xp.to_numpy(cov64)
    batch = host.shape[0]
    screened = screen(host, dims)
    preps = {int(b): prepare(host[b], dims, item=str(b) if batch > 1 else "")
             for b in np.flatnonzero(~screened[0])}
    out = gaussian_atoms_nats(xp, cov64, dims, measure, screened, preps)
    finish = _finisher(xp, cov, batch_shape, factor)
    atoms = _atoms(out, finish)
    cert = None
    if measure == "broja" and certify:
        i_y = xp.to_numpy(out["i_y"])
        uni = xp.to_numpy(out["uni_x"])
        lo, hi = np.empty(batch), np.empty(batch)
        by_size: dict[int, list[int]] = {}
        for b in range(batch):
            by_size.setdefault(out["p_x"][b].shape[-1], []).append(b)
        for members in by_size.values():
            stack = lambda k, m=members: np.stack([out[k][b] for b in m])  # noqa: E731
            lo[members], hi[members] = certificate(stack("p_x"), stack("p_y"), stack("c_mm"),
                                                   i_y[members], uni[members])
        lo, hi = (lo * factor).reshape(batch_shape), (hi * factor).reshape(batch_shape)
        cert = Certificate(CERTIFIED_UNIQUE, float(lo) if lo.ndim == 0 else lo,
                           float(hi) if hi.ndim == 0 else hi)
    notes = [n for p in preps.values() for n in p.notes]
    ridge = np.zeros(batch)
    for b, p in preps.items():
        ridge[b] = p.ridge
    ridge = ridge.reshape(batch_shape)
    ranks = np.tile([dims[0], dims[1], dims[2], dims[1] + dims[2]], (batch, 1))
    for b, p in preps.items():
        joint = p.dims[1] + p.dims[2] if p.z_map is None else p.z_map.shape[0]
        ranks[b] = (*p.dims, joint)
    info = SolverInfo("closed_form", True, None, cert, None,
                      {"method": method, "ridge": ridge.tolist() if ridge.ndim else float(ridge)})
    i_x = xp.to_numpy(out["i_x"]) * factor
    i_y = xp.to_numpy(out["i_y"]) * factor
    details: dict[str, Any] = {
        "dims": dims,
        "mi_sources": (i_x.reshape(batch_shape), i_y.reshape(batch_shape)) if batch_shape
        else (float(i_x[0]), float(i_y[0])),
        "reductions": notes,
        "ranks": (ranks.reshape(batch_shape + (4,)) if batch_shape
                  else tuple(int(v) for v in ranks[0])),
    }
    if measure == "broja":
        details["eigenvalues"] = out["lam"] if batch_shape else out["lam"][0]
    return PIDResult(atoms=atoms, measure=measure, base=base,
                     mutual_information=finish(out["i_xy"]), solver=info,
                     source_names=_SOURCE_NAMES, target_name=TARGET_NAME,
                     details=details)


def _nominal_ranks(dims: tuple[int, int, int], batch_shape: tuple[int, ...]) -> Any:
    """``details["ranks"]`` of input taken as it is (no reduction): the block sizes."""
    ranks = (dims[0], dims[1], dims[2], dims[1] + dims[2])
    return np.broadcast_to(np.array(ranks), batch_shape + (4,)).copy() if batch_shape else ranks


def _finisher(xp: Any, cov: Any, batch_shape: tuple[int, ...], factor: float) -> Any:
    """Turn a ``(B,)`` array of nats into the result's unit, dtype and batch shape (torch: a
    tensor of the input's dtype; numpy: a float or an array)."""
    def finish(v: Any) -> Any:
        return xp.to_result(v * factor, cov, batch_shape)
    return finish


def _atoms(out: dict[str, Any], finish: Any) -> dict[Any, Any]:
    lat = lattice(2)
    return {lat.bottom: finish(out["red"]), ((0,),): finish(out["uni_x"]),
            ((1,),): finish(out["uni_y"]), lat.top: finish(out["syn"])}


def _unvalidated(cov: Any, dims: Any, measure: str, base: float, factor: float,
                 method: str) -> PIDResult:
    """:func:`gaussian_pid` with ``validate=False``: shape checks only, then
    :func:`gaussian_atoms_unvalidated` on the input's device."""
    xp, cov64, batch_shape, dims, _ = as_batch(cov, dims)
    cov64 = (cov64 + xp.swapaxes(cov64, -1, -2)) / 2
    # an item that is not numerically positive definite gives NaN (the backends' cholesky
    # and eigvalsh), where numpy also warns for the square root or reciprocal of a variance
    # that is not positive: the NaN is the documented result (no effect on torch)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out = gaussian_atoms_unvalidated(xp, cov64, dims, measure)
    finish = _finisher(xp, cov, batch_shape, factor)
    details: dict[str, Any] = {"dims": dims, "mi_sources": (finish(out["i_x"]),
                                                            finish(out["i_y"])),
                               "reductions": [],
                               "ranks": _nominal_ranks(dims, batch_shape)}
    if measure == "broja":
        details["eigenvalues"] = xp.reshape(out["lam"], batch_shape + (dims[0],))
    info = SolverInfo("closed_form", True, None, None, None, {"method": method, "ridge": 0.0})
    return PIDResult(atoms=_atoms(out, finish), measure=measure, base=base,
                     mutual_information=finish(out["i_xy"]), solver=info,
                     source_names=_SOURCE_NAMES, target_name=TARGET_NAME,
                     details=details)
