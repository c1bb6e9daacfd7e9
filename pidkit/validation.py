"""Input checks at the public boundary, with one error format.

Every check raises :class:`~pidkit.errors.PIDValueError` or :class:`~pidkit.errors.PIDTypeError`
with a message ``"<argument>: <what was wrong> (got <value>). <how to fix it>."`` so that users
see which argument failed and what to do, never a numpy traceback.

Packages built on pidkit (``pidkit_distill``) use these checks and :func:`fail` so that their
errors read the same.

Examples
--------
>>> from pidkit.validation import check_int, fail
>>> check_int(3, "epochs", 1)
3
>>> raise fail("epochs", "must be >= 1", "Pass a positive integer", 0)
Traceback (most recent call last):
...
pidkit.errors.PIDValueError: epochs: must be >= 1 (got 0). Pass a positive integer
"""

from __future__ import annotations

import contextlib
import itertools
import math
import numbers
import os
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np

from ._backend import is_torch
from .errors import PIDTypeError, PIDValueError

__all__ = [
    "MAX_TABLE_CELLS",
    "PMF_SUM_ATOL",
    "PMF_SUM_ULPS",
    "as_float_array",
    "as_host_array",
    "as_numpy",
    "as_scalar",
    "assume_finite",
    "check_aligned",
    "check_axis_list",
    "check_base",
    "check_bootstrap",
    "check_choice",
    "check_finite",
    "check_flag",
    "check_fraction",
    "check_int",
    "check_level",
    "check_n_boot",
    "check_options",
    "check_output_file",
    "check_pmf",
    "check_positive",
    "check_samples",
    "check_seed",
    "check_table_size",
    "check_target_sources",
    "fail",
    "host_numpy",
    "is_dit_distribution",
    "is_outcome_mapping",
    "pandas_as_list",
    "pmf_from_mapping",
    "pmf_sum_atol",
    "pmf_sum_error",
    "reject_dit",
    "reject_masked",
    "reject_meta",
    "reject_mixed_labels",
]

#: Least tolerance on ``|sum(p) - 1|`` below which a pmf counts as normalised (float64 pmfs).
PMF_SUM_ATOL = 1e-8

#: A pmf stored in a lower precision may miss 1 by this many machine epsilons of its dtype
#: (measured: a pmf rounded to float32, float16 or bfloat16, or normalised in that dtype, misses
#: 1 by at most about one epsilon; see :func:`pmf_sum_atol`).
PMF_SUM_ULPS = 8

#: Largest joint table (number of cells) built from integer codes: 10**8 cells, 800 MB of
#: float64 or int64 counts.
MAX_TABLE_CELLS = 10**8


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(name: str, problem: str, fix: str, value: Any = None, *, kind: type = PIDValueError):
    """Build the error for argument ``name``: ``problem``, the value received, and ``fix``.

    Parameters
    ----------
    name : str
        The argument (or option) that failed.
    problem : str
        What was wrong with it.
    fix : str
        How to fix it.
    value : object, optional
        The value received, shown shortened as ``(got ...)``; ``None`` shows nothing.
    kind : type, default PIDValueError
        The exception class, :class:`~pidkit.errors.PIDValueError` or
        :class:`~pidkit.errors.PIDTypeError` (:class:`~pidkit.errors.PIDKeyError` and
        :class:`~pidkit.errors.PIDIndexError` for a lookup that finds nothing).

    Returns
    -------
    PIDKitError
        The error, to be raised by the caller (``raise fail(...)``).
    """
    got = "" if value is None else f" (got {_short(value)})"
    return kind(f"{name}: {problem}{got}. {fix}")


def check_flag(value: Any, name: str, fix: str | None = None) -> bool:
    """``True`` or ``False`` (a Python or numpy bool); anything else, ``"false"`` or ``1``
    included, is a typed error (never coerced). ``fix``: the advice (default: pass a bool)."""
    if not isinstance(value, (bool, np.bool_)):
        raise fail(name, "must be True or False", fix or f"Pass {name}=True or {name}=False",
                   value, kind=PIDTypeError)
    return bool(value)


def check_base(base: Any, name: str = "base") -> float:
    """Return ``base`` as a float, rejecting anything that is not a finite logarithm base > 1.

    A base ``b`` in ``(0, 1)`` is a valid logarithm base but not a unit of information: it
    multiplies every entropy and atom by ``1 / log(b) < 0``, so every non-negative quantity
    comes out negative. Information is measured in bits (2), nats (e), hartleys (10) or any
    other base ``b > 1``. A 0-d array or tensor counts as the number it holds
    (:func:`as_scalar`), as for every other numeric setting.
    """
    base = as_scalar(base)
    if isinstance(base, bool) or not isinstance(base, numbers.Real):
        raise fail(name, "must be a real number",
                   "Use 2 for bits, math.e for nats, 10 for hartleys",
                   base, kind=PIDTypeError)
    problem = "must be a finite logarithm base > 1 to measure information"
    fix = "Use 2 for bits, math.e for nats, 10 for hartleys"
    try:
        value = float(base)
    except OverflowError:       # an integer beyond float's range (2**1100): not finite
        raise fail(name, problem, fix, base) from None
    if not np.isfinite(value) or value <= 1:
        raise fail(name, problem, fix, value)
    return value


#: torch dtypes numpy has no equivalent of; host copies of them are widened to float32 (exact).
_WIDENED_TORCH_DTYPES = ("torch.bfloat16", "torch.float8")


def host_numpy(x: Any) -> np.ndarray:
    """A numpy copy of the torch tensor ``x``: detached from autograd, on the host, and widened
    to float32 when numpy has no such dtype (bfloat16, float8; the widening is exact).

    Examples
    --------
    >>> import torch                                                # doctest: +SKIP
    >>> host_numpy(torch.ones(2, dtype=torch.bfloat16, requires_grad=True)).dtype  # doctest: +SKIP
    dtype('float32')
    """
    t = x.detach()
    if str(t.dtype).startswith(_WIDENED_TORCH_DTYPES):
        t = t.float()
    return t.cpu().numpy()


