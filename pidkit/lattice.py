r"""The redundancy lattice of Williams and Beer (2010) for any number of sources.

A node is an antichain of non-empty subsets of the sources ``{0, ..., n-1}``: a collection in
which no subset contains another. Nodes are written as tuples of sorted tuples, e.g.
``((0,), (1,))`` (label ``{0}{1}``, the redundancy of two sources) or ``((0, 1),)`` (label
``{0:1}``, the synergy of two sources). The order is

.. math::

    \alpha \preceq \beta \iff \forall B \in \beta\ \exists A \in \alpha:\ A \subseteq B .

A redundancy function :math:`I_\cap(\alpha)` gives the atoms (partial information terms) by
Moebius inversion, :math:`I_\partial(\alpha) = I_\cap(\alpha) - \sum_{\beta \prec \alpha}
I_\partial(\beta)`. The lattice has 4, 18, 166 and 7,579 nodes for 2 to 5 sources.

Implementation: each node is stored as the bit set of its *up-set* in the Boolean lattice of
source subsets (all subsets containing one of its members), a ``2**n``-bit integer. Then
:math:`\alpha \preceq \beta` iff ``up(beta)`` is a subset of ``up(alpha)``, a single bitwise test,
so the whole order is computed with vectorised integer operations.

References
----------
P. L. Williams, R. D. Beer, "Nonnegative Decomposition of Multivariate Information",
arXiv:1004.2515 (2010).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.linalg import solve_triangular
from scipy.sparse.linalg import spsolve_triangular

from .errors import PIDTypeError
from .validation import as_float_array, check_flag, check_positive, fail

Node = tuple[tuple[int, ...], ...]

__all__ = ["Lattice", "Node", "canonical_node", "check_n_sources", "lattice", "node_label",
           "nodes_keyed", "parse_node"]

#: Largest lattice (166 nodes: 4 sources) whose Moebius matrix is cached densely.
DENSE_MOEBIUS_NODES = 166

#: Largest number of sources whose lattice is built (6 sources have 7,828,352 nodes).
MAX_SOURCES = 5


def _is_node(key: Any) -> bool:
    """Whether ``key`` has the shape of a lattice node: a non-empty tuple of non-empty tuples of
    non-negative integers (which nodes exist is the lattice's business)."""
    return (isinstance(key, tuple) and len(key) > 0
            and all(isinstance(part, tuple) and len(part) > 0
                    and all(isinstance(i, (int, np.integer)) and not isinstance(i, bool)
                            and i >= 0 for i in part)
                    for part in key))


def node_label(node: Node | str) -> str:
    """Label a node as in the literature: ``{0}{1}`` for redundancy, ``{0:1}`` for synergy
    (collections and their indices in increasing order, as :func:`parse_node` reads them).

    ``node`` is a node tuple or a label (returned in that order).

    Raises
    ------
    PIDTypeError
        ``node`` is neither a label nor a tuple of tuples of non-negative integers.
    PIDValueError
        ``node`` is not an antichain (a collection repeated, an index repeated in a collection,
        or one collection inside another), so :func:`parse_node` could not read its label.
    """
    if isinstance(node, str):
        node = parse_node(node)
    elif not _is_node(node):
        raise fail("node", "must be a node tuple of tuples of source indices, or a label",
                   "Pass e.g. ((0,), (1,)) or '{0}{1}'", node, kind=PIDTypeError)
    parts = sorted(tuple(sorted(int(i) for i in part)) for part in node)
    masks = [sum(1 << i for i in set(part)) for part in parts]
    if (any(len(set(part)) != len(part) for part in parts) or len(set(masks)) != len(masks)
            or any(a != b and a & b == a for a in masks for b in masks)):
        raise fail("node", "is not an antichain (a repeated index or collection, or one "
                   "collection inside another)", "Drop the larger collection, e.g. "
                   "((0,), (0, 1)) is the node ((0,),)", node)
    return "".join("{" + ":".join(str(i) for i in part) + "}" for part in parts)


def check_n_sources(n_sources: int, name: str = "n_sources", fix: str | None = None) -> int:
    """``n_sources`` as an int in ``1..MAX_SOURCES`` (the lattices that can be built); a typed
    error naming ``name`` otherwise, with ``fix`` as its remedy (default: group sources)."""
    n = check_positive(n_sources, name, integer=True)
    if n > MAX_SOURCES:
        raise fail(name, f"{n} sources are more than the {MAX_SOURCES} whose lattice can be "
                   f"built (6 sources already have 7,828,352 nodes)",
                   fix or f"Group sources into at most {MAX_SOURCES} composite sources, e.g. "
                   f"sources=[[1, 2], [3], ...]", n)
    return n


def canonical_node(key: Node | str, name: str = "node") -> Node:
    """The node a key stands for: a label is parsed (:func:`parse_node`; a malformed one is a
    typed error naming ``name``), a tuple of tuples is put in the lattice's order (indices and
    collections sorted, as :attr:`Lattice.nodes` holds them), so ``((1,), (0,))`` and
    ``"{0}{1}"`` are the same key. Anything else is returned as it is (a lookup with it then
    fails as for any mapping)."""
    if isinstance(key, str):
        return parse_node(key, name)
    if isinstance(key, tuple) and all(isinstance(part, tuple) for part in key):
        try:
            return tuple(sorted(tuple(sorted(part)) for part in key))
        except TypeError:          # incomparable entries: not a node, looked up as given
            return key
    return key


def nodes_keyed(values: Mapping[Node | str, Any], name: str,
                to_node=None) -> dict[Node, Any]:
    """``values`` keyed by node: each key mapped by ``to_node`` (default
    :func:`canonical_node`, whose errors name ``name``); a node keyed twice (as a label and as
    a tuple, or as two orders of one tuple) is a typed error naming ``name``."""
    out: dict[Node, Any] = {}
    for key, value in values.items():
        node = canonical_node(key, name) if to_node is None else to_node(key)
        if node in out:
            raise fail(name, f"keys node {node_label(node)} twice (e.g. as a label and as a "
                       "tuple)", "Key each node once", key)
        out[node] = value
    return out


def parse_node(label: str, name: str = "node") -> Node:
    """Inverse of :func:`node_label`: ``"{0}{1:2}"`` -> ``((0,), (1, 2))``.

    A label is a valid lattice node: braces around each collection, source indices written
    with the ASCII digits 0-9 (non-negative, no leading zero), separated by ``:``; no index
    twice in a collection, no collection twice, and no collection contained in another (a node is an
    *antichain*: ``"{0:1}{0}"`` is not one, since ``{0}`` is below ``{0:1}``). Spaces are
    ignored. Whether the indices exist depends on the number of sources, which the lattice
    checks.

    Parameters
    ----------
    label : str
        The label.
    name : str, default "node"
        The argument named in errors (e.g. ``"atoms"`` when the label keys a mapping passed as
        ``atoms``).

    Raises
    ------
    PIDTypeError
        ``label`` is not a ``str`` (``None``, a number, ``bytes``).
    PIDValueError
        ``label`` is not a valid node label; the message names it and what is wrong.

    Examples
    --------
    >>> parse_node("{0}{1:2}")
    ((0,), (1, 2))
    >>> parse_node("{0:1}{0}")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pidkit.errors.PIDValueError: node: is not an antichain: {0} lies inside {0:1} ...
    """
    if not isinstance(label, str):
        raise fail(name, f"must be a label string like '{{0}}{{1}}', not "
                   f"{type(label).__name__}", "Pass a str such as '{0}{1}' or '{0:1}' (decode "
                   "bytes first), or a node tuple such as ((0,), (1,))", label,
                   kind=PIDTypeError)
    text = label.replace(" ", "")
    if not text.startswith("{") or not text.endswith("}"):
        raise fail(name, "is not a lattice label like '{0}{1}' or '{0:1}'",
                   "Write each collection in braces, sources separated by ':'", label)
    parts = []
    for chunk in text[1:-1].split("}{"):
        tokens = chunk.split(":")
        if chunk == "":
            raise fail(name, "has an empty collection '{}'",
                       "Every collection names at least one source, e.g. '{0}'", label)
        if not all(t.isascii() and t.isdigit() and (t == "0" or t[0] != "0") for t in tokens):
            raise fail(name, f"has an invalid source index in {{{chunk}}}",
                       "Source indices are non-negative integers written with the digits 0-9, "
                       "separated by ':' inside braces, e.g. '{0:1}'", label)
        part = tuple(sorted(int(t) for t in tokens))
        if len(set(part)) != len(part):
            raise fail(name, f"repeats a source index in {{{chunk}}}",
                       "Name each source once per collection, e.g. '{0:1}'", label)
        parts.append(part)
    node = tuple(sorted(parts))
    for i, a in enumerate(node):
        for b in node[i + 1:]:
            if a == b:
                raise fail(name, f"repeats the collection {node_label((a,))}",
                           "Write each collection once", label)
            small, large = (a, b) if len(a) <= len(b) else (b, a)
            if set(small) <= set(large):
                raise fail(name, f"is not an antichain: {node_label((small,))} lies inside "
                           f"{node_label((large,))}",
                           f"Drop the larger collection ({node_label((small,))} alone is the "
                           "same information) or write another node", label)
    return node


def _antichains(n: int) -> list[frozenset[int]]:
    """All non-empty antichains of non-empty subsets of ``range(n)``, as sets of bitmasks."""
    subsets = list(range(1, 1 << n))
    result: list[frozenset[int]] = []

    def extend(chain: list[int], start: int) -> None:
        for idx in range(start, len(subsets)):
            s = subsets[idx]
            if all((s & c) != s and (s & c) != c for c in chain):
                chain.append(s)
                result.append(frozenset(chain))
                extend(chain, idx + 1)
                chain.pop()

    extend([], 0)
    return result


def _up_set(masks: Iterable[int], n: int) -> int:
    """Bit set (over the ``2**n`` subsets) of all subsets containing one of ``masks``."""
    bits = 0
    for s in range(1, 1 << n):
        if any((m & s) == m for m in masks):
            bits |= 1 << s
    return bits


class Lattice:
    """The redundancy lattice for ``n_sources`` sources.

    Use :func:`lattice` to get a cached instance. Nodes are listed bottom-first in a linear
    extension of the order (``nodes[0]`` is the redundancy ``{0}{1}...``, ``nodes[-1]`` the
    synergy ``{0:1:...}``).

    Examples
    --------
    >>> lat = lattice(2)
    >>> [node_label(a) for a in lat.nodes]
    ['{0}{1}', '{0}', '{1}', '{0:1}']
    >>> atoms = lat.moebius({((0,), (1,)): 0.3, ((0,),): 0.5, ((1,),): 0.3, ((0, 1),): 1.0})
    >>> round(atoms[((0, 1),)], 12)
    0.5
    """

    def __init__(self, n_sources: int):
        n = check_n_sources(n_sources)
        self.n_sources = n
        chains = _antichains(n)
        up = np.array([_up_set(c, n) for c in chains], dtype=np.uint64)
        size = np.array([bin(int(u)).count("1") for u in up])
        # Larger up-set = lower in the lattice; ties broken by label for a stable order.
        nodes = [tuple(sorted(tuple(i for i in range(n) if m >> i & 1) for m in c))
                 for c in chains]
        order = sorted(range(len(nodes)), key=lambda i: (-size[i], len(nodes[i]), nodes[i]))
        self.nodes: tuple[Node, ...] = tuple(nodes[i] for i in order)
        self._up = up[order]
        self.index: dict[Node, int] = {a: i for i, a in enumerate(self.nodes)}

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"Lattice(n_sources={self.n_sources}, nodes={len(self)})"

    @property
    def bottom(self) -> Node:
        """The redundancy node ``{0}{1}...{n-1}``."""
        return self.nodes[0]

    @property
    def top(self) -> Node:
        """The synergy node ``{0:1:...:n-1}``."""
        return self.nodes[-1]

    @functools.cached_property
    def member_masks(self) -> np.ndarray:
        """Bitmask of each member of each node, shape ``(len(self), max_width)``.

        Rows are padded by repeating the node's first member, so a minimum or maximum over a row
        is the minimum or maximum over the node's members (used by I_min and MMI).
        """
        width = max(len(a) for a in self.nodes)
        out = np.empty((len(self), width), dtype=np.int64)
        for i, node in enumerate(self.nodes):
            masks = [sum(1 << s for s in part) for part in node]
            out[i] = masks + [masks[0]] * (width - len(masks))
        return out

    def position(self, node: Node | str, name: str = "node") -> int:
        """Index in :attr:`nodes` of ``node``, a node tuple or a label such as ``"{0}{1}"``.

        Raises
        ------
        PIDValueError, PIDTypeError
            ``node`` is not a valid label (:func:`parse_node`) or not a node of this lattice;
            the message names it (argument ``name``).
        """
        try:
            return self.index[canonical_node(node, name)]
        except (KeyError, TypeError):   # TypeError: an unhashable key such as a list
            raise fail(name, f"is not a node of the lattice of {self.n_sources} source(s)",
                       f"Use a label such as {node_label(self.bottom)!r} or a node tuple such "
                       f"as {self.bottom!r}, with sources 0..{self.n_sources - 1}",
                       node) from None

    def leq(self, a: Node | str, b: Node | str) -> bool:
        """``True`` when ``a`` is below or equal to ``b`` in the lattice order (nodes or
        labels)."""
        ua, ub = self._up[self.position(a, "a")], self._up[self.position(b, "b")]
        return bool((ub & ~ua) == 0)

    @functools.cached_property
    def _zeta(self) -> sp.csr_matrix:
        """Sparse lower-triangular matrix ``Z[i, j] = 1`` iff ``nodes[j] <= nodes[i]``."""
        rows, cols = [], []
        chunk = 512
        for start in range(0, len(self), chunk):
            block = self._up[start:start + chunk, None]
            below = (block & ~self._up[None, :]) == 0  # up(i) subset of up(j): j <= i
            r, c = np.nonzero(below)
            rows.append(r + start)
            cols.append(c)
        r = np.concatenate(rows)
        c = np.concatenate(cols)
        return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(self), len(self)))

    def down_set(self, node: Node | str, strict: bool = False) -> list[Node]:
        """All nodes below ``node`` (a node or a label; excluding it when ``strict``)."""
        strict = check_flag(strict, "strict")
        i = self.position(node)
        row = self._zeta.getrow(i).indices
        return [self.nodes[j] for j in sorted(row) if not (strict and j == i)]

    def moebius(self, redundancy: Mapping[Node, float] | np.ndarray) -> dict[Node, float]:
        r"""Atoms from redundancy values by Moebius inversion over the lattice.

        Solves :math:`I_\cap(\alpha) = \sum_{\beta \preceq \alpha} I_\partial(\beta)` for all
        nodes at once: a product with the cached Moebius matrix (the inverse of the zeta matrix)
        for up to 4 sources, a sparse triangular solve for 5.

        Parameters
        ----------
        redundancy : mapping or array_like
            :math:`I_\cap` for every node, as a mapping keyed by node or by label (``"{0}{1}"``,
            as :class:`~pidkit.result.AtomMap` accepts) or an array ordered like
            :attr:`nodes`.

        Returns
        -------
        dict
            Node -> atom, ordered like :attr:`nodes`.

        Raises
        ------
        PIDValueError, PIDTypeError
            ``redundancy`` misses a node, has a key that is not a node of this lattice, has
            the wrong shape, or holds a NaN or infinite value (:meth:`as_vector`).
        """
        values = self.as_vector(redundancy, "redundancy")
        if len(self) <= DENSE_MOEBIUS_NODES:
            atoms = self._moebius_matrix @ values
        else:
            atoms = spsolve_triangular(self._zeta, values, lower=True, unit_diagonal=True)
        return dict(zip(self.nodes, atoms.tolist(), strict=True))

    @functools.cached_property
    def _moebius_matrix(self) -> np.ndarray:
        """Dense inverse of the zeta matrix, for small lattices. Its entries are the values of the
        lattice's Moebius function, integers, so rounding makes it exact."""
        inverse = solve_triangular(self._zeta.toarray(), np.eye(len(self)), lower=True,
                                   unit_diagonal=True)
        return np.rint(inverse)

    def cumulate(self, atoms: Mapping[Node, float] | np.ndarray) -> dict[Node, float]:
        r"""Inverse of :meth:`moebius`: :math:`I_\cap(\alpha) = \sum_{\beta \preceq \alpha}
        I_\partial(\beta)`. ``atoms`` is checked as ``redundancy`` is there
        (:meth:`as_vector`)."""
        values = self._zeta @ self.as_vector(atoms, "atoms")
        return dict(zip(self.nodes, values.tolist(), strict=True))

    def as_vector(self, values: Mapping[Node | str, float] | np.ndarray, name: str
                  ) -> np.ndarray:
        """Values for every node, as a float array ordered like :attr:`nodes`.

        ``values`` is a mapping keyed by node or label (each node once, no other key) or an
        array of shape ``(len(self),)`` of finite numbers; anything else is a typed error naming
        ``name``. A NaN or infinite value is refused rather than passed on: the inversion would
        spread it to every node above (or below) its own, and the result would be NaN without
        saying where it came from.
        """
        if isinstance(values, Mapping):
            by_node = nodes_keyed(values, name, lambda key: self.nodes[self.position(key, name)])
            missing = [node_label(a) for a in self.nodes if a not in by_node]
            if missing:
                raise fail(name, f"misses {len(missing)} lattice nodes, e.g. {missing[:3]}",
                           "Give a value for every node of the lattice")
            values = [by_node[a] for a in self.nodes]
        arr = as_float_array(values, name, "values, one per lattice node")
        if arr.shape != (len(self),):
            raise fail(name, f"has shape {arr.shape}, expected ({len(self)},)",
                       "Order the values like Lattice.nodes, one number per node")
        bad = [node_label(a) for a, ok in zip(self.nodes, np.isfinite(arr), strict=True)
               if not ok]
        if bad:
            raise fail(name, f"holds NaN or infinite values at {len(bad)} node(s), e.g. "
                       f"{bad[:3]}", "Give a finite value for every node (compute or drop the "
                       "missing ones first)")
        return arr


def lattice(n_sources: int) -> Lattice:
    """The (cached) redundancy lattice for ``n_sources`` sources (a positive integer, at most
    :data:`MAX_SOURCES`)."""
    return _cached_lattice(check_positive(n_sources, "n_sources", integer=True))


@functools.cache
def _cached_lattice(n_sources: int) -> Lattice:
    return Lattice(n_sources)
