"""Three-source BROJA on the pmfs that defeated its dual interior-point iteration: Dirichlet(0.05)
pmfs (composite-source programs whose optima empty most blocks; gaps of 1e-3 to 0.4 bits after
200 iterations, 53 of 60 such pmfs in a development sweep; one more, seed 45, until the
crossover refined its Newton directions), a skewed 2 x 2 x 2 x 2 pmf on which
the iteration overflowed, and a plug-in table of 38 samples that ended at 1.06e-9 bits. With the
drop of tiny marginal entries, the capped dual steps and the primal barrier crossover
(``_three_barrier``) each must be certified, without a warning of any kind, and agree with
cvxpy + Clarabel (which calls its own answers "inaccurate" on some of them: 1e-6 bits).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _broja3_reference import reference_atoms

import pidkit
from pidkit.discrete.broja import _three_maxent
from pidkit.errors import ConvergenceWarning

#: Agreement asked of the cvxpy reference (bits): Clarabel flags these solutions inaccurate.
REFERENCE_TOL = 1e-6


def sparse_pmf(seed: int, alpha: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(2, 4, size=4))
    return rng.dirichlet(np.full(int(np.prod(shape)), alpha)).reshape(shape)


def plugin_pmf() -> np.ndarray:
    rng = np.random.default_rng(4)
    shape = tuple(int(v) for v in rng.integers(2, 4, size=4))
    counts = rng.multinomial(int(rng.integers(10, 300)), rng.dirichlet(np.full(81, 0.5)))
    return counts.reshape(shape) / counts.sum()


def certified_quietly(p: np.ndarray):
    """``pidkit.pid(p)`` with every warning (ConvergenceWarning, numpy's RuntimeWarnings)
    turned into an error; checked to be converged."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = pidkit.pid(p)
    assert r.solver.status == "optimal" and r.solver.converged
    return r


HARD = [pytest.param(sparse_pmf(seed), id=f"dirichlet-{seed}") for seed in (0, 18, 28)] + [
    pytest.param(plugin_pmf(), id="plugin-38-samples"),
    pytest.param(np.random.default_rng(0).dirichlet(np.full(16, 0.05)).reshape(2, 2, 2, 2),
                 id="skewed")]


@pytest.mark.parametrize("p", HARD)
def test_hard_pmf_is_certified_quietly_and_matches_cvxpy(p):
    r = certified_quietly(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)       # Clarabel: "may be inaccurate"
        ref = reference_atoms(p, list(r.atoms.keys()))
    lower, upper = r.solver.parts["lower"], r.solver.parts["upper"]
    for node, value in r.atoms.items():
        assert value == pytest.approx(ref[node], abs=REFERENCE_TOL), node
        assert lower[node] <= value <= upper[node], node
    assert sum(r.atoms.values()) == pytest.approx(r.mutual_information, abs=1e-12)


def test_refined_crossover_certifies_the_pmf_that_stalled_just_above_tol():
    # seed 45 (3 x 3 x 3 x 3): the pairs program stopped at max_iter with a gap of 8.9e-10 nats
    # (tol 6.9e-10) until the barrier's Newton directions were refined (_three_barrier.REFINE):
    # unrefined, they stopped being descent directions near the end
    p = sparse_pmf(45)
    r = certified_quietly(p)
    lower, upper = r.solver.parts["lower"], r.solver.parts["upper"]
    assert all(lower[n] <= v <= upper[n] for n, v in r.atoms.items())
    assert r.solver.certificate.gap <= 8e-9   # an atom involves at most eight programs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)       # Clarabel: "may be inaccurate"
        ref = reference_atoms(p, list(r.atoms.keys()))
    # Clarabel's answer lies outside the certified brackets by up to 1.2e-6 bits here (the
    # synergy atoms), so only an agreement to 1e-5 bits is asked of it
    for node, value in r.atoms.items():
        assert value == pytest.approx(ref[node], abs=1e-5), node


@pytest.mark.parametrize("seed", [5, 19, 82])
def test_blown_up_newton_directions_stay_silent(seed):
    # Dirichlet(0.01): a bivariate program's Newton direction overflowed in the general
    # solver's corrector product, and numpy's RuntimeWarnings reached the user although the
    # line search rejected those points and every program was certified
    p = sparse_pmf(seed, alpha=0.01)
    r = certified_quietly(p)
    lower, upper = r.solver.parts["lower"], r.solver.parts["upper"]
    assert all(lower[n] <= v <= upper[n] for n, v in r.atoms.items())
    assert sum(r.atoms.values()) == pytest.approx(r.mutual_information, abs=1e-12)


@pytest.mark.parametrize("seed", [25, 68])
def test_barrier_restarts_with_a_lower_tau_when_its_first_step_fails(seed, monkeypatch):
    # Dirichlet(0.01), nearly deterministic programs: the dual iteration is stuck and the
    # crossover started at the iterate's tau (0.07 for seed 68) with cells down to 1e-88, its
    # first Newton direction no descent direction; both ended at max_iter before the restart
    p = sparse_pmf(seed, alpha=0.01)
    r = certified_quietly(p)
    lower, upper = r.solver.parts["lower"], r.solver.parts["upper"]
    assert all(lower[n] <= v <= upper[n] for n, v in r.atoms.items())
    from pidkit.discrete.broja import _three_barrier

    # the dual iteration as it was before its starting masses were floored (it stayed stuck
    # on these programs, so the crossover ran from its first iterates)
    monkeypatch.setattr(_three_maxent, "START_MASS", 0.0)

    runs = []
    original = _three_barrier._run

    def spy(prog, q, tau, *args):
        out = original(prog, q, tau, *args)
        runs.append((tau, out[1]))
        return out

    monkeypatch.setattr(_three_barrier, "_run", spy)
    # without the pair programs' bound (which now certifies seed 25 before any crossover)
    solve = _three_maxent.solve
    monkeypatch.setattr(_three_maxent, "solve",
                        lambda q, tol, max_iter, lower=None: solve(q, tol, max_iter))
    certified_quietly(p)
    # some run failed at once and was restarted from a lower tau
    assert any(failed and later < tau
               for (tau, failed), (later, _) in zip(runs, runs[1:], strict=False))


def test_without_the_crossover_a_sparse_pmf_stalls(monkeypatch):
    # seed 5: one of 9 of the first 20 Dirichlet(0.05) pmfs that still need the crossover
    certified_quietly(sparse_pmf(5))
    monkeypatch.setattr(_three_maxent, "_POLISH_EVERY", 10 ** 9)
    with pytest.warns(ConvergenceWarning):
        r = pidkit.pid(sparse_pmf(5))
    assert r.solver.status == "max_iter"


def test_lifted_and_repaired_dual_is_a_lower_bound():
    """Weak duality for the certificate's dual point on a pmf with dropped marginal entries:
    random reduced-program dual points, lifted to the full program and repaired, never exceed
    the objective of two feasible points (``p`` itself and the product point), and the local
    repair never does worse than the shifts alone."""
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.full(36, 0.05)).reshape(3, 3, 2, 2)
    full = _three_maxent._Program(p)
    threshold = 1e-8
    kept = _three_maxent._kept_cells(p, threshold)
    assert np.any((kept == 0) & (p > 0))                  # some cells were dropped
    prog = _three_maxent._Program(kept)
    upper = min(_three_maxent.objective(p), _three_maxent.objective(full.product))
    for _ in range(50):
        x = full.lift(rng.normal(scale=3.0, size=prog.n), prog)
        g = full.softmax(x)[0]
        value = full.dual_bound(x, g)
        assert value <= upper + 1e-12
        assert value >= full._shifted(x, g) - 1e-12