#: Set by :func:`assume_finite`: :func:`check_finite` returns at once.
_ASSUME_FINITE: ContextVar[bool] = ContextVar("pidkit_assume_finite", default=False)


def check_finite(arr: np.ndarray, name: str, *, what: str = "", offset: int = 0,
                 task: str = "estimating") -> None:
    """Reject NaN and infinite samples: name ``name`` (the argument), how many samples
    (rows of ``arr``, shape ``(n, ...)``) hold them and the first one's row.

    Parameters
    ----------
    arr : numpy.ndarray
        Samples along the first axis (integer arrays pass without a scan).
    name : str
        The argument named in the message.
    what : str, optional
        The part of ``name`` that holds the samples (e.g. ``"teacher layer 'fc2'"``), named
        after ``name``.
    offset : int, default 0
        For a chunk of a larger array or stream: the samples before it, so that the row is the
        one in the caller's order (the message then says which chunk the count is of).
    task : str, default "estimating"
        Ends the advice: "Drop or impute those samples before <task>".

    Inside :func:`assume_finite` nothing is scanned.
    """
    if _ASSUME_FINITE.get() or arr.dtype.kind != "f":
        return
    finite = np.isfinite(arr).all(axis=tuple(range(1, arr.ndim)))  # one flag per sample
    if finite.all():
        return
    rows = np.flatnonzero(~finite)
    where = "" if offset == 0 else f" of the batch starting at row {offset}"
    raise fail(name, f"{what + ': ' if what else ''}contains NaN or infinite values in "
               f"{rows.size} sample(s){where}, first at row {offset + int(rows[0])}",
               f"Drop or impute those samples before {task}")


@contextlib.contextmanager
def assume_finite() -> Iterator[None]:
    """Within this block :func:`check_finite` does not scan: for a caller that has checked
    the same samples already (with a more telling message, e.g. each batch's rows in the order
    the user gave them, as pidkit_distill's audits do when they stream features) and hands them
    on to estimators that would check them again (the scikit-learn ``assume_finite`` option,
    scoped to the block and to the current thread or task)."""
    token = _ASSUME_FINITE.set(True)
    try:
        yield
    finally:
        _ASSUME_FINITE.reset(token)


def _kind(value: Any) -> str:
    """``"None"`` or ``"a dict"``: what was passed, for a message."""
    return "None" if value is None else f"a {type(value).__name__}"


def reject_masked(x: Any, name: str) -> None:
    """Refuse a numpy masked array: converting it to an ndarray drops the mask, so the hidden
    entries would be used as data (and its masked sum differs from the sum of its data).

    Raises
    ------
    PIDTypeError
        ``x`` is a ``numpy.ma.MaskedArray``; the message says how to make the intent explicit.

    Examples
    --------
    >>> import numpy as np
    >>> reject_masked(np.ma.masked_array([0.5, 0.5], mask=[0, 1]), "p")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pidkit.errors.PIDTypeError: p: is a numpy masked array, whose mask pidkit would ignore...
    """
    if isinstance(x, np.ma.MaskedArray):
        raise fail(name, "is a numpy masked array, whose mask pidkit would ignore",
                   f"Say what the masked entries mean: fill them ({name}.filled(0), e.g. zero "
                   f"probability in a pmf) or drop them ({name}.compressed(), or index the "
                   "rows to keep)",
                   kind=PIDTypeError)


def is_dit_distribution(obj: Any) -> bool:
    """Whether ``obj`` is a ``dit`` distribution, checked without importing dit."""
    return any(cls.__module__.split(".")[0] == "dit" for cls in type(obj).__mro__)


def reject_dit(x: Any, name: str) -> None:
    """Refuse a ``dit`` distribution where an array is expected: numpy converts it to the array
    of its *outcomes* (one row per outcome, one column per variable), which would be used
    silently as probabilities, counts or samples.

    Raises
    ------
    PIDTypeError
        ``x`` is a dit distribution; the message says how to convert it
        (:func:`pidkit.from_dit`).
    """
    if is_dit_distribution(x):
        raise fail(name, "is a dit distribution, which numpy would read as its table of "
                   "outcomes", f"Convert it to a pmf with pmf, names = pidkit.from_dit({name}) "
                   "(pidkit.pid accepts it directly)", kind=PIDTypeError)


def _is_missing(label: Any) -> bool:
    """Whether an outcome's label marks a missing value: None or a float NaN."""
    return label is None or (isinstance(label, (float, np.floating)) and label != label)


def _is_code(label: Any) -> bool:
    """Whether an outcome's label is a code: a non-negative integer or whole-number float."""
    if isinstance(label, (numbers.Integral, np.integer, np.bool_)):
        return label >= 0
    return (isinstance(label, (float, np.floating)) and math.isfinite(label) and label >= 0
            and label == int(label))


def _position_codes(labels: list[Any], name: str, position: int) -> tuple[list[int], int]:
    """The index of each label along the axis of key position ``position``, and the axis'
    length: non-negative integers (and whole-number floats, ``2.0``, the same dict key as
    ``2``) are their own index, as :func:`pidkit.joint_pmf` reads integer codes; any other
    labels are ranked in sorted order, as it ranks string labels."""
    if all(_is_code(x) for x in labels):
        codes = [int(x) for x in labels]
        return codes, max(codes) + 1
    problem = f"has labels at key position {position} that do not sort into one order"
    fix = ("Use labels of one kind at each key position (all integers, or all strings), "
           "e.g. {('a', 0): 0.5, ('b', 1): 0.5}")
    try:
        order = sorted(set(labels))
    except TypeError as exc:    # 1 next to "a", or unorderable objects
        raise fail(name, f"{problem} ({exc})", fix, kind=PIDTypeError) from exc
    if any(not a < b for a, b in itertools.pairwise(order)):    # a partial order (sets)
        raise fail(name, problem, fix, order, kind=PIDTypeError)
    rank = {label: i for i, label in enumerate(order)}
    return [rank[x] for x in labels], len(order)


