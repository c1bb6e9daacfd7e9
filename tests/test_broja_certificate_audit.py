"""Every BROJA certificate re-derived independently from the solver's returned points.

``benchmarks/broja_certificate_audit.py`` (module docstring: what is evaluated and why it is
rigorous) recomputes, from ``r.solver.state`` alone and sharing no code with the solver, the
bracket that the returned dual point (exact value, 50-digit feasibility) and primal point
(50-digit value, marginal residuals paid by a proven allowance) imply, and checks that the
reported certificate contains it. Here a fast version over a few dozen pmfs, including the
three Dirichlet pmfs whose certificates were wrong before ``_bounds.rounding_margin``
(a blown-up dual iterate cancelled in floating point), and controls showing that the audit
does flag wrong certificates and is immune to that cancellation.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import pidkit

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))
import broja_certificate_audit as audit  # noqa: E402  (the benchmark's auditor, not installed)

#: The soundness bug's pmfs: (alpha, seed) of ``audit.dirichlet_pmf`` (alphabets 2..6).
HISTORIC = [(0.01, 142), (0.01, 172), (0.001, 194)]


def historic_pmf(alpha: float, seed: int) -> np.ndarray:
    """Written out as in the bug report (``audit.dirichlet_pmf(seed, alpha)`` is the same)."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(2, 7, size=3))
    return rng.dirichlet(np.full(int(np.prod(shape)), alpha)).reshape(shape)


def assert_supported(p, r, batch=False, feasible=True):
    for item, a in enumerate(audit.audit_result(p, r, batch=batch)):
        assert a["ok"], (item, a["problems"], a["slack_lower"], a["slack_upper"])
        if feasible:                                   # the state's dual point is feasible
            assert a["dual_violation"] <= 1e-12
        assert a["q_min"] >= 0.0 and a["off_support"] == 0.0
        assert a["crossing"] <= audit.TOL_BITS         # weak duality holds in the audit