def test_barrier_value_is_the_programs_objective_minus_the_log_barrier():
    """The crossover's barrier function is the program's :func:`objective` minus tau times the
    log barrier, bit for bit: one implementation (on programs with left-out cells, as the
    crossover gets them, a sum in another order differs in the last bits at about a quarter
    of these points, and the line search compares such values). The objective is
    H(A,B,C) - H(T,A,B,C); a cell that is not positive makes the value NaN or infinite, which
    the line search rejects."""
    from pidkit.discrete.broja import _three_barrier

    assert _three_maxent.objective is _three_barrier.objective
    rng = np.random.default_rng(3)
    for seed in range(40):
        prog = _three_maxent._Program(_three_maxent._kept_cells(sparse_pmf(seed), 1e-4))
        cells = prog.allowed
        q = np.where(cells, prog.product * np.exp(rng.uniform(-20, 0, cells.shape)), 0.0)
        assert _three_barrier._value(q, cells, 0.0) == _three_maxent.objective(q)
        tau = 10.0 ** rng.uniform(-12, -2)
        log_barrier = float(np.sum(np.where(cells, np.log(np.where(cells, q, 1.0)), 0.0)))
        value = _three_barrier._value(q, cells, tau)
        assert value == _three_maxent.objective(q) - tau * log_barrier
        q_k = q.sum(axis=0)
        h_abc = -np.sum(q_k[q_k > 0] * np.log(q_k[q_k > 0]))
        h_all = -np.sum(np.where(cells, q * np.log(np.where(cells, q, 1.0)), 0.0))
        assert _three_maxent.objective(q) == pytest.approx(h_abc - h_all, abs=1e-14)
        with np.errstate(divide="ignore", invalid="ignore"):
            for bad in (0.0, -1e-3):
                trial = q.copy()
                trial[np.unravel_index(np.flatnonzero(cells)[0], cells.shape)] = bad
                value = _three_barrier._value(trial, cells, tau)
                assert np.isnan(value) or value == np.inf