def _probability(value: Any, outcome: tuple, name: str) -> Any:
    """The probability ``value`` of ``outcome``: a real number (numpy scalars kept, for their
    dtype; other numbers, 0-d arrays and tensors as floats), finite and non-negative."""
    if not isinstance(value, np.generic):
        value = as_scalar(value)
    where = f"the probability of outcome {_short(outcome, 40)}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise fail(name, f"{where} must be a real number", "Give every outcome a float "
                   "probability, e.g. {(0, 0, 0): 0.25, ...}", value, kind=PIDTypeError)
    try:
        finite = math.isfinite(value)
    except OverflowError:       # an integer beyond float's range
        finite = False
    if not finite:
        raise fail(name, f"{where} is not a finite float", "Remove or replace that outcome",
                   value)
    if value < 0:
        raise fail(name, f"{where} is negative", "Probabilities must be >= 0", value)
    return value if isinstance(value, np.generic) else float(value)


def is_outcome_mapping(p: Any) -> bool:
    """Whether ``p`` gives a pmf outcome by outcome (:func:`pmf_from_mapping`): a mapping, or a
    pandas Series indexed by outcome tuples (a ``MultiIndex``, as
    ``DataFrame.value_counts(normalize=True)`` returns), checked without importing pandas."""
    if isinstance(p, Mapping):
        return True
    kind = type(p)
    return (kind.__module__.split(".")[0] == "pandas" and kind.__name__ == "Series"
            and type(p.index).__name__ == "MultiIndex")


def pmf_from_mapping(p: Any, name: str = "p") -> np.ndarray:
    """The array, one axis per variable, of a pmf given as ``{outcome: probability}`` (the
    format of BROJA_2PID: ``{(y, x0, x1): probability}``), or as a pandas Series indexed by
    outcome tuples (``df.value_counts(normalize=True)``, one key position per column).

    Each key is a tuple with one label per variable, every key of the same length; key position
    ``k`` becomes axis ``k``. Labels may be any hashable values that sort together at each
    position. Where every label of a position is a non-negative integer (or a whole-number
    float), the labels index their axis directly, as :func:`pidkit.joint_pmf` reads integer
    codes (label 3 is index 3; indices no outcome uses hold 0); any other labels (strings,
    negative integers, fractions, tuples) are numbered ``0, 1, ...`` in sorted order, as
    :func:`pidkit.joint_pmf` numbers string labels.
    Outcomes the mapping leaves out have probability 0. The result depends on neither the
    order of the mapping nor, up to that numbering, the labels.

    Parameters
    ----------
    p : mapping or pandas.Series
        Outcome tuples to probabilities: real numbers, finite and non-negative (whether they
        sum to 1 is the caller's check, :func:`check_pmf`).
    name : str, default "p"
        The argument named in the errors.

    Returns
    -------
    ndarray
        The probabilities: float64, or the dtype numpy gives the values (float32 for float32
        scalars), so that :func:`pmf_sum_atol` applies the tolerance of their precision.

    Raises
    ------
    PIDTypeError
        A key that is not a tuple, a probability that is not a real number, or labels at one
        key position that do not sort together.
    PIDValueError
        No outcomes, keys of different lengths, a missing label (None, NaN), a negative or
        non-finite probability (the message names the outcome), or integer labels so large
        that the table would exceed :data:`MAX_TABLE_CELLS`.

    Examples
    --------
    >>> pmf_from_mapping({(0, 0, 0): 0.25, (0, 0, 1): 0.25, (0, 1, 0): 0.25, (1, 1, 1): 0.25})[1]
    array([[0.  , 0.  ],
           [0.  , 0.25]])
    >>> pmf_from_mapping({("no", "up"): 0.5, ("yes", "down"): 0.5})
    array([[0. , 0.5],
           [0.5, 0. ]])
    """
    if len(p) == 0:
        raise fail(name, "is an empty mapping: it holds no outcomes",
                   "Give each outcome's probability, e.g. {(0, 0, 0): 0.25, ...}")
    outcomes, values = [], []
    for key, value in p.items():
        if not isinstance(key, tuple):
            fix = "Key each probability by a tuple with one label per variable, e.g. (0, 1, 1)"
            if isinstance(key, str):
                fix += (f"; for dit-style strings such as '011' convert the keys: "
                        f"{{tuple(k): v for k, v in {name}.items()}}")
            raise fail(name, f"has key {_short(key, 40)}, which is not a tuple of labels", fix,
                       kind=PIDTypeError)
        fix = "Give every outcome one label per variable, in the same order"
        if not key:
            raise fail(name, "has the key (), which holds no variable", fix)
        if outcomes and len(key) != len(outcomes[0]):
            raise fail(name, f"has keys of different lengths: {_short(outcomes[0], 40)} has "
                       f"{len(outcomes[0])} labels, {_short(key, 40)} has {len(key)}", fix)
        missing = [k for k, label in enumerate(key) if _is_missing(label)]
        if missing:
            raise fail(name, f"outcome {_short(key, 40)} holds a missing label (None or NaN) "
                       f"at key position {missing[0]}",
                       "Give every variable a value in every outcome")
        outcomes.append(key)
        values.append(_probability(value, key, name))
    columns = [_position_codes([o[k] for o in outcomes], name, k)
               for k in range(len(outcomes[0]))]
    shape = tuple(size for _, size in columns)
    check_table_size(shape, [f"{name} (key position {k})" for k in range(len(shape))],
                     fix="Integer labels index their axis directly (as in pidkit.joint_pmf): "
                         "relabel that position 0, 1, ..., k-1, or use string labels")
    given = np.asarray(values)
    arr = np.zeros(shape, dtype=given.dtype)
    arr[tuple(np.array([codes for codes, _ in columns]))] = given
    return arr


def reject_meta(x: Any, name: str) -> None:
    """Refuse a torch tensor on the meta device where values are read: it has a shape and a
    dtype but no data (torch's own error at the first read names neither the argument nor a
    fix).

    Raises
    ------
    PIDTypeError
        ``x`` is a meta tensor.

    Examples
    --------
    >>> import torch                                                # doctest: +SKIP
    >>> reject_meta(torch.empty(2, device="meta"), "p")             # doctest: +SKIP
    Traceback (most recent call last):
    ...
    pidkit.errors.PIDTypeError: p: is a torch tensor on the meta device, which holds no values...
    """
    if is_torch(x) and getattr(x, "is_meta", False):
        raise fail(name, "is a torch tensor on the meta device, which holds no values",
                   "Pass a tensor with data: materialise it on a real device first (e.g. "
                   "module.to_empty(device='cpu'), then load the weights)", kind=PIDTypeError)