def solve(p, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                # early stops warn; still certified
        return pidkit.pid(p, measure="broja", **kw)


@pytest.mark.parametrize(("alpha", "seed"), HISTORIC)
def test_historic_blown_up_dual_pmfs_are_supported(alpha, seed):
    p = historic_pmf(alpha, seed)
    np.testing.assert_array_equal(p, audit.dirichlet_pmf(seed, alpha))
    r = solve(p)
    assert r.solver.status == "optimal"
    assert_supported(p, r)


SINGLES = ([audit.dirichlet_pmf(s, a) for a in (0.001, 0.01, 0.05, 0.3, 1.0) for s in (0, 1, 2)]
           + [audit.dirichlet_pmf(1000 + s, 0.01, 8) for s in range(2)]
           + [audit.sparse_pmf(s) for s in range(3)] + [audit.xor_pmf(s) for s in range(3)]
           + [audit.plugin_pmf(s) for s in range(3)])


@pytest.mark.parametrize("index", range(len(SINGLES)))
def test_single_pmf_certificates_are_supported(index):
    p = SINGLES[index]
    assert_supported(p, solve(p))


@pytest.mark.parametrize("max_iter", [1, 3])
def test_early_stopped_certificates_are_supported(max_iter):
    for seed in range(3):
        p = audit.dirichlet_pmf(seed, 0.01, 8)
        assert_supported(p, solve(p, max_iter=max_iter))


def test_batched_numpy_and_torch_certificates_are_supported():
    pmfs = [audit.dirichlet_pmf(2000 + s, 0.01, 4) for s in range(6)] + [
        audit.xor_pmf(s, kmax=4) for s in range(4)]
    batch = audit._stack(pmfs)
    for p in (batch, torch.tensor(batch)):
        assert_supported(p, pidkit.broja(p, batch=True), batch=True)


def test_float32_certificates_are_supported_on_the_given_entries():
    """A float32 pmf is normalised after its cast to float64 and the bounds are rounded
    outward to float32 (normalised in float32 and rounded to nearest, 99 of 100 such
    certificates missed the exact value by up to 3.3 float32 units in the last place)."""
    batch = torch.tensor(audit.dirichlet_shaped(11, 0.3, (4, 4, 4), 12), dtype=torch.float32)
    r = pidkit.broja(batch, batch=True)
    assert r.solver.certificate.lower.dtype == torch.float32
    assert_supported(batch, r, batch=True)


def test_warm_started_certificates_are_supported():
    p0 = audit.dirichlet_shaped(3000, 1.0, (10, 10, 10))
    pb = audit.dirichlet_shaped(4000, 1.0, (10, 10, 10))
    r0 = pidkit.broja(p0)
    rt0 = pidkit.broja(torch.tensor(p0), tol=1e-4, max_iter=20)
    for e in (1e-3, 1.0):                              # a near step; an unrelated pmf
        p1 = (1 - e) * p0 + e * pb
        assert_supported(p1, pidkit.broja(p1, warm_start=r0))
        t1 = torch.tensor(p1)
        assert_supported(t1, pidkit.broja(t1, tol=1e-4, max_iter=20,
                                          warm_start=rt0.solver.state))


@pytest.mark.parametrize("big", [1e131, 1e300])
def test_certificates_from_arbitrary_warm_start_arrays_are_supported(big):
    """docs: "the certificate does not depend on the start"; blown-up warm points included."""
    from pidkit.discrete.broja import WarmStart

    p = audit.dirichlet_shaped(7, 0.05, (4, 4, 4), 6)
    state = audit.garbage_state(7, big, (4, 4, 4), 6)
    assert_supported(p, pidkit.broja(p, batch=True, warm_start=WarmStart(*state)), batch=True)
    t = torch.tensor(p)
    warm = WarmStart(*(torch.tensor(a) for a in state))
    # the fixed-iteration mode never leaves such a start (gaps stay at 0.1-0.3 bits, the
    # bounds are the admissible interval) and its state keeps the blown-up dual point, shifted
    # in float64 and so infeasible by about an ulp of 1e131 (h up to 2e114): the certificate is
    # still right, the state is not the documented feasible point
    r = pidkit.broja(t, batch=True, iterations=3, warm_start=warm)
    assert_supported(t, r, batch=True, feasible=False)


def test_fixed_iteration_certificates_are_supported():
    a = torch.tensor(audit.dirichlet_shaped(6001, 0.01, (4, 4, 4), 8))
    for it in (1, 4):
        r = pidkit.broja(a, batch=True, iterations=it)
        assert_supported(a, r, batch=True)
        b = 0.99 * a + 0.01 / 64
        assert_supported(b, pidkit.broja(b, batch=True, iterations=it, warm_start=r),
                         batch=True)


# --- the audit is not vacuous -----------------------------------------------------------------
def _state(r):
    s = r.solver.state
    return s.lam[0], s.mu[0], s.q[0]


def test_audit_flags_bounds_beyond_what_the_state_proves():
    p = audit.dirichlet_pmf(0, 1.0)
    r = solve(p)
    lam, mu, q = _state(r)
    cert = r.solver.certificate
    ok = audit.audit_point(p, lam, mu, q, cert.lower, cert.upper)
    assert ok["ok"]
    high = audit.audit_point(p, lam, mu, q, cert.upper + 1e-10, cert.upper + 2e-10)
    low = audit.audit_point(p, lam, mu, q, cert.lower - 2e-10, cert.lower - 1e-10)
    assert not high["supported"] and high["slack_lower"] < -1e-11
    assert not low["supported"] and low["slack_upper"] < -1e-11
    # an infeasible dual point is paid for: raising lam by 1e-6 raises D by about 1e-6 but
    # the allowance takes it back
    bumped = audit.audit_point(p, lam + 1e-6, mu, q, cert.lower, cert.upper)
    assert bumped["dual_violation"] == pytest.approx(1e-6, rel=1e-3)
    assert bumped["proven_lower"] <= ok["proven_lower"] + 1e-15
    # q moved off the marginals: the allowance (or the repaired point) still bounds f*
    moved = audit.audit_point(p, lam, mu, q * (1 + 1e-7), cert.lower, cert.upper)
    assert moved["marg_abs"] > 1e-9 and moved["primal_allowance"] > 1e-8
    assert moved["primal_bits"] >= moved["proven_upper"] >= ok["proven_lower"]


@pytest.mark.parametrize("big", [1e20, 1e131])
def test_a_blown_up_dual_point_is_evaluated_exactly(big):
    """The bug's failure mode: ``lam[0] + big``, ``mu[0] - big`` (the gauge direction, which
    leaves the dual value unchanged before rounding). Evaluated in float64 its value carries
    errors of order ``big * 1e-16``; the audit's is exact: finite, and with the allowance for
    the violation that the rounding of the entries causes, never above the optimum."""
    p = audit.dirichlet_pmf(3, 0.3)
    r = solve(p)
    lam, mu, q = _state(r)
    base = audit.audit_point(p, lam, mu, q, 0.0, 1.0)
    lam2, mu2 = lam.copy(), mu.copy()
    lam2[0] += big
    mu2[0] -= big
    blown = audit.audit_point(p, lam2, mu2, q, 0.0, 1.0)
    # sum_t P(0,t) = sum_s P(0,s) exactly, so the big parts cancel exactly in D
    assert abs(blown["dual_bits"]) < 1e6
    assert blown["proven_lower"] <= base["proven_upper"] + 1e-15
    # a certificate claiming the float64 value of that point would be caught if above f*
    p_yt, p_ys = p.sum(axis=2), p.sum(axis=1)
    naive = float((p_yt * lam2).sum() + (p_ys * mu2).sum())
    claimed = audit.audit_point(p, lam2, mu2, q, base["proven_upper"] + 1e-9, 1.0)
    assert not claimed["supported"]
    assert np.isfinite(naive)