def test_a_crossing_maxent_bracket_falls_back_to_the_trivial_one(monkeypatch):
    """A fault that put a trivariate program's lower bound above its upper one must not be
    reported as a certificate (``min(lower, upper)`` hid it): the program keeps the bracket
    it starts from."""
    p = sparse_pmf(7, alpha=0.5)
    monkeypatch.setattr(_three_maxent._Program, "dual_bound", lambda self, x, g: 1.0)
    out = _three_maxent.solve(p, 1e-9, 30)
    assert out.lower <= out.upper and out.upper - out.lower > 1e-9


def test_a_maxent_bracket_starts_from_the_pair_programs():
    """Seed 53 (Dirichlet(0.01), 3 x 2 x 3 x 3): the program on the three pairs of sources is
    nearly deterministic; the bivariate programs of its pairs bound it from below
    (f*_ABC >= f*_AB), which held its gap at 2.4e-7 bits while its own iteration could not
    move (next test). Now certified quietly, and the bracket holds the cvxpy + Clarabel
    reference of every atom."""
    p = sparse_pmf(53, alpha=0.01)
    r = certified_quietly(p)
    gaps = r.solver.details["program_gaps_bits"]
    assert max(gaps.values()) <= 1e-9
    lower, upper = r.solver.parts["lower"], r.solver.parts["upper"]
    assert all(lower[n] <= v <= upper[n] for n, v in r.atoms.items())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)          # Clarabel: "may be inaccurate"
        ref = reference_atoms(p, list(r.atoms.keys()))
    assert all(lower[n] - 1e-6 <= ref[n] <= upper[n] + 1e-6 for n in r.atoms)


def test_tiny_product_masses_do_not_block_the_maxent_iteration():
    """The 3 x 6 x 6 x 9 maxent program of seed 53 on its own (no bound from the pair
    programs): blocks whose starting mass P(t)P(a|t)P(b|t)P(c|t) is tiny (marginal entries
    down to 1e-287) cut every corrector step at the boundary, and the iteration stayed at the
    mutual-information bracket (2.7e-4 bits) for 800 iterations; with the starting masses
    floored at START_MASS / m (the bivariate start) it certifies, and its upper bound is
    below the one of the starting points alone."""
    from pidkit.discrete.broja._three import _coarse

    q = _coarse(sparse_pmf(53, alpha=0.01), ((0, 1), (0, 2), (1, 2)))
    tol = 1e-9 * np.log(2)
    out = _three_maxent.solve(q, tol, 200)
    assert out.gap <= tol and out.iterations <= 80
    start = min(_three_maxent.objective(q),
                _three_maxent.objective(_three_maxent._Program(q).product))
    assert out.upper < start - 1e-8