def as_numpy(x: Any, name: str) -> np.ndarray:
    """``np.asarray(x)`` for a container that is not itself an array (a list, a tuple), with a
    typed error naming ``name`` where numpy cannot read an element: a torch tensor that
    requires grad (torch's own RuntimeError named neither). A ragged nesting stays numpy's
    ValueError, which callers word for their argument."""
    try:
        return np.asarray(x)
    except RuntimeError as exc:     # torch: "Can't call numpy() on Tensor that requires grad"
        raise fail(name, f"holds elements numpy cannot read ({exc})",
                   "Stack a list of tensors into one (torch.stack), or detach them first",
                   kind=PIDTypeError) from exc


def _numeric_array(p: Any, name: str, what: str = "probabilities") -> np.ndarray:
    """``p`` as a numeric (bool, integer or real) numpy array of its own dtype; ``what`` its
    entries are, for the messages."""
    if isinstance(p, (str, bytes)):
        raise fail(name, f"must be an array of {what}, not a string",
                   "Pass a numpy array or nested lists of numbers", p, kind=PIDTypeError)
    reject_masked(p, name)
    reject_dit(p, name)
    if isinstance(p, np.ndarray):
        arr = np.asarray(p)     # a base-class view: np.matrix keeps 2 axes under every reduction
    elif is_torch(p):
        reject_meta(p, name)
        if p.dtype.is_complex:
            raise fail(name, f"must hold real numbers, not dtype {p.dtype}",
                       "Pass a real-valued tensor", kind=PIDTypeError)
        arr = host_numpy(p)
    else:
        try:
            arr = as_numpy(p, name)
        except ValueError as exc:  # numpy refuses ragged nested sequences
            raise fail(name, "is a ragged nested sequence",
                       "Give every axis the same length (pad with zero probabilities)",
                       kind=PIDValueError) from exc
    if arr.dtype == object and arr.ndim == 0:   # None, a dict, a set, another object
        raise fail(name, f"must be an array of {what}, not {_kind(p)}",
                   "Pass a numpy array or nested lists of numbers"
                   + (", one axis per variable" if what == "probabilities" else ""),
                   kind=PIDTypeError)
    if arr.dtype == object and isinstance(p, np.ndarray):
        raise fail(name, "has dtype object", "Convert it with np.asarray(p, dtype=float) (its "
                   "entries must be numbers)", kind=PIDTypeError)
    if arr.dtype == object:
        raise fail(name, "is ragged or holds non-numeric entries",
                   "Give every axis the same length and use numbers only", kind=PIDTypeError)
    if arr.dtype.kind not in "biuf":
        raise fail(name, f"must hold real numbers, not dtype {arr.dtype}",
                   "Convert it with np.asarray(p, dtype=float)", kind=PIDTypeError)
    if arr.dtype.kind == "b" and what == "probabilities":    # a mask (p > 0), most often
        raise fail(name, "has dtype bool: True and False are not probabilities",
                   f"Pass the probabilities as numbers; for equally likely outcomes where "
                   f"{name} is True: {name} / {name}.sum()", kind=PIDTypeError)
    return arr


def reject_mixed_labels(x: Any, arr: np.ndarray, name: str) -> None:
    """Refuse a list (or other sequence) that numpy turned into strings although a column of
    it also holds numbers or other objects: ``np.asarray([1, "1", 2])`` is
    ``["1", "1", "2"]``, so the labels ``1`` and ``"1"`` would silently become one label.
    ``arr`` is ``np.asarray(x)``; rows of labels (a composite variable) may hold a different
    kind in each column."""
    if arr.dtype.kind not in "US" or isinstance(x, np.ndarray) or arr.ndim == 0:
        return
    text = str if arr.dtype.kind == "U" else bytes
    columns = np.asarray(x, dtype=object).reshape(arr.shape[0], -1).T
    for j, column in enumerate(columns):
        kinds = {isinstance(v, text) for v in column}
        if len(kinds) > 1:
            others = sorted({type(v).__name__ for v in column if not isinstance(v, text)})
            where = f" (column {j} of each row)" if len(columns) > 1 else ""
            raise fail(name, f"mixes {text.__name__} labels with {', '.join(others)} values"
                       f"{where}, which numpy would turn into strings (1 and '1' would become "
                       "one label)", "Use labels of one kind: all strings, or all numbers",
                       kind=PIDTypeError)


def as_host_array(x: Any, name: str, *, must: str, fix: str, ragged_fix: str) -> np.ndarray:
    """``x`` (an array-like or a torch tensor) as a numpy array on the host, with typed errors
    naming ``name``: None and strings (``name: must be <must>``, advice ``fix``), numpy masked
    arrays (:func:`reject_masked`) and ragged nested sequences (advice ``ragged_fix``)."""
    if x is None or isinstance(x, (str, bytes)):
        raise fail(name, f"must be {must}" + (", not None" if x is None else ""), fix, x,
                   kind=PIDTypeError)
    if is_torch(x):
        reject_meta(x, name)
        return host_numpy(x)
    reject_masked(x, name)
    reject_dit(x, name)
    try:
        arr = as_numpy(x, name)
    except ValueError as exc:  # numpy refuses ragged nested sequences
        raise fail(name, "is a ragged nested sequence", ragged_fix) from exc
    if arr.dtype == object and arr.ndim == 0 and not isinstance(x, np.ndarray):
        # numpy wraps any other object (a generator, a dict, a set) as a 0-d object array
        raise fail(name, f"must be {must}, not {_kind(x)}", fix, kind=PIDTypeError)
    reject_mixed_labels(x, arr, name)
    return arr


