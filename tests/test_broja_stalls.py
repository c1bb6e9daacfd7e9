"""Pmfs on which the interior-point iteration stalls (issue 15, goal 1): noisy-XOR pmfs with cells
of tiny mass and Dirichlet pmfs of small concentration. Without the crossover
(:mod:`pidkit.discrete.broja._polish`) each of them stops at ``max_iter`` with a gap above the
default tolerance; with it each must finish "optimal" with a certified gap <= 1e-9 bits that
brackets an independent reference (cvxpy + Clarabel), on numpy and on torch. The crossover's
bounds must bracket the reference even when it starts from a poor iterate, and a bootstrap
``pid_from_samples`` call on a sparse table (whose replicates warned before) must not warn.

The second part holds the pmfs that the semismooth Newton crossover alone left stalled (masses
down to 1e-323, where Clarabel reports its own answers "inaccurate"): with the primal barrier
crossover each is certified, and its certificate is re-evaluated in 50 digits from the
solver's dual and primal points (weak duality, nothing shared with the solver).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import mpmath
import numpy as np
import pytest
import torch
from _broja_reference import reference_unique

import pidkit
from pidkit._backend import get_namespace
from pidkit.discrete.broja import _bounds, _ipm, _polish, _small
from pidkit.errors import ConvergenceWarning

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))
from broja_noisy_xor import noisy_xor  # noqa: E402  (the benchmark's generator, not installed)

#: Clarabel reports these reference solutions "inaccurate": they are within about 1.5e-8
#: bits of our certified brackets, so the reference is allowed this much (bits).
REFERENCE_TOL = 2e-8
#: Seeds of :func:`stalling_pmf` (each stalled at max_iter = 80 without the crossover).
XOR_SEEDS = (2, 3, 10, 12, 15, 20)
DIRICHLET_SEEDS = (5, 6, 11, 12)


def stalling_pmf(kind: str, seed: int) -> np.ndarray:
    """A noisy-XOR pmf (eps in 1e-12..1e-6) or a Dirichlet(0.05 or 0.1) pmf, alphabets 2..6."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(2, 7, size=3))
    if kind == "xor":
        return noisy_xor(rng, shape, float(rng.choice([1e-12, 1e-10, 1e-8, 1e-6])))
    alpha = float(rng.choice([0.05, 0.1]))
    return rng.dirichlet(np.full(int(np.prod(shape)), alpha)).reshape(shape)


CASES = [("xor", s) for s in XOR_SEEDS] + [("dirichlet", s) for s in DIRICHLET_SEEDS]


@pytest.fixture
def no_crossover(monkeypatch):
    """The general solver without its crossover (the lean single-pmf driver certifies most
    of these pmfs without one)."""
    monkeypatch.setattr(_ipm, "POLISH_EVERY", 10 ** 9)
    monkeypatch.setattr(_small, "LEAN_ROWS", 0)
    monkeypatch.setattr(_ipm, "LEAN_RULES", False)  # the rules under which they stalled
    monkeypatch.setattr(_ipm, "RESET_FROM", 10 ** 9)  # (which rescues some of them since)


