"""Property tests (hypothesis) for bivariate BROJA: non-negativity, the four identities,
symmetry under swapping the sources, and invariance under relabelling outcomes."""

from __future__ import annotations

import numpy as np
from _broja_reference import information_terms
from hypothesis import given, settings
from hypothesis import strategies as st

import pidkit

TOL = 1e-8  # bits: the certified gap is 1e-9; identities hold to rounding


@st.composite
def pmfs(draw):
    """Random pmfs p[y, t, s] with 2..4 outcomes per variable, some cells exactly zero."""
    shape = tuple(draw(st.integers(2, 4)) for _ in range(3))
    seed = draw(st.integers(0, 2**32 - 1))
    sparsity = draw(st.sampled_from([0.0, 0.3, 0.6]))
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(int(np.prod(shape)))).reshape(shape)
    p[rng.random(shape) < sparsity] = 0.0
    if p.sum() == 0:
        p.flat[0] = 1.0
    return p / p.sum()


def atoms(r):
    return np.array([r.redundancy, r.unique[0], r.unique[1], r.synergy])


@settings(max_examples=40, deadline=None)
@given(pmfs())
def test_nonnegative_and_identities(p):
    r = pidkit.pid(p, measure="broja")
    red, u0, u1, syn = atoms(r)
    i_t, i_s, i_ts = information_terms(p)
    assert min(red, u0, u1, syn) >= 0.0
    assert abs(red + u0 - i_t) <= TOL
    assert abs(red + u1 - i_s) <= TOL
    assert abs(red + u0 + u1 + syn - i_ts) <= TOL
    assert abs(r.mutual_information - i_ts) <= TOL
    cert = r.solver.certificate
    assert cert.lower <= u0 <= cert.upper and cert.gap <= 1e-9


@settings(max_examples=25, deadline=None)
@given(pmfs())
def test_symmetric_under_swapping_sources(p):
    r = pidkit.pid(p, measure="broja")
    swapped = pidkit.pid(np.swapaxes(p, 1, 2), measure="broja")
    expected = atoms(r)[[0, 2, 1, 3]]
    np.testing.assert_allclose(atoms(swapped), expected, atol=2e-9)


@settings(max_examples=25, deadline=None)
@given(pmfs(), st.integers(0, 2**32 - 1))
def test_invariant_under_relabelling(p, seed):
    rng = np.random.default_rng(seed)
    perm = [rng.permutation(n) for n in p.shape]
    q = p[np.ix_(*perm)]
    np.testing.assert_allclose(atoms(pidkit.pid(q, measure="broja")),
                               atoms(pidkit.pid(p, measure="broja")), atol=2e-9)