def as_float_array(p: Any, name: str = "p", what: str = "probabilities") -> np.ndarray:
    """Convert an array-like of numbers (or a torch tensor, detached and copied to the host) to a
    float64 ndarray; reject ragged or non-numeric input (messages call its entries ``what``)."""
    return _numeric_array(p, name, what).astype(np.float64, copy=False)


def pmf_sum_atol(dtype: Any) -> float:
    r"""The tolerance on :math:`|\sum p - 1|` for a pmf stored in ``dtype``.

    .. math::

        \mathrm{atol} = \max(\mathtt{PMF\_SUM\_ATOL},\ \mathtt{PMF\_SUM\_ULPS}\cdot
        \varepsilon_{\mathrm{dtype}})

    1e-8 for float64 (and integer) pmfs, 9.5e-7 for float32, 7.8e-3 for float16, 6.3e-2 for
    bfloat16: a pmf computed in float64 and stored in a lower precision (or normalised in it)
    misses 1 by about one epsilon of its dtype. One rule for numpy arrays and torch tensors.

    Parameters
    ----------
    dtype : numpy dtype, torch dtype, or an array or tensor (its dtype is used)
        The dtype the pmf was *given* in (before any conversion to float64).

    Examples
    --------
    >>> import numpy as np
    >>> pmf_sum_atol(np.float64), pmf_sum_atol(np.ones(2, dtype=np.float32))
    (1e-08, 9.5367431640625e-07)
    """
    if not isinstance(dtype, type) and hasattr(dtype, "dtype"):   # an array or a tensor
        dtype = dtype.dtype
    if type(dtype).__module__.split(".")[0] == "torch":
        import torch

        eps = float(torch.finfo(dtype).eps) if dtype.is_floating_point else 0.0
    else:
        dtype = np.dtype(dtype)
        eps = float(np.finfo(dtype).eps) if dtype.kind == "f" else 0.0
    return max(PMF_SUM_ATOL, PMF_SUM_ULPS * eps)


def check_pmf(p: Any, name: str = "p", *, normalize: bool = False, min_axes: int = 2,
              atol: float | None = None, sum_fix: str | None = None) -> np.ndarray:
    """Validate a joint pmf with one axis per variable and return it as float64.

    Parameters
    ----------
    p : array_like, torch tensor or mapping
        Non-negative probabilities, one axis per variable (a tensor is detached and copied to the
        host), or a mapping ``{outcome tuple: probability}`` or pandas Series indexed by
        outcome tuples (:func:`pmf_from_mapping`).
    name : str
        Argument name used in error messages.
    normalize : bool
        Divide by the total mass instead of rejecting a pmf whose sum differs from 1 by more than
        ``atol``.
    min_axes : int
        Least number of axes (a target and at least one source need 2).
    atol : float, optional
        Tolerance on ``|sum(p) - 1|`` (the sum taken in float64). Default
        :func:`pmf_sum_atol` of the dtype ``p`` is given in, the same rule as for torch tensors.
    sum_fix : str, optional
        The remedy the error for a sum other than 1 states, for callers without a
        ``normalize`` argument (default: pass ``normalize=True``).
    """
    normalize = check_flag(normalize, "normalize", "Pass normalize=True to rescale p")
    if is_outcome_mapping(p):
        p = pmf_from_mapping(p, name)
    given = _numeric_array(p, name)
    if atol is None:
        atol = pmf_sum_atol(given.dtype)
    else:
        atol = check_positive(atol, "atol", allow_zero=True)
    arr = given.astype(np.float64, copy=False)
    if arr.ndim < min_axes:
        raise fail(name, f"needs at least {min_axes} axes (one per variable), has {arr.ndim}",
                   "Reshape it so that each variable has its own axis, e.g. p.reshape(2, 2, 2)")
    if arr.size == 0:
        raise fail(name, f"is empty (shape {arr.shape})",
                   "Every variable needs at least one outcome")
    if not np.all(np.isfinite(arr)):
        raise fail(name, "contains NaN or infinite probabilities",
                   "Remove or replace the non-finite entries")
    if np.any(arr < 0):
        raise fail(name, f"contains negative probabilities (min {arr.min():.3g})",
                   "Probabilities must be >= 0")
    total = float(arr.sum())
    if total == 0:
        raise fail(name, "is all zeros", "At least one outcome needs positive probability")
    if abs(total - 1.0) > atol:
        if not normalize:
            raise pmf_sum_error(name, total, atol, sum_fix)
    return arr / total


def pmf_sum_error(name: str, total: float, atol: float, fix: str | None = None,
                  where: str = "") -> PIDValueError:
    """The error for a pmf ``name`` that sums to ``total``, not 1 within ``atol``: ``fix`` the
    remedy (default: pass ``normalize=True``), prefixed by a hint when the total is 100 (the
    entries are percentages); ``where``: which item of a batch, for the message."""
    fix = fix or "Pass normalize=True to divide by the total, or fix the pmf"
    if abs(total - 100.0) <= 100.0 * atol:
        fix = f"It looks like percentages: divide {name} by 100. {fix}"
    return fail(name, f"sums to {total:.12g}{where}, not 1 (tolerance {atol:g})", fix)


def check_axis_list(value: Any, name: str, ndim: int, *, given: Any = None
                    ) -> tuple[int, ...]:
    """Validate a sequence of distinct axis indices in ``[-ndim, ndim)`` and normalise them.

    ``value`` is an integer (Python, numpy scalar, 0-d integer array or tensor) or a sequence,
    1-d array or 1-d integer tensor of them. ``given``: what the messages show as received
    (default ``value``; the whole ``sources`` list when ``value`` is one of its groups)."""
    value = _integer_tensor_as_list(value)
    shown = value if given is None else given
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]       # a 0-d array: its scalar (an integer is checked below)
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence | np.ndarray):
        raise fail(name, "must be an axis index or a list of axis indices",
                   f"Use integers in [0, {ndim})", shown, kind=PIDTypeError)
    axes = []
    for ax in value:
        if isinstance(ax, bool) or not isinstance(ax, (numbers.Integral, np.integer)):
            raise fail(name, "holds a non-integer axis", f"Use integers in [0, {ndim})", shown,
                       kind=PIDTypeError)
        if not -ndim <= int(ax) < ndim:
            raise fail(name, f"axis {int(ax)} is out of range for a pmf with {ndim} axes",
                       f"Use integers in [0, {ndim})", shown)
        axes.append(int(ax) % ndim)
    if not axes:
        raise fail(name, "is empty", "Name at least one axis", shown)
    if len(set(axes)) != len(axes):
        raise fail(name, "names the same axis twice", "List each axis once", shown)
    return tuple(axes)