def reference(p: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # Clarabel: "may be inaccurate"
        return reference_unique(p)


def certified_without_warning(p: np.ndarray):
    """``pidkit.pid(p, measure="broja")`` with ConvergenceWarnings as errors, checked to be
    optimal with a gap of at most 1e-9 bits around its unique information."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        r = pidkit.pid(p, measure="broja")
    cert = r.solver.certificate
    assert r.solver.status == "optimal" and r.solver.converged
    assert 0.0 <= cert.gap <= 1e-9
    assert cert.lower <= r.unique[0] <= cert.upper
    return r


@pytest.mark.parametrize(("kind", "seed"), CASES)
def test_previously_stalling_pmf_is_certified_and_matches_reference(kind, seed):
    p = stalling_pmf(kind, seed)
    r = certified_without_warning(p)
    cert = r.solver.certificate
    ref = reference(p)
    assert cert.lower - REFERENCE_TOL <= ref <= cert.upper + REFERENCE_TOL
    assert min(r.atoms.values()) >= 0.0


@pytest.mark.usefixtures("no_crossover")
@pytest.mark.parametrize(("kind", "seed"), CASES[:3] + [("dirichlet", 6)])
def test_without_the_crossover_these_pmfs_stall(kind, seed):
    with pytest.warns(ConvergenceWarning):
        r = pidkit.pid(stalling_pmf(kind, seed), measure="broja", max_iter=80)
    assert r.solver.status == "max_iter" and r.solver.certificate.gap > 1e-9


@pytest.mark.usefixtures("no_crossover")
def test_the_local_repair_certifies_this_one_without_the_crossover(monkeypatch):
    """Dirichlet seed 11 stalled without the crossover until the dual bound got its local
    repair (``_bounds.local_repair``): the interior-point iterates themselves now certify."""
    p = stalling_pmf("dirichlet", 11)
    r = certified_without_warning(p)
    assert r.solver.iterations < 80
    monkeypatch.setattr(_bounds, "local_repair", lambda lam, mu, *rest: (lam, mu))
    with pytest.warns(ConvergenceWarning):
        r = pidkit.pid(p, measure="broja", max_iter=80)
    assert r.solver.status == "max_iter" and r.solver.certificate.gap > 1e-9


@pytest.mark.usefixtures("no_crossover")
def test_the_rescaled_bound_certifies_this_one_without_the_crossover(monkeypatch):
    """Dirichlet seed 12 stalled without the crossover until the primal bound got its
    rescaling (``_bounds.rescale``, tests/test_broja_rescale.py)."""
    p = stalling_pmf("dirichlet", 12)
    r = certified_without_warning(p)
    assert r.solver.iterations < 80
    monkeypatch.setattr(_bounds, "rescale", lambda q, *rest: q)
    with pytest.warns(ConvergenceWarning):
        r = pidkit.pid(p, measure="broja", max_iter=80)
    assert r.solver.status == "max_iter" and r.solver.certificate.gap > 1e-9


def test_batched_numpy_and_torch_certify_every_stalling_pmf():
    """The batched driver (numpy and torch) runs the same crossover on the items left open."""
    pmfs = [stalling_pmf(kind, seed) for kind, seed in CASES[:3]]
    shape = tuple(max(p.shape[i] for p in pmfs) for i in range(3))
    batch = np.zeros((len(pmfs), *shape))
    for i, p in enumerate(pmfs):                     # pad with outcomes of zero probability
        batch[i, :p.shape[0], :p.shape[1], :p.shape[2]] = p
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        r = pidkit.broja(batch, batch=True)
        r_t = pidkit.broja(torch.tensor(batch), batch=True)
    for res in (r, r_t):
        assert res.solver.status == "optimal"
        gap = np.asarray(res.solver.certificate.upper) - np.asarray(res.solver.certificate.lower)
        assert np.all(gap <= 1e-9)
    np.testing.assert_allclose(r_t.unique[0].numpy(), r.unique[0], atol=2e-9)
    singles = [pidkit.pid(p, measure="broja").unique[0] for p in pmfs]
    np.testing.assert_allclose(r.unique[0], singles, atol=2e-9)


@pytest.mark.parametrize(("kind", "seed"), CASES[::3])
def test_crossover_from_poor_iterates_still_brackets_the_reference(monkeypatch, kind, seed):
    """The crossover after the first interior-point step, far from the optimum: whatever it
    returns is certified by the general bounds, so the bracket must hold."""
    monkeypatch.setattr(_ipm, "POLISH_EVERY", 1)
    p = stalling_pmf(kind, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        r = pidkit.broja(p[None], batch=True, max_iter=1)
    lower, upper = float(r.solver.certificate.lower[0]), float(r.solver.certificate.upper[0])
    ref = reference(p)
    assert lower - REFERENCE_TOL <= ref <= upper + REFERENCE_TOL


def test_bootstrap_on_a_sparse_table_does_not_warn():
    """120 samples of a Dirichlet(0.3) pmf over 6 x 6 x 6 cells: before the crossover and the
    replicate tolerance, one of its replicate batches ended at max_iter and warned."""
    rng = np.random.default_rng(1)
    cells = rng.choice(216, size=120, p=rng.dirichlet(np.full(216, 0.3)))
    y, t, s = np.unravel_index(cells, (6, 6, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        r = pidkit.pid_from_samples(y, t, s, n_boot=100, n_perm=50, seed=1)
    assert r.solver.status == "optimal"
    assert all(np.isfinite(bounds).all() for bounds in r.intervals.values())


# -- pmfs the semismooth crossover alone left stalled: the primal barrier crossover ----------

#: The smallest pmfs found (alphabets 2..6, seeds 0..11 per shape) on which the solver with the
#: semismooth Newton crossover only (before the barrier method of ``_polish.barrier``) stopped
#: at max_iter = 200 with gaps of 2e-9 to 2e-6 bits: Dirichlet pmfs of small concentration,
#: whose optima hold masses from 1e-323 to 1, and noisy-XOR pmfs. ``(alpha, shape, seed)``;
#: the sweep ``benchmarks/broja_stalls.py`` (seed 0) had 4 such Dirichlet pmfs and 1 noisy-XOR.
DIRICHLET_TINY = [(0.01, (3, 2, 2), 6), (0.01, (3, 2, 3), 6), (0.01, (2, 2, 5), 3),
                  (0.01, (5, 2, 2), 1), (0.001, (4, 3, 4), 6), (0.001, (4, 6, 2), 0),
                  (0.001, (6, 4, 2), 10), (0.001, (5, 5, 2), 7)]
#: ``(shape, seed)`` of noisy-XOR pmfs (:func:`xor_pmf`) in the same situation.
XOR_TINY = [((3, 2, 2), 3), ((3, 2, 2), 10), ((4, 2, 2), 3), ((4, 2, 2), 10)]
XOR_EPS = (1e-12, 1e-10, 1e-8, 1e-6, 1e-5, 1e-4, 1e-3)
#: Agreement asked of the cvxpy + Clarabel reference where Clarabel reports its solution
#: "inaccurate" (cells of 1e-200 and below are beyond its tolerances; bits): a sanity check
#: only, the exact check of the certificate (:func:`exact_bracket`) is the real one.
INACCURATE_REFERENCE_TOL = 1e-6
#: Rounding allowed between the certificate and its 50-digit re-evaluation (bits).
EXACT_SLACK = 1e-12


def dirichlet_pmf(alpha: float, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(int(np.prod(shape)), alpha)).reshape(shape)


def xor_pmf(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return noisy_xor(rng, shape, XOR_EPS[seed % len(XOR_EPS)])


TINY = ([pytest.param(dirichlet_pmf(*case), id=f"dirichlet{case}") for case in DIRICHLET_TINY]
        + [pytest.param(xor_pmf(*case), id=f"xor{case}") for case in XOR_TINY])


def exact_bracket(p: np.ndarray, lam: np.ndarray, mu: np.ndarray,
                  q: np.ndarray) -> tuple[float, float, float]:
    """The certificate recomputed in 50 significant digits (mpmath) from the solver's points,
    nothing shared with the solver: the dual point ``lam[y, t] + mu[y, s]`` shifted into exact
    feasibility (per ``t`` and then per ``s`` by the largest log-sum-exp over the ``y`` with
    ``P(y,t) P(y,s) > 0``), whose objective plus ``H(Y|S)`` is a lower bound on
    ``Uni(Y:T\\S)`` by weak duality, and ``H(Y|S) - H_Q(Y|T,S)`` at the primal point ``q``, an
    upper bound. Returns ``(lower, upper, largest marginal violation of q)``, bits."""
    ny, nt, ns = p.shape
    with mpmath.workdps(50):
        mpf = [[[mpmath.mpf(float(p[y, t, s])) for s in range(ns)] for t in range(nt)]
               for y in range(ny)]
        p_yt = [[mpmath.fsum(mpf[y][t]) for t in range(nt)] for y in range(ny)]
        p_ys = [[mpmath.fsum(mpf[y][t][s] for t in range(nt)) for s in range(ns)]
                for y in range(ny)]
        allowed = {(t, s): [y for y in range(ny) if p_yt[y][t] > 0 and p_ys[y][s] > 0]
                   for t in range(nt) for s in range(ns)}
        h = {ts: mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(lam[y, ts[0]]))
                                                   + mpmath.mpf(float(mu[y, ts[1]])))
                                        for y in ys))
             for ts, ys in allowed.items() if ys}
        c_t = [max([h[ts] for ts in h if ts[0] == t] + [mpmath.mpf(0)]) for t in range(nt)]
        d_s = [max([h[ts] - c_t[ts[0]] for ts in h if ts[1] == s] + [mpmath.mpf(0)])
               for s in range(ns)]
        dual = (mpmath.fsum(p_yt[y][t] * (mpmath.mpf(float(lam[y, t])) - c_t[t])
                            for y in range(ny) for t in range(nt) if p_yt[y][t] > 0)
                + mpmath.fsum(p_ys[y][s] * (mpmath.mpf(float(mu[y, s])) - d_s[s])
                              for y in range(ny) for s in range(ns) if p_ys[y][s] > 0))

        def entropy(xs):
            return -mpmath.fsum(x * mpmath.log(x) for x in xs if x > 0)

        p_s = [mpmath.fsum(p_ys[y][s] for y in range(ny)) for s in range(ns)]
        h_y_given_s = entropy([x for row in p_ys for x in row]) - entropy(p_s)
        qm = [[[mpmath.mpf(float(q[y, t, s])) for s in range(ns)] for t in range(nt)]
              for y in range(ny)]
        q_ts = [[mpmath.fsum(qm[y][t][s] for y in range(ny)) for s in range(ns)]
                for t in range(nt)]
        primal = mpmath.fsum(qm[y][t][s] * mpmath.log(qm[y][t][s] / q_ts[t][s])
                             for y in range(ny) for t in range(nt) for s in range(ns)
                             if qm[y][t][s] > 0)
        violation = max([abs(mpmath.fsum(qm[y][t]) - p_yt[y][t])
                         for y in range(ny) for t in range(nt)]
                        + [abs(mpmath.fsum(qm[y][t][s] for t in range(nt)) - p_ys[y][s])
                           for y in range(ny) for s in range(ns)])
        ln2 = mpmath.log(2)
        return (float((h_y_given_s + dual) / ln2), float((h_y_given_s + primal) / ln2),
                float(violation))


def reference_and_accuracy(p: np.ndarray) -> tuple[float, bool]:
    """The cvxpy + Clarabel reference (bits) and whether Clarabel called it accurate."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        ref = reference_unique(p)
    return ref, not any("inaccurate" in str(w.message) for w in caught)


@pytest.mark.parametrize("p", TINY)
def test_tiny_mass_pmf_is_certified_exactly(p):
    r = certified_without_warning(p)
    cert = r.solver.certificate
    state = r.solver.state
    lower, upper, violation = exact_bracket(p, state.lam[0], state.mu[0], state.q[0])
    assert violation <= 1e-15
    # the upper end is the primal value, unless clipped at Syn >= 0 or Red >= 0
    assert lower >= cert.lower - EXACT_SLACK
    assert upper <= cert.upper + EXACT_SLACK or min(r.atoms.values()) == 0.0
    assert upper - lower <= 1e-9 + 2 * EXACT_SLACK
    ref, accurate = reference_and_accuracy(p)
    slack = REFERENCE_TOL if accurate else INACCURATE_REFERENCE_TOL
    assert cert.lower - slack <= ref <= cert.upper + slack
    assert min(r.atoms.values()) >= 0.0


@pytest.mark.parametrize("p", [TINY[0], TINY[6], TINY[9]])
def test_without_the_barrier_crossover_these_pmfs_stall(monkeypatch, p):
    monkeypatch.setattr(_polish, "BARRIER_STEPS", 0)
    monkeypatch.setattr(_ipm, "LEAN_RULES", False)  # the general solver's rules when they stalled
    monkeypatch.setattr(_ipm, "RESET_FROM", 10 ** 9)
    with pytest.warns(ConvergenceWarning):
        r = pidkit.pid(p, measure="broja", max_iter=80)
    assert r.solver.status == "max_iter" and r.solver.certificate.gap > 1e-9


def test_batched_numpy_and_torch_certify_the_tiny_mass_pmfs():
    """The general driver (numpy and torch, one padded batch) runs the barrier crossover on
    every item, in chunks when the KKT matrices of the batch exceed ``KKT_MEMORY``."""
    pmfs = [dirichlet_pmf(*case) for case in DIRICHLET_TINY[::2]] + [xor_pmf(*XOR_TINY[1])]
    shape = tuple(max(p.shape[i] for p in pmfs) for i in range(3))
    batch = np.zeros((len(pmfs), *shape))
    for i, p in enumerate(pmfs):
        batch[i, :p.shape[0], :p.shape[1], :p.shape[2]] = p
    singles = [pidkit.pid(p, measure="broja") for p in pmfs]
    for chunked in (False, True):
        with warnings.catch_warnings(), pytest.MonkeyPatch.context() as mp:
            warnings.simplefilter("error", ConvergenceWarning)
            if chunked:
                mp.setattr(_polish, "KKT_MEMORY", 1)
            results = [pidkit.broja(batch, batch=True),
                       pidkit.broja(torch.tensor(batch), batch=True)]
        for res in results:
            assert res.solver.status == "optimal"
            lower = np.asarray(res.solver.certificate.lower)
            upper = np.asarray(res.solver.certificate.upper)
            assert np.all(upper - lower <= 1e-9)
            for single, lo, up in zip(singles, lower, upper, strict=True):
                cert = single.solver.certificate  # both brackets hold the truth: they overlap
                assert lo <= cert.upper + EXACT_SLACK and cert.lower <= up + EXACT_SLACK


# -- marginal entries below the barrier's resolution: the tolerance-relative drop ------------

#: ``(k, seed)``: Dirichlet(0.001) pmfs over k x k x k cells (``default_rng(seed)``), about 70
#: cells above 1e-12 and marginal entries down to 1e-300. Each stopped at max_iter = 200 (gaps
#: 2e-7 and 1e-6 bits, 8-10 s) while the barrier kept every marginal entry above ``DROP``.
LARGE_SPARSE = ((13, 13002), (14, 14000))


def large_sparse_pmf(k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(k ** 3, 0.001)).reshape(k, k, k)


def certified_at_the_first_crossover(p: np.ndarray) -> None:
    """Certified (:func:`certified_without_warning`) by the first crossover, the bracket
    re-evaluated in 50 digits from the returned points (:func:`exact_bracket`)."""
    r = certified_without_warning(p)
    assert r.solver.iterations <= _ipm.POLISH_EVERY
    state = r.solver.state
    lower, upper, violation = exact_bracket(p, state.lam[0], state.mu[0], state.q[0])
    assert violation <= 1e-15
    assert lower >= r.solver.certificate.lower - EXACT_SLACK
    assert upper - lower <= 1e-9 + 2 * EXACT_SLACK


@pytest.mark.parametrize(("k", "seed"), LARGE_SPARSE)
def test_tiny_marginal_entries_are_dropped_and_the_pmf_certified(k, seed):
    p = large_sparse_pmf(k, seed)
    certified_at_the_first_crossover(p)
    # entries below the threshold exist and are far above DROP: the rule, not DROP, acts here
    threshold = _polish.drop_threshold(1e-9 * np.log(2), k * 2 * k)
    marginals = np.concatenate([p.sum(axis=2).ravel(), p.sum(axis=1).ravel()])
    assert np.any((marginals > 1e3 * _polish.DROP) & (marginals < threshold))


def test_keeping_every_marginal_entry_above_drop_stalls(monkeypatch):
    """Within the first crossover's original budget of 40 barrier steps (``BARRIER_STEPS`` is
    60 since; the longer run then certifies this pmf even without the rule)."""
    monkeypatch.setattr(_polish, "DROP_SHARE", float("inf"))     # threshold = DROP
    monkeypatch.setattr(_polish, "BARRIER_STEPS", 40)
    with pytest.warns(ConvergenceWarning):
        r = pidkit.pid(large_sparse_pmf(*LARGE_SPARSE[0]), measure="broja",
                       max_iter=_ipm.POLISH_EVERY + 1)
    assert r.solver.status == "max_iter" and r.solver.certificate.gap > 1e-9


# -- violated blocks of tiny marginals: the local repair of the dual bound -------------------

#: ``(k, seed)`` of :func:`large_sparse_pmf` whose crossover iterates did not certify while
#: the dual bound only shifted whole rows and columns (a block of cells with marginals near
#: 1e-10, violated at the barrier's resolution, cost its row's whole mass): stopped at
#: max_iter with a gap of 3.5e-9 bits. The recorded sweep's 12 x 12 x 12 pmf of this kind
#: (``benchmarks/broja_stalls.py``) went from a gap of 1.5e-6 bits at max_iter to certified.
LOCAL_REPAIR = (13, 13008)


def test_local_repair_of_the_dual_certifies_a_large_sparse_pmf(monkeypatch):
    p = large_sparse_pmf(*LOCAL_REPAIR)
    certified_at_the_first_crossover(p)
    # without the repair, within the original 40 barrier steps (60 since: the longer barrier
    # run certifies these pmfs without the repair too; the repair still lets the iterates
    # certify earlier, test_the_local_repair_certifies_this_one_without_the_crossover)
    monkeypatch.setattr(_bounds, "local_repair", lambda lam, mu, *rest: (lam, mu))
    monkeypatch.setattr(_polish, "BARRIER_STEPS", 40)
    with pytest.warns(ConvergenceWarning):
        r = pidkit.pid(p, measure="broja", max_iter=_ipm.POLISH_EVERY + 1)
    assert r.solver.status == "max_iter" and r.solver.certificate.gap > 1e-9


# -- the crossover's Newton systems on their active rows only ---------------------------------


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_solve_active_equals_the_full_solve(backend):
    """Rows outside ``active`` are (minus) unit diagonal ones with a zero right-hand side:
    the solution of the rows that are active in some item, zeros elsewhere, is the full
    system's solution."""
    rng = np.random.default_rng(3)
    nb, n = 3, 9
    active = rng.random((nb, n)) < 0.6
    active[:, 0], active[:, -2:] = True, False
    a = rng.normal(size=(nb, n, n)) + n * np.eye(n)
    a = np.where(active[:, :, None] & active[:, None, :], a, 0.0)
    a += np.where(active, 0.0, rng.choice([-1.0, 1.0], size=(nb, n)))[:, :, None] * np.eye(n)
    rhs = np.where(active, rng.normal(size=(nb, n)), 0.0)
    full = np.linalg.solve(a, rhs[:, :, None])[:, :, 0]
    args = (a, rhs, active)
    if backend == "torch":
        args = tuple(map(torch.from_numpy, args))
    out = np.asarray(_polish._solve_active(*args, get_namespace(args[0])))
    np.testing.assert_allclose(out, full, rtol=1e-12, atol=1e-12)
    assert not np.all(active.any(axis=0))           # some rows were left out for the test


def test_crossover_runs_when_only_its_active_rows_fit(monkeypatch):
    """The 13 x 13 x 13 pmf's crossover systems have 507 rows, of which 179 (barrier) and
    about 400 (semismooth stage) are active: with MAX_UNKNOWNS = 420 it is still certified
    at the first crossover; with 100 the crossover is skipped and the iteration stops at
    max_iter (so the cap is what decides, and it counts active rows)."""
    p = large_sparse_pmf(*LOCAL_REPAIR)
    monkeypatch.setattr(_polish, "MAX_UNKNOWNS", 420)
    r = certified_without_warning(p)
    assert r.solver.iterations <= _ipm.POLISH_EVERY
    monkeypatch.setattr(_polish, "MAX_UNKNOWNS", 100)
    with pytest.warns(ConvergenceWarning):
        r = pidkit.pid(p, measure="broja", max_iter=_ipm.POLISH_EVERY + 1)
    assert r.solver.status == "max_iter"


def test_a_barrier_that_needs_more_than_40_steps_certifies_at_the_first_crossover(monkeypatch):
    """The sweep's 20 x 20 x 20 Dirichlet(0.001) pmf of seed 1 (``benchmarks/broja_stalls.py``):
    with 40 barrier steps per crossover its lower bound was still falling (gap 1.8e-9 bits) and
    the iteration ran to max_iter; with ``BARRIER_STEPS`` = 60 the first crossover certifies."""
    from broja_stalls import families

    p = families(1)["dirichlet(0.001) large"][4]
    assert p.shape == (20, 20, 20)
    monkeypatch.setattr(_small, "LEAN_ROWS", 0)      # the general solver's iterates
    certified_at_the_first_crossover(p)
    monkeypatch.setattr(_polish, "BARRIER_STEPS", 40)
    with pytest.warns(ConvergenceWarning):
        r = pidkit.pid(p, measure="broja", max_iter=_ipm.POLISH_EVERY + 1)
    assert r.solver.status == "max_iter" and r.solver.certificate.gap > 1e-9


def test_late_slack_reset_certifies_a_small_target_table_that_crawled(monkeypatch):
    """A 3 x 150 x 150 table of uniform random cells (the "small target" family of
    ``benchmarks/broja_stalls.py``): its line search took 2^-6 of each step from iteration 40
    on (the curvature of h raised r_p = h + s along the step) and it stopped at max_iter = 200
    with a gap of 9.2e-8 bits. With the slacks of dual-feasible blocks reset to -h from
    ``_ipm.RESET_FROM`` on it is certified; without, still open at the same iteration."""
    monkeypatch.setattr(_small, "LEAN_ROWS", 0)      # the general solver
    p = np.random.default_rng(0).random((3, 150, 150))
    p /= p.sum()
    r = certified_without_warning(p)
    iterations = r.solver.iterations
    assert _ipm.RESET_FROM < iterations < 120
    monkeypatch.setattr(_ipm, "RESET_FROM", 10**9)
    with pytest.warns(ConvergenceWarning):
        plain = pidkit.pid(p, measure="broja", max_iter=iterations)
    assert plain.solver.status == "max_iter" and plain.solver.certificate.gap > 1e-9
    assert plain.solver.certificate.lower <= r.solver.certificate.upper + 1e-15


@pytest.mark.parametrize("driver", ["lean", "general"])
def test_nonmonotone_search_certifies_the_small_target_table_that_crawled(monkeypatch, driver):
    """Seed 2 of the 3 x 150 x 150 uniform-cell tables: with the monotone line search its
    duality measure fell by about 1% per iteration from iteration 40 on and it stopped at
    max_iter = 200 (gap 2.2e-9 to 3.2e-9 bits, on two machines). With the non-monotone search
    from ``_ipm.RESET_FROM`` on (``_ipm.NONMONOTONE``) both drivers certify it, in 89 and 94
    iterations when this was written; without it, it is still open at iteration 120."""
    from pidkit.discrete.broja import _small

    if driver == "general":
        monkeypatch.setattr(_small, "LEAN_ROWS", 0)
    p = np.random.default_rng(2).random((3, 150, 150))
    p /= p.sum()
    r = certified_without_warning(p)
    assert _ipm.RESET_FROM < r.solver.iterations < 120
    monkeypatch.setattr(_ipm, "NONMONOTONE", 0)
    monkeypatch.setattr(_small, "NONMONOTONE", 0)
    with pytest.warns(ConvergenceWarning):
        plain = pidkit.pid(p, measure="broja", max_iter=120)
    assert plain.solver.status == "max_iter" and plain.solver.certificate.gap > 1e-9
    assert plain.solver.certificate.lower <= r.solver.certificate.upper + 1e-15
    assert r.solver.certificate.lower <= plain.solver.certificate.upper + 1e-15
