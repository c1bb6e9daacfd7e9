"""The result type shared by every measure and estimator: atoms over the lattice, solver
information, a table, plain data and a plot.

Also the project's single helpers for what every result and report needs:

- names: the target is ``"Y"`` and source ``i`` is ``"Xi"`` (:data:`TARGET_NAME`,
  :func:`default_source_names`), numbered by *position* among the sources so that ``X0`` is the
  source of lattice label ``{0}``, whatever axis or array it came from;
- units: :func:`unit_name` (``2 -> "bits"``, ``e -> "nats"``, ``10 -> "hartleys"``);
- plain data for JSON: :func:`to_plain`;
- the quantity a certificate brackets: :data:`CERTIFIED_UNIQUE` (``"unique[0]"``, the result
  attribute that holds it) or :data:`CERTIFIED_REDUNDANCY` (``"redundancy"``).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._backend import is_torch
from .errors import PIDKeyError, PIDTypeError
from .lattice import (
    MAX_SOURCES,
    Lattice,
    Node,
    _is_node,
    canonical_node,
    lattice,
    node_label,
    nodes_keyed,
)
from .validation import check_base, check_flag, check_int, fail

__all__ = ["CERTIFIED_REDUNDANCY", "CERTIFIED_UNIQUE", "TARGET_NAME", "Certificate",
           "SolverInfo", "AtomMap", "PIDResult", "default_source_names", "to_plain",
           "unit_name"]

#: Name of the target in every result (discrete, Gaussian, from samples) unless the caller
#: names the variables.
TARGET_NAME = "Y"

#: The quantity a bivariate certificate brackets: the unique information of the first source,
#: named as the result attribute that holds it (``r.unique[0]``, lattice node ``{0}``).
CERTIFIED_UNIQUE = "unique[0]"

#: The quantity the certificate of a certified redundancy measure (I_proj, I_GH, I_IG)
#: brackets: ``r.redundancy``, lattice node ``{0}{1}``.
CERTIFIED_REDUNDANCY = "redundancy"

_UNITS = {2.0: "bits", math.e: "nats", 10.0: "hartleys"}


def unit_name(base: float) -> str:
    """The unit of information of a logarithm base: ``"bits"`` (2), ``"nats"`` (e),
    ``"hartleys"`` (10), else ``"log base b"``.

    Examples
    --------
    >>> import math
    >>> unit_name(2), unit_name(math.e), unit_name(3)
    ('bits', 'nats', 'log base 3')

    ``base`` is checked as :func:`pidkit.pid` checks it (a typed error naming ``base`` for
    anything but a finite number > 1).
    """
    base = check_base(base)
    return _UNITS.get(base, f"log base {base:g}")


def default_source_names(n_sources: int) -> tuple[str, ...]:
    """``("X0", "X1", ...)``: source ``i`` is named after its position ``i`` among the sources
    (its lattice label ``{i}``), not after the axis or array it came from.

    >>> default_source_names(3)
    ('X0', 'X1', 'X2')
    """
    return tuple(f"X{i}" for i in range(check_int(n_sources, "n_sources", 0)))


def to_plain(value: Any, *, strict: bool = False) -> Any:
    """Turn results, numpy / torch scalars and arrays into JSON-serialisable Python data.

    Arrays and tensors become nested lists (bfloat16 tensors through float32), numpy scalars
    Python numbers, objects with a ``to_dict()`` method (results, certificates, reports) their
    dict, mappings dicts with string keys, tuples and sets lists, recursively. torch is never
    imported. The one conversion to plain data for the whole project: use it instead of a local
    ``_jsonable`` / ``_plain``.

    Parameters
    ----------
    value : object
        A number, array, tensor, result, or a mapping or sequence of them.
    strict : bool, default False
        Standard JSON only: NaN and infinities become ``None`` and any object of another kind
        its ``str()``, so that ``json.dumps(to_plain(v, strict=True), allow_nan=False)``
        succeeds. Without it, such values are returned as they are (``json.dumps`` writes
        ``NaN`` and ``Infinity``, which most JSON readers outside Python reject).

    Returns
    -------
    object
        The same data as Python ``dict``, ``list``, ``int``, ``float``, ``bool``, ``str`` or
        ``None`` (and, unless ``strict``, whatever else ``value`` held).

    Examples
    --------
    >>> import numpy as np
    >>> to_plain({"a": np.float64(0.5), 1: (np.arange(2), "x")})
    {'a': 0.5, '1': [[0, 1], 'x']}
    >>> to_plain([np.nan, np.float32(np.inf), 1.5], strict=True)
    [None, None, 1.5]

    A container that holds itself (``a = []; a.append(a)``) has no plain form: a
    :class:`~pidkit.errors.PIDValueError` naming ``value``, as ``json.dumps`` refuses it.
    """
    return _to_plain(value, check_flag(strict, "strict"), ())


def _to_plain(value: Any, strict: bool, path: tuple[int, ...]) -> Any:
    """:func:`to_plain`; ``path`` holds the ids of the containers being converted above
    ``value``, to refuse a cycle instead of recursing without end."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch tensor, without importing it
        from .validation import host_numpy

        value = host_numpy(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
        return _finite(value) if strict else value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if strict and not math.isfinite(value) else value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        if id(value) in path:
            raise fail("value", f"holds itself (a {type(value).__name__} inside its own "
                       "items), which has no plain, JSON form", "Remove the self-reference")
        path = (*path, id(value))
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v, strict, path) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_to_plain(v, strict, path) for v in items]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return _to_plain(to_dict(), strict, path)
    return str(value) if strict else value