def _integer_tensor_as_list(value: Any) -> Any:
    """An integer torch tensor of axes as the Python integers it holds (``tensor(0)``: ``0``,
    as ``np.array(0)`` is read); anything else as it is (a float or bool tensor is then refused
    by the caller's checks, as a float array is)."""
    if is_torch(value) and not (value.dtype.is_floating_point or value.dtype.is_complex
                                or str(value.dtype) == "torch.bool"):
        return value.tolist()
    return value


def check_target_sources(ndim: int, target: Any, sources: Any) -> tuple[tuple[int, ...],
                                                                       tuple[tuple[int, ...], ...]]:
    """Resolve ``target`` and ``sources`` against a pmf with ``ndim`` axes.

    ``target`` is an axis or a list of axes (grouped into one variable). ``sources`` is ``None``
    (every other axis is a source, in order) or a list whose items are an axis or a list of axes
    (a composite source). Axes may not overlap.
    """
    target_axes = check_axis_list(target, "target", ndim)
    sources = _integer_tensor_as_list(sources)
    if sources is None:
        groups = tuple((ax,) for ax in range(ndim) if ax not in target_axes)
    else:
        if (isinstance(sources, (str, bytes)) or not isinstance(sources, Sequence | np.ndarray)
                or (isinstance(sources, np.ndarray) and sources.ndim == 0)):
            raise fail("sources", "must be a list of axes or of lists of axes",
                       "Example: sources=[1, 2] or sources=[[1, 2], [3]]", sources,
                       kind=PIDTypeError)
        groups = tuple(check_axis_list(g, "sources", ndim, given=sources) for g in sources)
    if not groups:
        raise fail("sources", "no source axes are left", "Give the pmf at least one source axis")
    used = [ax for g in groups for ax in g]
    if len(set(used)) != len(used):
        raise fail("sources", "two sources share an axis", "Each axis may belong to one source",
                   sources)
    overlap = set(used) & set(target_axes)
    if overlap:
        raise fail("sources", f"axis {sorted(overlap)} is also the target",
                   "Sources and target must be different axes", sources)
    return target_axes, groups


def check_choice(value: Any, name: str, choices: Sequence[str | None], *, exact: bool = False,
                 what: str = "choice", fix: str | None = None) -> Any:
    """Validate that ``value`` is one of ``choices`` (case-insensitive); return it lower-cased.

    With ``exact=True`` the comparison is case-sensitive, ``value`` is returned as given, and
    ``None`` may be one of the choices (e.g. ``scaling=None``). Anything but a string (or an
    accepted None) is a :class:`~pidkit.errors.PIDTypeError`, never compared element-wise (an
    array of strings made ``value not in choices`` ambiguous, a list made a dict lookup
    unhashable); an unknown string a :class:`~pidkit.errors.PIDValueError`. The message says
    ``is not a known <what>`` with ``fix`` (default: the choices).

    >>> check_choice("BROJA", "measure", ("broja", "mmi"))
    'broja'
    >>> check_choice(None, "scaling", ("l2", "standard", None), exact=True) is None
    True
    """
    if isinstance(value, str):
        key = value if exact else value.lower()
        if key in choices:
            return key
    elif exact and value is None and None in choices:
        return None
    kind = PIDValueError if isinstance(value, str) else PIDTypeError
    raise fail(name, f"is not a known {what}",
               fix or f"Use one of: {', '.join(str(c) for c in choices)}", value, kind=kind)


def as_scalar(value: Any) -> Any:
    """A 0-d numpy array or torch tensor of a real or integer dtype as the Python number it
    holds (``lr=torch.tensor(0.1)``, a scheduler's value): exact, one host read for a tensor on
    a GPU. Anything else, booleans included, is returned as it is for the caller's checks."""
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        item = value.item()
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            return item
    return value


def check_positive(value: Any, name: str, *, integer: bool = False, allow_zero: bool = False):
    """Validate a positive number (an integer when ``integer``; a 0-d array or tensor counts as
    the number it holds, :func:`as_scalar`)."""
    value = as_scalar(value)
    kinds = (numbers.Integral, np.integer) if integer else (numbers.Real, np.floating, np.integer)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise fail(name, f"must be {'an integer' if integer else 'a number'}",
                   "Pass a positive value", value, kind=PIDTypeError)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise fail(name, f"must be {'>= 0' if allow_zero else '> 0'}", "Pass a positive value",
                   value)
    return int(value) if integer else float(value)


def check_fraction(value: Any, name: str, fix: str | None = None) -> float:
    """A number in ``[0, 1]`` (a share, a mixing weight), as a float. ``fix``: the advice
    (default: pass a number between 0 and 1).

    >>> check_fraction(0.25, "ratio")
    0.25
    """
    fix = fix or f"Pass a number between 0 and 1, e.g. {name}=0.5"
    value = as_scalar(value)
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise fail(name, "must be a number in [0, 1]", fix, value, kind=PIDTypeError)
    if not 0 <= value <= 1:  # NaN fails this too
        raise fail(name, "must be a number in [0, 1]", fix, value)
    return float(value)


def check_int(value: Any, name: str, minimum: int) -> int:
    """An integer ``>= minimum`` (a 0-d integer array or tensor counts, :func:`as_scalar`)."""
    value = as_scalar(value)
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise fail(name, "must be an integer", f"Pass an integer >= {minimum}", value,
                   kind=PIDTypeError)
    if value < minimum:
        raise fail(name, f"must be >= {minimum}", f"Pass an integer >= {minimum}", value)
    return int(value)


