r"""Theorem 3.1 of Dissanayake et al. (2025) in numbers: why audits use Red(Y:T,S), not I(T;S).

A teacher representation :math:`T = (Z, G)` has a task-relevant part :math:`Z` and a nuisance
part :math:`G` that says nothing about the label: :math:`I(Y;T) = I(Y;Z)` and
:math:`I(Y;G) = 0`. A student that can hold only one of the two parts
(:math:`H(S) \le \max(H(Z), H(G))`) is judged by two criteria:

.. math::

    I(T;S) \quad\text{(what feature-matching distillation maximises)} \qquad
    \mathrm{Red}(Y{:}T,S) \quad\text{(task knowledge the student shares with the teacher)}.

Whenever :math:`H(G) > H(Z)`, :math:`I(T;S)` prefers the nuisance copy :math:`S = G`
(:math:`I(T;G) = H(G)`), while :math:`\mathrm{Red}` prefers :math:`S = Z`
(:math:`\mathrm{Red}(Y{:}T,Z) = I(Y;Z)` and :math:`\mathrm{Red}(Y{:}T,G) = 0`).
:func:`nuisance_teacher_example` computes both criteria exactly from the joint pmf.

References
----------
P. Dissanayake et al., "Quantifying Knowledge Distillation Using Partial Information
Decomposition", AISTATS 2025, Theorem 3.1 and the example after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import pidkit
from pidkit.information import entropy, marginal, mutual_information
from pidkit.result import unit_name
from pidkit.validation import check_base, fail

__all__ = ["NuisanceExample", "nuisance_teacher_example", "nuisance_pmf"]

#: The student candidates: which part of the teacher the student copies.
CANDIDATES = ("Z", "G")


def _check_probability(value: float, name: str, *, open_interval: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        0 < value < 1 if open_interval else 0 <= value < 0.5)
    if not ok:
        allowed = "in (0, 1)" if open_interval else "in [0, 0.5)"
        raise fail(name, f"must be a probability {allowed}", f"Pass a float {allowed}", value)
    return float(value)


def nuisance_pmf(copy: str, p_z: float = 0.2, p_g: float = 0.5, flip: float = 0.0) -> np.ndarray:
    r"""Joint pmf ``p[y, z, g, s]`` of the nuisance-teacher construction.

    :math:`Z \sim \mathrm{Bern}(p_z)` and :math:`G \sim \mathrm{Bern}(p_g)` are independent,
    :math:`Y = Z \oplus N` with :math:`N \sim \mathrm{Bern}(\text{flip})` independent label
    noise, the teacher is :math:`T = (Z, G)` and the student copies one part,
    :math:`S = Z` (``copy="Z"``) or :math:`S = G` (``copy="G"``). Shape ``(2, 2, 2, 2)``.
    """
    if copy not in CANDIDATES:
        raise fail("copy", "must name the copied part of the teacher", 'Use "Z" or "G"', copy)
    p_z = _check_probability(p_z, "p_z", open_interval=True)
    p_g = _check_probability(p_g, "p_g", open_interval=True)
    flip = _check_probability(flip, "flip", open_interval=False)
    p = np.zeros((2, 2, 2, 2))
    for z in (0, 1):
        for g in (0, 1):
            for n in (0, 1):
                mass = ((p_z if z else 1 - p_z) * (p_g if g else 1 - p_g)
                        * (flip if n else 1 - flip))
                p[z ^ n, z, g, z if copy == "Z" else g] += mass
    return p


@dataclass(frozen=True)
class NuisanceExample:
    """Both criteria for each student candidate of the nuisance-teacher construction.

    Attributes
    ----------
    rows : dict
        Candidate (``"Z"`` or ``"G"``) -> ``{"H(S)", "I(T;S)", "I(Y;S)", "Red(Y:T,S)",
        "Uni(Y:T\\S)"}``, in units of ``base``.
    p_z, p_g, flip : float
        Parameters of :func:`nuisance_pmf`.
    measure : str
        PID measure used for Red and Uni.
    base : float
        Logarithm base of every value.
    """

    rows: dict[str, dict[str, float]]
    p_z: float
    p_g: float
    flip: float
    measure: str
    base: float

    @property
    def preferred_by_mutual_information(self) -> str:
        """The candidate with the larger :math:`I(T;S)`."""
        return max(CANDIDATES, key=lambda c: self.rows[c]["I(T;S)"])

    @property
    def preferred_by_redundancy(self) -> str:
        """The candidate with the larger :math:`\\mathrm{Red}(Y{:}T,S)`."""
        return max(CANDIDATES, key=lambda c: self.rows[c]["Red(Y:T,S)"])

    def to_dict(self) -> dict:
        return {"p_z": self.p_z, "p_g": self.p_g, "flip": self.flip, "measure": self.measure,
                "base": self.base, "rows": {c: dict(r) for c, r in self.rows.items()},
                "preferred_by_mutual_information": self.preferred_by_mutual_information,
                "preferred_by_redundancy": self.preferred_by_redundancy}

    def __str__(self) -> str:
        keys = list(self.rows["Z"])
        unit = unit_name(self.base)
        lines = [f"Nuisance teacher T=(Z,G): Z~Bern({self.p_z:g}), G~Bern({self.p_g:g}), "
                 f"Y = Z xor Bern({self.flip:g}); measure={self.measure}, in {unit}",
                 "  student  " + "  ".join(f"{k:>11}" for k in keys)]
        for c in CANDIDATES:
            lines.append(f"  S = {c}    " + "  ".join(f"{self.rows[c][k]:>11.4f}" for k in keys))
        lines.append(f"  I(T;S) prefers S = {self.preferred_by_mutual_information}; "
                     f"Red(Y:T,S) prefers S = {self.preferred_by_redundancy}")
        return "\n".join(lines)


def nuisance_teacher_example(p_z: float = 0.2, p_g: float = 0.5, flip: float = 0.0,
                             measure: str = "broja", base: float = 2) -> NuisanceExample:
    r"""Theorem 3.1 in numbers: :math:`I(T;S)` picks the nuisance, :math:`\mathrm{Red}` the task.

    For the construction of :func:`nuisance_pmf` and each candidate student
    :math:`S \in \{Z, G\}`, computes exactly from the pmf

    .. math::

        I(T;S) = H(T) + H(S) - H(T,S), \qquad
        \mathrm{Red}(Y{:}T,S) = I(Y;T) - \mathrm{Uni}(Y{:}T\setminus S),

    the latter with :func:`pidkit.pid` (``sources=[[z, g], [s]]``: the teacher is one composite
    source). With the defaults (the paper's example) :math:`I(T;G) = 1 > I(T;Z) = h(0.2)
    \approx 0.722` bits while :math:`\mathrm{Red}(Y{:}T,Z) = 0.722 > \mathrm{Red}(Y{:}T,G) = 0`.

    Parameters
    ----------
    p_z : float, default 0.2
        :math:`P(Z = 1)`, in (0, 1).
    p_g : float, default 0.5
        :math:`P(G = 1)`, in (0, 1). The theorem's premise :math:`H(G) > H(Z)` holds when
        ``|p_g - 0.5| < |p_z - 0.5|``.
    flip : float, default 0
        Label noise :math:`P(Y \ne Z)`, in [0, 0.5).
    measure : str, default "broja"
        Bivariate PID measure for Red and Uni (the paper uses BROJA).
    base : float, default 2
        Logarithm base (2: bits).

    Returns
    -------
    NuisanceExample
        Both criteria per candidate and which candidate each prefers; prints as a table.

    Examples
    --------
    >>> from pidkit_distill.audits.nuisance import nuisance_teacher_example
    >>> ex = nuisance_teacher_example()                        # doctest: +SKIP
    >>> ex.preferred_by_mutual_information, ex.preferred_by_redundancy   # doctest: +SKIP
    ('G', 'Z')
    """
    base = check_base(base)
    rows = {}
    for copy in CANDIDATES:
        p = nuisance_pmf(copy, p_z, p_g, flip)
        r = pidkit.pid(p, target=0, sources=[[1, 2], [3]], measure=measure, base=base)
        rows[copy] = {"H(S)": entropy(marginal(p, (3,))) / math.log(base),
                      "I(T;S)": mutual_information(p, (1, 2), (3,)) / math.log(base),
                      "I(Y;S)": float(r.redundancy + r.unique[1]),
                      "Red(Y:T,S)": float(r.redundancy), "Uni(Y:T\\S)": float(r.unique[0])}
    return NuisanceExample(rows, float(p_z), float(p_g), float(flip), measure, base)