def _finite(value: Any) -> Any:
    """NaN and infinities -> None in nested lists of Python numbers."""
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Certificate:
    """A proven bracket ``lower <= value <= upper`` on the quantity a solver optimises.

    For bivariate BROJA (discrete and Gaussian) the quantity is :data:`CERTIFIED_UNIQUE`,
    ``"unique[0]"``, i.e. ``Uni(Y:X0\\X1)``: a feasible primal point gives the upper bound and a
    feasible dual point the lower bound, so ``gap`` bounds the error of every atom (each atom is
    an affine function of it with coefficient +-1). In the result's units.
    """

    quantity: str
    lower: float
    upper: float

    @property
    def gap(self) -> float:
        """``upper - lower``: a proven bound on the error of the reported value."""
        return self.upper - self.lower

    def to_dict(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "lower": to_plain(self.lower),
                "upper": to_plain(self.upper), "gap": to_plain(self.gap)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Certificate:
        """The certificate :meth:`to_dict` returned (``gap`` is recomputed); a typed error
        naming ``data`` for anything else."""
        with _reading(data, "Certificate", "a certificate"):
            quantity = _text(data["quantity"], "quantity")
            lower, upper = _from_plain(data["lower"]), _from_plain(data["upper"])
            _check_value(lower, "lower")
            _check_value(upper, "upper")
            return cls(quantity, lower, upper)


@dataclass(frozen=True)
class SolverInfo:
    """How a value was computed.

    Attributes
    ----------
    status : str
        ``"closed_form"`` (no optimisation), ``"optimal"`` (converged to tolerance),
        ``"max_iter"`` (stopped early: values carry an error bounded by the certificate),
        ``"approximate"`` (the solver's bracket is not a proof on this input, e.g. I_GH on a
        pmf whose cells span more than 11 orders of magnitude, ``gh.CERTIFIED_RANGE``: see the
        measure).
    converged : bool
        Whether the requested tolerance was met.
    iterations : int or None
        Iterations used by an iterative solver.
    certificate : Certificate or None
        Proven error bracket, where the measure provides one.
    residual : float or None
        A convergence measure (e.g. a KKT residual) where no certificate exists.
    details : dict
        Anything else the solver reports (tolerances, timings, regularisation).
    parts : dict
        Name -> :class:`AtomMap`: decompositions a measure computes beside its atoms, over the
        same lattice and in the same units, e.g. the ``"informative"`` and
        ``"misinformative"`` atoms of the pointwise measures ``pm`` and ``sx`` (atoms =
        informative - misinformative). Empty for the other measures.
    state : object or None
        The solver's final point where a solver can start from it (BROJA: a
        :class:`~pidkit.discrete.broja.WarmStart`, accepted by ``pidkit.broja(...,
        warm_start=)``); not part of :meth:`to_dict`.
    """

    status: str = "closed_form"
    converged: bool = True
    iterations: int | None = None
    certificate: Certificate | None = None
    residual: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    parts: Mapping[str, AtomMap] = field(default_factory=dict)
    state: Any = field(default=None, repr=False, compare=False)

    #: Not hashable: ``details`` and ``parts`` are mappings (see :class:`PIDResult`).
    __hash__ = None  # type: ignore[assignment]

    def scaled(self, factor: float) -> SolverInfo:
        """The same information with certificate values, residual and parts multiplied by
        ``factor`` (used to convert nats to another unit)."""
        cert = self.certificate
        if cert is not None:
            cert = Certificate(cert.quantity, cert.lower * factor, cert.upper * factor)
        residual = None if self.residual is None else self.residual * factor
        parts = {name: AtomMap({node: value * factor for node, value in atoms.items()})
                 for name, atoms in self.parts.items()}
        return SolverInfo(self.status, self.converged, self.iterations, cert, residual,
                          dict(self.details), parts, self.state)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "converged": to_plain(self.converged),
                "iterations": to_plain(self.iterations),
                "certificate": None if self.certificate is None else self.certificate.to_dict(),
                "residual": to_plain(self.residual), "details": to_plain(dict(self.details)),
                "parts": {name: {node_label(k): to_plain(v) for k, v in atoms.items()}
                          for name, atoms in self.parts.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SolverInfo:
        """The solver information :meth:`to_dict` returned (without ``state``, which
        :meth:`to_dict` leaves out); a typed error naming ``data`` for anything else."""
        with _reading(data, "SolverInfo", "a SolverInfo"):
            certificate = data.get("certificate")
            converged = _from_plain(data["converged"])
            if not (isinstance(converged, (bool, np.bool_))
                    or (isinstance(converged, np.ndarray) and converged.dtype == bool)):
                raise fail("converged", "must be true or false", "Leave it as to_dict() wrote "
                           "it", converged, kind=PIDTypeError)
            residual = _from_plain(data.get("residual"))
            if residual is not None:
                _check_value(residual, "residual")
            return cls(_text(data["status"], "status"), converged, data.get("iterations"),
                       None if certificate is None else Certificate.from_dict(certificate),
                       residual, dict(data.get("details", {})),
                       {name: AtomMap({k: _from_plain(v) for k, v in atoms.items()})
                        for name, atoms in data.get("parts", {}).items()})


def _from_plain(value: Any) -> Any:
    """A value of :func:`to_plain`'s output back as a number or, for a list (a batch or a
    tensor), a float64 numpy array (a list of true/false, a bool array)."""
    if not isinstance(value, list):
        return value
    arr = np.asarray(value)
    return arr if arr.dtype == bool else np.asarray(value, dtype=np.float64)


@contextmanager
def _reading(data: Any, kind: str, what: str) -> Iterator[None]:
    """Read ``data`` as the dict ``<kind>.to_dict()`` returned (``what`` it holds, for the
    messages): anything else, or any error while reading it, is a typed error naming ``data``
    (the cause chained and quoted)."""
    fix = f"Pass what {kind}.to_dict() returned"
    if not isinstance(data, Mapping):
        raise fail("data", f"is a {type(data).__name__}, not {what} dict", fix,
                   kind=PIDTypeError)
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise fail("data", f"is not {what} ({type(exc).__name__}: {exc})",
                   fix + ", unedited") from exc


def _text(value: Any, name: str, fix: str = "Leave it as to_dict() wrote it") -> str:
    """A string field (``measure``, ``status``), never converted: ``str(None)`` would read
    back as the name ``"None"``."""
    if not isinstance(value, str):
        raise fail(name, f"must be a string, not {type(value).__name__}", fix, value,
                   kind=PIDTypeError)
    return value


def _is_value(value: Any) -> bool:
    """Whether ``value`` is what :func:`_check_value` accepts (checked before any message is
    formatted: results are built in the solvers' loops)."""
    if isinstance(value, float):            # the common case first
        return True
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iuf"
    if is_torch(value):
        return not value.dtype.is_complex and str(value.dtype) != "torch.bool"
    return isinstance(value, numbers.Real)


def _check_value(value: Any, name: str) -> None:
    """A value a result holds (an atom, the mutual information, a bound): a real number, a
    numeric numpy array (a batch) or a real torch tensor. Anything else (a string, None, a
    bool) is a :class:`~pidkit.errors.PIDTypeError` naming ``name``: the table, the plot and
    :meth:`PIDResult.to_dict` would fail on it later, far from its cause."""
    if not _is_value(value):
        raise fail(name, f"must be a number, a numeric array or a tensor, not "
                   f"{type(value).__name__}", "Pass the values a measure computed", value,
                   kind=PIDTypeError)


class AtomMap(Mapping):
    """Read-only mapping lattice node -> atom value that also accepts labels like ``"{0}{1}"``.

    Keys are stored as nodes in the lattice's order (:func:`~pidkit.lattice.canonical_node`), so
    maps built from ``{"{0}{1}": 1.0}``, ``{((0,), (1,)): 1.0}`` and ``{((1,), (0,)): 1.0}``
    are the same. Looking up
    a malformed label (``atoms["junk"]``) is a :class:`~pidkit.errors.PIDValueError` naming it;
    any other key that is not a node of the map (``atoms["{0}{2}"]`` in a two-source
    decomposition, ``atoms[5]``) is a :class:`~pidkit.errors.PIDKeyError`, a ``KeyError`` as
    for any mapping, whose message lists the atoms there are; an unhashable key
    (``atoms[[0]]``) is a :class:`~pidkit.errors.PIDTypeError`. :meth:`get` returns its
    default for all three.
    """

    def __init__(self, values: Mapping[Node | str, Any]):
        if not isinstance(values, Mapping):
            raise fail("atoms", f"must be a mapping of lattice nodes to values, not "
                       f"{type(values).__name__}", "Pass e.g. {'{0}{1}': 0.1, '{0}': 0.2, "
                       "'{1}': 0.0, '{0:1}': 0.7}", kind=PIDTypeError)
        # keyed by exactly the nodes of one lattice (the results pidkit builds): taken as
        # they are; labels, reordered nodes and the rest are mapped by nodes_keyed
        self._values = dict(values) if _whole_lattice(values) else nodes_keyed(values, "atoms")

    def __getitem__(self, key: Node | str) -> Any:
        node = canonical_node(key)
        try:
            return self._values[node]
        except (KeyError, TypeError) as exc:
            labels = [node_label(k) for k in self._values]
            forms = (f"Give a label such as {labels[0]!r} or a node (a tuple of tuples of "
                     "source indices, e.g. ((0,), (1,)))" if labels else "The map is empty")
            if isinstance(exc, TypeError):
                raise fail("atoms", f"cannot be looked up with a {type(key).__name__} "
                           f"(unhashable)", forms, key, kind=PIDTypeError) from None
            shown = ", ".join(labels[:12]) + (f", ... ({len(labels)} in all)"
                                              if len(labels) > 12 else "")
            raise fail("atoms", f"has no atom {_key_text(node)}; its atoms: {shown or 'none'}",
                       forms, kind=PIDKeyError) from None

    def __contains__(self, key: object) -> bool:
        try:
            return canonical_node(key) in self._values  # type: ignore[arg-type]
        except (ValueError, TypeError):
            return False

    def get(self, key: Node | str, default: Any = None) -> Any:
        """The value of ``key`` (node or label), or ``default`` when it is not a key, whether
        a malformed label, a node of another lattice or an unhashable object (the
        :class:`~collections.abc.Mapping` contract)."""
        try:
            return self[key]
        except (KeyError, ValueError, TypeError):
            return default

    def __iter__(self) -> Iterator[Node]:
        return iter(self._values)

    def items(self):
        """The (node, value) pairs: the stored dict's view (the mapping default looks each key
        up again through :meth:`__getitem__`, which parses it)."""
        return self._values.items()

    def values(self):
        """The values, in lattice order: the stored dict's view."""
        return self._values.values()

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{node_label(k)!r}: {v!r}" for k, v in self._values.items())
        return f"AtomMap({{{inner}}})"


def _key_text(key: Any) -> str:
    """A looked-up key as the message of a failed lookup shows it: a node as its label, and
    anything else by its repr (shortened)."""
    if _is_node(key):
        return node_label(key)
    text = repr(key)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True, eq=False)   # eq: __eq__ below; dataclass would add a field hash
class PIDResult:
    """A partial information decomposition: one value per node of the redundancy lattice.

    Results are not hashable (``hash(r)`` raises the standard ``TypeError: unhashable type``):
    their atoms, details and intervals are mappings that may hold arrays or tensors, whose
    equality is element-wise. Key a cache by ``json.dumps(to_plain(r.to_dict()))`` instead.

    Attributes
    ----------
    atoms : AtomMap
        Lattice node -> partial information atom, for any number of sources. Keys are nodes
        (tuples of sorted tuples of source indices) and also accept labels, ``r.atoms["{0}{1}"]``.
    measure : str
        Name of the redundancy measure (``"broja"``, ``"imin"``, ``"mmi"``, ``"ccs"``, ...).
    base : float
        Logarithm base of every value (2: bits, e: nats).
    mutual_information : float
        :math:`I(Y; X_0, \\dots, X_{n-1})`, the sum of all atoms.
    solver : SolverInfo
        Status, certificate or residual of the computation.
    source_names : tuple of str
        A name per source (axes, grouped axes or variable names), for tables and plots.
    target_name : str
        Name of the target.
    intervals : mapping or None
        Node -> (lower, upper) confidence interval, when an estimator from samples provides one.
    details : dict
        Measure- or estimator-specific extras (marginal mutual informations, sample counts, ...).
    """

    atoms: AtomMap
    measure: str
    base: float
    mutual_information: Any
    solver: SolverInfo = field(default_factory=SolverInfo)
    source_names: tuple[str, ...] = ()
    target_name: str = TARGET_NAME
    intervals: Mapping[Node, tuple[float, float]] | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    #: Not hashable: a frozen dataclass would hash its fields, and the atoms, details and
    #: intervals are mappings that may hold arrays (see the class notes).
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        """Whether two results hold the same data: their :meth:`to_dict` as plain Python data
        (:func:`to_plain`) are equal. One ``bool`` whatever the atoms and details hold (the
        field-by-field comparison of a dataclass asked a numpy array of several eigenvalues
        for its truth value, a raw ``ValueError``), so a result equals the one
        :meth:`from_dict` reads back from its JSON."""
        if not isinstance(other, PIDResult):
            return NotImplemented
        return to_plain(self.to_dict()) == to_plain(other.to_dict())

    def __post_init__(self):
        if not isinstance(self.atoms, AtomMap):
            object.__setattr__(self, "atoms", AtomMap(self.atoms))
        if not self.atoms:
            raise fail("atoms", "is empty", "Give one value per node of the redundancy lattice "
                       "(e.g. 4 nodes for 2 sources)", dict(self.atoms))
        if not _whole_lattice(self.atoms):
            bad = [k for k in self.atoms if not _is_node(k)]
            if bad:
                raise fail("atoms", f"has keys that are not lattice nodes, e.g. {bad[0]!r}",
                           "Key atoms by labels such as '{0}{1}' or nodes such as ((0,), (1,))",
                           kind=PIDTypeError)
            n = self.n_sources
            fix = "Give one value per node of the redundancy lattice (e.g. 4 nodes for 2 sources)"
            if n > MAX_SOURCES:
                raise fail("atoms", f"names source {n - 1}, but lattices are built for at most "
                           f"{MAX_SOURCES} sources", fix)
            nodes = lattice(n).index
            missing = [node_label(k) for k in nodes if k not in self.atoms]
            extra = [k for k in self.atoms if k not in nodes]
            raise fail("atoms", f"are not the nodes of the lattice of {n} source(s): "
                       f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} not in it "
                       f"(e.g. {extra[:3]})", fix)
        object.__setattr__(self, "base", check_base(self.base))
        for node, value in self.atoms.items():
            if not _is_value(value):
                _check_value(value, f"atoms[{node_label(node)!r}]")
        _check_value(self.mutual_information, "mutual_information")
        for name in ("measure", "target_name"):
            _text(getattr(self, name), name, f"Pass a string, e.g. {name}="
                  f"{'broja' if name == 'measure' else TARGET_NAME!r}")
        if not self.source_names:
            object.__setattr__(self, "source_names", default_source_names(self.n_sources))
        names = self.source_names
        if (isinstance(names, (str, bytes)) or not isinstance(names, Sequence)
                or not all(isinstance(n, str) for n in names)):
            raise fail("source_names", "must be a sequence of strings, one per source",
                       "Pass e.g. ('X0', 'X1'), or leave it out", names, kind=PIDTypeError)
        if len(names) != self.n_sources:
            raise fail("source_names", f"names {len(names)} source(s), the atoms have "
                       f"{self.n_sources}", "Give one name per source, or leave it out", names)
        object.__setattr__(self, "source_names", tuple(names))
        if not isinstance(self.solver, SolverInfo):
            raise fail("solver", f"is a {type(self.solver).__name__}, not a SolverInfo",
                       "Leave it out (SolverInfo() by default) or pass a SolverInfo",
                       kind=PIDTypeError)
        if not isinstance(self.details, Mapping):
            raise fail("details", f"is a {type(self.details).__name__}, not a mapping",
                       "Pass a dict", kind=PIDTypeError)
        if self.intervals is not None:      # keyed like the atoms: labels or nodes, all of them
            intervals = AtomMap(self.intervals) if not isinstance(self.intervals, AtomMap) \
                else self.intervals
            missing = [node_label(k) for k in self.atoms if k not in intervals]
            if missing:
                raise fail("intervals", f"misses the atoms {missing[:3]}", "Give one "
                           "(lower, upper) pair per atom, keyed like the atoms")
            for node, bounds in intervals.items():
                name = f"intervals[{node_label(node)!r}]"
                if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
                    raise fail(name, "must be a (lower, upper) pair", "Give one (lower, "
                               "upper) pair per atom, keyed like the atoms", bounds,
                               kind=PIDTypeError)
                for bound in bounds:
                    if not _is_value(bound):
                        _check_value(bound, name)
            object.__setattr__(self, "intervals", intervals)

    # -- lattice views -------------------------------------------------------------------
    @property
    def lattice(self) -> Lattice:
        """The redundancy lattice the atoms live on."""
        return lattice(self.n_sources)

    @property
    def n_sources(self) -> int:
        return max(i for node in self.atoms for part in node for i in part) + 1

    @property
    def redundancy(self) -> Any:
        """The bottom atom ``{0}{1}...``: information every source carries."""
        return self.atoms[self.lattice.bottom]

    @property
    def synergy(self) -> Any:
        """The top atom ``{0:1:...}``: information only all sources together carry."""
        return self.atoms[self.lattice.top]

    @property
    def unique(self) -> tuple[Any, ...]:
        """The single-source atoms ``{i}``, one per source: information only source i carries."""
        return tuple(self.atoms[((i,),)] for i in range(self.n_sources))

    @property
    def unit(self) -> str:
        """``"bits"``, ``"nats"``, ``"hartleys"`` or ``"log base b"`` (:func:`unit_name`)."""
        return unit_name(self.base)

    # -- conversions ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data: atoms keyed by label, and everything else."""
        out = {
            "measure": self.measure,
            "base": self.base,
            "unit": self.unit,
            "source_names": list(self.source_names),
            "target_name": self.target_name,
            "mutual_information": to_plain(self.mutual_information),
            "atoms": {node_label(k): to_plain(v) for k, v in self.atoms.items()},
            "redundancy": to_plain(self.redundancy),
            "unique": [to_plain(u) for u in self.unique],
            "synergy": to_plain(self.synergy),
            "solver": self.solver.to_dict(),
            "details": to_plain(dict(self.details)),
        }
        if self.intervals is not None:
            out["intervals"] = {node_label(k): to_plain(v) for k, v in self.intervals.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PIDResult:
        """The result :meth:`to_dict` returned (e.g. read back from JSON): the same atoms,
        certificate and settings, with values as plain Python numbers (float64 numpy arrays
        for batches and tensors); ``to_dict`` of it equals the data given. A typed error naming
        ``data`` for anything else.

        >>> import json, pidkit
        >>> r = pidkit.pid(pidkit.gates.gate("AND"), measure="broja")
        >>> back = PIDResult.from_dict(json.loads(json.dumps(r.to_dict())))
        >>> back.to_dict() == r.to_dict(), back.solver.certificate.gap < 1e-9
        (True, True)
        """
        with _reading(data, "PIDResult", "a PID result"):
            atoms = {k: _from_plain(v) for k, v in dict(data["atoms"]).items()}
            intervals = data.get("intervals")
            names = data["source_names"]
            if not isinstance(names, list):     # to_dict writes a list; a string would split
                raise fail("source_names", f"must be a list of strings, not "
                           f"{type(names).__name__}", "Leave it as to_dict() wrote it", names,
                           kind=PIDTypeError)
            return cls(atoms, _text(data["measure"], "measure"), data["base"],
                       _from_plain(data["mutual_information"]),
                       SolverInfo.from_dict(data["solver"]), tuple(names),
                       _text(data["target_name"], "target_name"),
                       None if intervals is None else
                       {k: tuple(_from_plain(b) for b in v) for k, v in intervals.items()},
                       dict(data.get("details", {})))

    def __str__(self) -> str:
        names = ", ".join(self.source_names)
        head = (f"PID of {self.target_name} from ({names}), measure={self.measure}, "
                f"in {self.unit}")
        has_ci = self.intervals is not None
        width = max(len(node_label(k)) for k in self.atoms)
        width = max(width, len("I(Y;all)"))
        lines = [head, f"  {'atom':<{width}}  {'value':>12}" + ("  interval" if has_ci else "")]
        for node, value in self.atoms.items():
            line = f"  {node_label(node):<{width}}  {_fmt(value):>12}"
            if has_ci:
                lo, hi = self.intervals[node]
                line += f"  [{_fmt(lo)}, {_fmt(hi)}]"
            lines.append(line)
        lines.append(f"  {'I(Y;all)':<{width}}  {_fmt(self.mutual_information):>12}")
        status = f"  solver: {self.solver.status}"
        if self.solver.certificate is not None:
            status += f", certified gap {_fmt_bound(self.solver.certificate.gap)} {self.unit}"
        elif self.solver.residual is not None:
            status += f", residual {_fmt_bound(self.solver.residual)}"
        lines.append(status)
        return "\n".join(lines)

    def plot(self, ax=None, **bar_kwargs):
        """Bar chart of the atoms (matplotlib, imported only here). Returns the axes.

        ``bar_kwargs`` go to :meth:`matplotlib.axes.Axes.bar` (``color=``, ``width=``,
        ``alpha=`` ...); a keyword it does not take, or one that sets what the plot draws
        (``x``, ``height``, ``data``), is a :class:`~pidkit.errors.PIDTypeError` naming it.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("PIDResult.plot needs matplotlib: pip install matplotlib") from exc
        _check_bar_kwargs(bar_kwargs)
        if ax is not None and not callable(getattr(ax, "bar", None)):
            raise fail("ax", f"must be matplotlib axes, not {type(ax).__name__}",
                       "Pass ax=None (new figure) or axes from plt.subplots()", kind=PIDTypeError)
        if ax is None:
            _, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(self.atoms) + 2), 3.2))
        labels = [node_label(k) for k in self.atoms]
        values = [float(np.asarray(to_plain(v)).mean()) for v in self.atoms.values()]
        bars = ax.bar(labels, values, **bar_kwargs)
        if self.intervals is not None:
            # the interval as a segment, not as error bars around the estimate: a basic or
            # normal bootstrap interval need not contain its point estimate
            low = [float(np.asarray(to_plain(self.intervals[k][0])).mean()) for k in self.atoms]
            high = [float(np.asarray(to_plain(self.intervals[k][1])).mean()) for k in self.atoms]
            ax.vlines(range(len(labels)), low, high, colors="black")
            ax.hlines(low + high, [i - 0.1 for i in range(len(labels))] * 2,
                      [i + 0.1 for i in range(len(labels))] * 2, colors="black")
        ax.set_ylabel(f"information ({self.unit})")
        ax.set_title(f"{self.measure} PID, I(Y;all) = {_fmt(self.mutual_information)}")
        ax.tick_params(axis="x", rotation=45 if len(labels) > 6 else 0)
        return bars.patches[0].axes


#: Keywords of ``Axes.bar`` that are not properties of its bars (``Rectangle.set_<name>``).
_BAR_OPTIONS = frozenset({"width", "bottom", "align", "tick_label", "xerr", "yerr", "ecolor",
                          "capsize", "error_kw", "log"})

#: Keywords of ``Axes.bar`` that :meth:`PIDResult.plot` sets: the atoms' labels and values.
_SET_BY_PLOT = ("x", "height", "data")


def _check_bar_kwargs(bar_kwargs: Mapping[str, Any]) -> None:
    """Refuse, before drawing, a keyword that ``Axes.bar`` does not take (matplotlib would
    raise a bare ``AttributeError`` from inside the artist) or that the plot sets itself."""
    from matplotlib.patches import Rectangle

    for key in bar_kwargs:
        if key in _SET_BY_PLOT:
            raise fail(key, "is set by PIDResult.plot (the atoms' labels and values)",
                       "Leave it out", kind=PIDTypeError)
        if key not in _BAR_OPTIONS and not hasattr(Rectangle, f"set_{key}"):
            raise fail(key, "is not a keyword of PIDResult.plot or of matplotlib's Axes.bar",
                       "Pass ax= or keywords of Axes.bar such as color=, width=, edgecolor=, "
                       "alpha=", kind=PIDTypeError)


#: Number of nodes of the redundancy lattice of 1..5 sources -> number of sources.
_SOURCES_BY_SIZE = {1: 1, 4: 2, 18: 3, 166: 4, 7579: 5}


def _whole_lattice(atoms: Mapping[Any, Any]) -> bool:
    """Whether ``atoms`` is keyed by exactly the nodes of one lattice (the results pidkit
    builds): one set comparison instead of :func:`_is_node` per key (a third of the time of a
    four-source MMI call) or :func:`~pidkit.lattice.canonical_node` per key."""
    n = _SOURCES_BY_SIZE.get(len(atoms))
    return n is not None and _lattice_index(n).keys() >= atoms.keys()


@functools.cache
def _lattice_index(n_sources: int) -> Mapping[Node, int]:
    """The node -> position index of the lattice of ``n_sources`` sources (looked up once per
    size: :func:`~pidkit.lattice.lattice` checks its argument on every call)."""
    return lattice(n_sources).index


def _fmt_bound(value: Any) -> str:
    """A non-negative error bound; for a batch, the largest one (the bound that holds for all)."""
    arr = np.asarray(to_plain(value), dtype=float)
    return f"{arr.item():.2e}" if arr.size == 1 else f"max {arr.max():.2e} (n={arr.size})"


def _fmt(value: Any) -> str:
    value = to_plain(value)
    if isinstance(value, list):
        arr = np.asarray(value, dtype=float)
        return f"mean {arr.mean():.6f} (n={arr.size})"
    return f"{round(float(value), 6) + 0.0:.6f}"  # never prints -0.000000