def check_level(ci: Any) -> float:
    """A confidence level strictly between 0 and 1 (a 0-d array or tensor counts as the number
    it holds, :func:`as_scalar`)."""
    fix = "Use e.g. ci=0.95, or ci=None for no intervals"
    ci = as_scalar(ci)
    if isinstance(ci, bool) or not isinstance(ci, numbers.Real):
        raise fail("ci", "must be a number in (0, 1)", fix, ci, kind=PIDTypeError)
    if not 0 < ci < 1:
        if 1 < ci <= 100:   # a percentage: 95 for 0.95
            fix = f"ci is a fraction, not a percentage: use ci={ci / 100:g}"
        raise fail("ci", "must lie strictly between 0 and 1", fix, ci)
    return float(ci)


def check_n_boot(n_boot: Any, ci: Any) -> int:
    """The number of bootstrap replicates: 0 (no intervals; also whenever ``ci`` is None) or at
    least 2 (one replicate has no spread: its "interval" would have width 0)."""
    n_boot = check_int(n_boot, "n_boot", 0)
    if ci is None:
        return 0
    if n_boot == 1:
        raise fail("n_boot", "must be 0 (no intervals) or at least 2: one replicate gives an "
                             "interval of width 0", "Use e.g. n_boot=200, or n_boot=0", n_boot)
    return n_boot


def check_bootstrap(ci: Any, n_boot: Any) -> tuple[float | None, int]:
    """The interval settings ``(ci, n_boot)``: ``ci`` a level in (0, 1) or None (no intervals,
    then ``n_boot`` is 0), ``n_boot`` as :func:`check_n_boot` checks it."""
    ci = None if ci is None else check_level(ci)
    return ci, check_n_boot(n_boot, ci)


def check_samples(x: Any, name: str, *, keep_torch: bool = True, allow_empty: bool = False):
    """Samples as an array of their own library and dtype, one sample per row of the first axis.

    numpy arrays (and array-likes) come back as numpy arrays, torch tensors as the same tensor
    (dtype, device and autograd kept) or, with ``keep_torch=False``, detached and copied to a
    numpy array on the host (:func:`host_numpy`: bfloat16 and float8, which numpy lacks, become
    float32, exactly). Nothing else is converted: dtype, shape and finiteness checks that
    depend on the use are the caller's. ``allow_empty=True`` accepts zero samples (an empty
    batch of a stream).

    Raises
    ------
    PIDTypeError
        ``x`` is a string, None, a numpy masked array (:func:`reject_masked`), or holds
        non-numeric values (object, string or complex dtype).
    PIDValueError
        ``x`` is a scalar (0 axes) or holds no samples.

    Examples
    --------
    >>> import numpy as np
    >>> check_samples(np.ones((3, 2), dtype=np.float32), "x").dtype
    dtype('float32')
    """
    if is_torch(x):
        reject_meta(x, name)
        if x.dtype.is_complex:
            raise fail(name, f"must hold real numbers, not dtype {x.dtype}",
                       "Pass a real-valued numpy array or torch tensor", kind=PIDTypeError)
        arr = x if keep_torch else host_numpy(x)
    else:
        arr = as_host_array(x, name, must="an array of samples",
                            fix="Pass a numpy array or a torch tensor",
                            ragged_fix="Give every sample the same shape (one row per sample)")
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            fix = "Pass a numeric numpy array or torch tensor"
            if arr.dtype.kind in "OSU":     # strings or objects, e.g. category names
                fix += (f"; encode category labels as integers first, e.g. "
                        f"pidkit.estimate.encode({name})[0]")
            raise fail(name, f"must hold numbers, not dtype {arr.dtype}", fix,
                       kind=PIDTypeError)
    if arr.ndim == 0:
        raise fail(name, "is a scalar, not an array of samples",
                   "Pass one row per sample, e.g. an array of shape (n,) or (n, d)", arr)
    if arr.shape[0] == 0 and not allow_empty:
        raise fail(name, "holds no samples", "Pass at least two samples")
    return arr


def check_aligned(samples: Sequence[Any], names: Sequence[str]) -> None:
    """Refuse pandas inputs whose indexes differ: pidkit pairs samples by position, while a
    pandas user expects rows with the same label to be paired (``df.x.sample(frac=1)`` passed
    beside ``df.y`` would silently destroy their dependence).

    Only the arguments that carry a pandas index (a Series or DataFrame) are compared, each
    with the first of them; numpy arrays and tensors are positional by nature.

    Raises
    ------
    PIDValueError
        Two pandas arguments have indexes that are not equal (same labels in the same order).

    Examples
    --------
    >>> import pandas as pd
    >>> check_aligned([pd.Series([1, 2]), pd.Series([3, 4], index=[1, 0])],
    ...               ["target", "x"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pidkit.errors.PIDValueError: x: has a pandas index that differs from target's ...
    """
    indexed = [(x.index, name) for x, name in zip(samples, names, strict=True)
               if type(x).__module__.split(".")[0] == "pandas" and hasattr(x, "index")]
    for index, name in indexed[1:]:
        first, first_name = indexed[0]
        if not index.equals(first):
            raise fail(name, f"has a pandas index that differs from {first_name}'s (pidkit "
                       "pairs samples by position, not by index label)",
                       f"Align them first, e.g. {name}.reindex({first_name}.index), or pass "
                       ".to_numpy() (or .reset_index(drop=True)) where the positions are "
                       "already paired")


