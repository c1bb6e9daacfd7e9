"""Conversion between pidkit's ndarray pmfs and ``dit.Distribution`` (dit is optional).

A pidkit pmf has one axis per random variable; a ``dit`` joint distribution lists outcomes
(strings or tuples, one symbol per variable) with their probabilities. :func:`from_dit` maps each
variable's sorted alphabet to ``0, 1, ...`` along its axis; :func:`to_dit` writes outcomes as
tuples of integer codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import PIDTypeError
from .validation import check_pmf, fail, is_dit_distribution, pandas_as_list

__all__ = ["from_dit", "is_dit_distribution", "to_dit"]


def from_dit(dist: Any, *, normalize: bool = False) -> tuple[np.ndarray, tuple[str, ...]]:
    """Dense pmf (one axis per random variable) and variable names of a ``dit.Distribution``.

    Parameters
    ----------
    dist : dit.Distribution
        A joint distribution; outcomes may be strings (``"01"``) or tuples (``(0, "a")``),
        sparse or dense, with linear or log probabilities; or a distribution of one variable
        with scalar outcomes (``dit.uniform_scalar_distribution(3)``, outcomes ``0, 1, 2``):
        a pmf with one axis. Its probabilities are checked as
        :func:`pidkit.pid` checks a pmf: finite, non-negative, summing to 1.
    normalize : bool, default False
        Divide the probabilities by their sum instead of rejecting a distribution whose
        probabilities do not sum to 1 (dit builds those with ``validate=False``).

    Returns
    -------
    p : ndarray, shape (|A_0|, ..., |A_{m-1}|)
        ``p[i_0, ..., i_{m-1}]`` is the probability of the outcome whose variable ``k`` takes the
        ``i_k``-th value of its sorted alphabet (``dist.alphabet[k]``).
    names : tuple of str
        ``dist.get_rv_names()`` when set, else ``("0", "1", ...)``.

    Examples
    --------
    >>> import dit                                     # doctest: +SKIP
    >>> p, names = from_dit(dit.Distribution(["00", "11"], [0.5, 0.5]))   # doctest: +SKIP
    >>> p.tolist(), names                              # doctest: +SKIP
    ([[0.5, 0.0], [0.0, 0.5]], ('0', '1'))
    """
    return dit_pmf(dist, "dist", normalize)


def dit_pmf(dist: Any, name: str, normalize: bool) -> tuple[np.ndarray, tuple[str, ...]]:
    """:func:`from_dit`, naming the distribution ``name`` in errors (``p`` for
    :func:`pidkit.pid`)."""
    if not is_dit_distribution(dist):
        raise fail(name, f"must be a dit.Distribution, not {type(dist).__name__}",
                   "Build one with dit.Distribution(outcomes, pmf)", kind=PIDTypeError)
    if not hasattr(dist, "alphabet") or not hasattr(dist, "outcome_length"):
        raise fail(name, "is not a joint dit distribution",
                   "Use dit.Distribution (one symbol per random variable)", kind=PIDTypeError)
    if dist.is_log():
        dist = dist.copy(base="linear")
    alphabets = dist.alphabet
    codes = [{symbol: i for i, symbol in enumerate(alpha)} for alpha in alphabets]
    p = np.zeros(tuple(len(a) for a in alphabets))
    for outcome, prob in zip(dist.outcomes, dist.pmf, strict=True):
        if len(alphabets) == 1 and not isinstance(outcome, tuple):
            outcome = (outcome,)    # a scalar distribution's outcomes: 0, 1.5, "ab"
        p[tuple(code[symbol] for code, symbol in zip(codes, outcome, strict=True))] += prob
    # dit hands its probabilities over unchecked (``validate=False``; a log distribution whose
    # impossible outcomes hold 0, i.e. probability 1, instead of -inf): check them here, naming
    # the argument the user passed
    p = check_pmf(p, name, normalize=normalize, min_axes=1,
                  sum_fix=f"Check {name}.pmf (a log distribution holds log-probabilities, -inf for "
                  "an impossible outcome), or pass normalize=True to divide by the total")
    names = dist.get_rv_names()
    names = tuple(str(n) for n in names) if names else tuple(str(i) for i in range(p.ndim))
    return p, names


def to_dit(p: Any, names: Sequence[str] | None = None, *, normalize: bool = False):
    """A ``dit.Distribution`` with the same probabilities as the pmf ``p``.

    Parameters
    ----------
    p : array_like, shape (|X_0|, ..., |X_{m-1}|), or mapping
        Joint pmf, one axis per variable, or a mapping ``{outcome tuple: probability}`` (one
        variable per key position, :func:`~pidkit.validation.pmf_from_mapping`).
    names : sequence of str, optional
        One distinct name per axis (``dist.get_rv_names()``): a list, tuple, 1-d array or
        pandas Index (``df.columns``) of strings.
    normalize : bool, default False
        Divide ``p`` by its sum instead of rejecting a pmf that does not sum to 1.

    Returns
    -------
    dit.Distribution
        Outcomes are tuples of axis indices; only outcomes with positive probability are listed.

    Examples
    --------
    >>> import numpy as np, pidkit
    >>> d = pidkit.to_dit(np.array([[0.5, 0.0], [0.0, 0.5]]), names=["X", "Y"])  # doctest: +SKIP
    >>> d.outcomes                                                   # doctest: +SKIP
    ((0, 0), (1, 1))
    """
    arr = check_pmf(p, "p", normalize=normalize, min_axes=1)
    if names is not None:
        names = pandas_as_list(names)       # df.columns
        if (isinstance(names, (str, bytes)) or not isinstance(names, Sequence | np.ndarray)
                or (isinstance(names, np.ndarray) and names.ndim != 1)):
            raise fail("names", "must be a list of strings, one per axis",
                       "Example: names=['Y', 'X0', 'X1']", names, kind=PIDTypeError)
        names = list(names)     # a list, tuple or 1-d array of strings (np.str_ is a str)
        if len(names) != arr.ndim or not all(isinstance(n, str) for n in names):
            raise fail("names", f"needs {arr.ndim} strings (one per axis of p)",
                       "Give one string per axis", names)
        if len(set(names)) != len(names):
            raise fail("names", "repeats a name", "Give every axis a different name", names)
    try:
        import dit
    except ImportError as exc:
        raise ImportError("pidkit.to_dit needs dit: pip install 'pidkit[dit]'") from exc
    index = np.argwhere(arr > 0)
    outcomes = [tuple(int(i) for i in row) for row in index]
    dist = dit.Distribution(outcomes, arr[tuple(index.T)].tolist())
    if names is not None:
        dist.set_rv_names([str(n) for n in names])
    return dist