def check_seed(seed: Any, name: str = "seed", *, generator: bool = False,
               maximum: int | None = None) -> Any:
    """Validate a random seed: ``None``, a non-negative integer (Python or numpy), and with
    ``generator=True`` also a ``numpy.random.Generator`` or ``SeedSequence`` (returned as is).

    Parameters
    ----------
    seed : object
        The value received.
    name : str
        Argument name used in error messages (``"seed"``, ``"random_state"``).
    generator : bool
        Whether the caller documents and accepts a Generator or SeedSequence.
    maximum : int, optional
        Largest accepted integer (scikit-learn estimators take seeds below ``2**32``).

    Returns
    -------
    int, None, Generator or SeedSequence

    Raises
    ------
    PIDTypeError
        A bool, float, string or other object (a Generator unless ``generator``).
    PIDValueError
        A negative integer, or one above ``maximum``.

    Examples
    --------
    >>> import numpy as np
    >>> check_seed(np.int64(3)), check_seed(None)
    (3, None)
    >>> check_seed(-1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pidkit.errors.PIDValueError: seed: must be >= 0 (got -1). Pass a non-negative integer ...
    """
    fix = f"Pass a non-negative integer such as {name}=0, or None"
    if generator:
        fix += ", or a numpy Generator"
        if isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
            return seed
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer)):
        what = type(seed).__name__
        if isinstance(seed, np.random.Generator | np.random.RandomState | np.random.SeedSequence):
            problem = f"must be an integer or None, not a {what}"
            fix = (f"Pass an integer drawn from it, e.g. {name}=int(rng.integers(2**32))"
                   if generator is False else fix)
        else:
            problem = f"must be a non-negative integer or None, not {what}"
        raise fail(name, problem, fix, seed, kind=PIDTypeError)
    seed = int(seed)
    if seed < 0:
        raise fail(name, "must be >= 0", fix, seed)
    if maximum is not None and seed > maximum:
        raise fail(name, f"must be <= {maximum}", f"Pass a seed in [0, {maximum}]", seed)
    return seed


def pandas_as_list(value: Any) -> Any:
    """A pandas Index or Series (``df.columns`` passed as names) as the list of its entries:
    it is neither a ``Sequence`` nor an ndarray, so checks for a list of names refused it;
    anything else as it is, for the caller's checks.

    >>> import pandas as pd
    >>> pandas_as_list(pd.Index(["Y", "A"])), pandas_as_list(("Y", "A"))
    (['Y', 'A'], ('Y', 'A'))
    """
    kind = type(value)
    if kind.__module__.split(".")[0] == "pandas" and kind.__name__ in ("Index", "Series"):
        return value.tolist()
    return value


def check_options(options: Any, name: str = "options") -> dict[str, Any]:
    """Validate a mapping of keyword options (e.g. ``measure_options``); return a new ``dict``.

    ``None`` gives ``{}``. Anything that is not a mapping with string keys is a
    :class:`~pidkit.errors.PIDTypeError` naming ``name``.

    Examples
    --------
    >>> check_options({"tol": 1e-10}, "measure_options"), check_options(None)
    ({'tol': 1e-10}, {})
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise fail(name, f"must be a dict of option names to values, not {type(options).__name__}",
                   f"Pass e.g. {name}={{'tol': 1e-10}}, or None", options, kind=PIDTypeError)
    bad = [k for k in options if not isinstance(k, str)]
    if bad:
        raise fail(name, f"has non-string keys {bad[:3]}",
                   f"Use option names as keys, e.g. {name}={{'tol': 1e-10}}", kind=PIDTypeError)
    return dict(options)


def check_output_file(path: Any, name: str = "path", example: str = "out.json") -> Path:
    """A file path to write to, checked before anything is computed or written: a str or
    path-like (else a :class:`~pidkit.errors.PIDTypeError` naming ``name``) that is not a
    folder and whose folder exists (else a :class:`~pidkit.errors.PIDValueError`; ``example``
    is the file name the advice suggests inside a folder given by mistake).

    Examples
    --------
    >>> check_output_file("results.json").name
    'results.json'
    """
    if not isinstance(path, (str, os.PathLike)):
        raise fail(name, "must be a file path", "Pass a str or a pathlib.Path", path,
                   kind=PIDTypeError)
    file = Path(path)
    if file.is_dir():
        raise fail(name, f"{file} is a folder", f"Pass a file path inside it, e.g. "
                   f"{file / example}")
    if not file.parent.is_dir():
        raise fail(name, f"the folder {file.parent} does not exist", "Create it first "
                   "(Path(...).mkdir(parents=True)), or pass a path in an existing folder", path)
    return file


def _bytes(n: float) -> str:
    """``n`` bytes in binary units (``"131 TiB"``)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    for unit in units[:-1]:
        if n < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} {units[-1]}"


def check_table_size(sizes: Sequence[int], names: Sequence[str], *, itemsize: int = 8,
                     fix: str | None = None) -> int:
    """Check, before allocating, that a joint table of alphabet ``sizes`` is not too large.

    Parameters
    ----------
    sizes : sequence of int
        Number of codes of each variable (largest code + 1).
    names : sequence of str
        The argument (or CSV column) each variable comes from; the error names the one with the
        largest alphabet.
    itemsize : int
        Bytes per cell, for the message.
    fix : str, optional
        How to fix it, in the caller's terms (default: re-code with ``np.unique``).

    Returns
    -------
    int
        The number of cells, at most :data:`MAX_TABLE_CELLS`.

    Examples
    --------
    >>> check_table_size([2, 3], ["target", "sources[0]"])
    6
    >>> check_table_size([2, 2**40], ["target", "sources[0]"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pidkit.errors.PIDValueError: sources[0]: holds code 1099511627775, so the joint table ...
    """
    sizes = [int(k) for k in sizes]
    cells = math.prod(sizes)
    if cells <= MAX_TABLE_CELLS:
        return cells
    worst = max(range(len(sizes)), key=lambda i: sizes[i])
    if sizes[worst] ** 2 <= MAX_TABLE_CELLS:    # no single alphabet is to blame: their number
        raise fail(", ".join(names) if len(names) <= 4 else f"{names[0]}, ..., {names[-1]}",
                   f"are {len(sizes)} variables whose joint table would have {cells:.2g} cells "
                   f"({_bytes(cells * itemsize)}), more than {MAX_TABLE_CELLS:,}",
                   "Pass fewer variables, or merge some into one code (e.g. pairs of binary "
                   "variables into 4 values)")
    if fix is None:
        fix = ("Re-code each variable to consecutive codes 0..k-1 with "
               "np.unique(x, return_inverse=True)[1] (or pidkit.estimate.encode), or coarsen "
               "the variables")
    raise fail(names[worst], f"holds code {sizes[worst] - 1}, so the joint table would have "
               f"{cells:.2g} cells ({_bytes(cells * itemsize)}), more than "
               f"{MAX_TABLE_CELLS:,}", fix)
