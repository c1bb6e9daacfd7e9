r"""The phase schedule of Algorithm 1 (RID) and the built-in learning-rate schedules.

Two-phase methods alternate, after :math:`n_w` warm-up epochs, cycles of :math:`q` epochs whose
first :math:`\lceil r q\rceil` epochs are teacher-phase epochs (phase 1: teacher-side filters
and heads) and the rest student-phase epochs (phase 2: the student, its filters and scales).
Cycles are counted from the end of the warm-up, so the filters are fitted to the student before
the student is first pulled towards them; when :math:`n_w` is a multiple of :math:`q` (the
paper's settings) this is the paper's condition :math:`i \bmod q < r q` on the epoch index.
The number of teacher epochs per cycle is computed in exact rational arithmetic
(:class:`fractions.Fraction`), so ``r = 0.07, q = 100`` gives 7 teacher epochs, not the 8 that
the floating-point comparison ``e mod q < r q`` gives (``0.07 * 100 = 7.000000000000001``).

:func:`resolve_schedule` fills in a schedule scaled to the number of epochs when the user
gives none (the paper's proportions: :math:`n_w = q = E/10`, :math:`r = 1/4`) and refuses a
schedule that would leave the teacher side or the student untrained.

Reference: P. Dissanayake et al., "Quantifying Knowledge Distillation Using Partial Information
Decomposition", AISTATS 2025, Algorithm 1 (CIFAR-10: :math:`n_w = q = 30`, :math:`r = 1/4`,
300 epochs).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from pidkit.errors import caller_stacklevel
from pidkit.validation import check_fraction, check_int, fail

__all__ = ["Schedule", "resolve_schedule", "check_ratio", "phase_of_epoch",
           "teacher_epochs_per_cycle", "learning_rate", "PHASES"]

#: The phases of Algorithm 1, in the order they first occur.
PHASES = ("warmup", "teacher", "student")

#: The paper's share of teacher epochs per cycle, used when no schedule is given.
DEFAULT_RATIO = 0.25


def teacher_epochs_per_cycle(cycle: int, ratio: float) -> int:
    r"""Teacher-phase epochs in a cycle of ``cycle`` epochs: :math:`\lceil r q\rceil` computed
    exactly (``ratio`` is read as the nearest fraction with denominator <= 10^6).

    >>> teacher_epochs_per_cycle(100, 0.07), teacher_epochs_per_cycle(30, 0.25)
    (7, 8)
    """
    return math.ceil(Fraction(ratio).limit_denominator(10**6) * cycle)


def phase_of_epoch(epoch: int, warmup: int, cycle: int, ratio: float) -> str:
    """Phase of 0-based ``epoch`` in Algorithm 1: ``"warmup"`` if ``epoch < warmup``, else
    ``"teacher"`` in the first :func:`teacher_epochs_per_cycle` epochs of each cycle, else
    ``"student"``.

    Raises
    ------
    PIDTypeError
        ``epoch``, ``warmup`` or ``cycle`` is not an integer.
    PIDValueError
        ``epoch < 0``, ``warmup < 0``, ``cycle < 1`` or ``ratio`` outside [0, 1].

    Examples
    --------
    >>> [phase_of_epoch(i, 2, 4, 0.25) for i in range(8)]
    ['warmup', 'warmup', 'teacher', 'student', 'student', 'student', 'teacher', 'student']
    """
    epoch, warmup = check_int(epoch, "epoch", 0), check_int(warmup, "warmup", 0)
    cycle, ratio = check_int(cycle, "cycle", 1), check_ratio(ratio)
    if epoch < warmup:
        return "warmup"
    position = (epoch - warmup) % cycle
    return "teacher" if position < teacher_epochs_per_cycle(cycle, ratio) else "student"


@dataclass(frozen=True)
class Schedule:
    """A resolved Algorithm-1 schedule: ``warmup`` (:math:`n_w`), ``cycle`` (:math:`q`) and
    ``ratio`` (:math:`r`), and whether it was filled in automatically."""

    warmup: int
    cycle: int
    ratio: float
    automatic: bool = False

    def __post_init__(self) -> None:
        """Refuse what :func:`phase_of_epoch` would: ``warmup >= 0``, ``cycle >= 1`` (ints)
        and ``ratio`` in [0, 1]."""
        check_int(self.warmup, "warmup", 0)
        check_int(self.cycle, "cycle", 1)
        check_ratio(self.ratio)

    def phase(self, epoch: int) -> str:
        """Phase of 0-based ``epoch`` (:func:`phase_of_epoch`)."""
        return phase_of_epoch(epoch, self.warmup, self.cycle, self.ratio)

    def phases(self, epochs: int) -> list[str]:
        """Phases of epochs ``0 .. epochs - 1``."""
        return [self.phase(e) for e in range(epochs)]


def check_ratio(ratio) -> float:
    """``ratio`` (Algorithm 1's :math:`r`) as a float in [0, 1]
    (:func:`pidkit.validation.check_fraction`)."""
    return check_fraction(ratio, "ratio", "Pass the share r of each cycle spent in the teacher "
                          "phase, between 0 and 1 (the paper uses 0.25)")


def _non_negative_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise fail(name, f"must be an integer >= {minimum}", f"Pass an int >= {minimum}, or "
                   "None for a schedule scaled to the number of epochs", value)
    return value


def resolve_schedule(epochs: int, warmup: int | None = None, cycle: int | None = None,
                     ratio: float | None = None) -> Schedule:
    r"""The schedule of a two-phase method trained for ``epochs`` epochs.

    Options left at ``None`` are scaled to ``epochs`` with the paper's proportions:
    :math:`q = \max(2, \mathrm{round}(E/10))`, :math:`r = 1/4` and
    :math:`n_w = \min(q, E - q)` (so that at least one full cycle follows the warm-up), plus the
    :math:`(E - n_w) \bmod q` epochs that do not fill a cycle, so that whole cycles follow the
    warm-up and the last epoch is a student epoch (the paper's settings, e.g. :math:`E = 300`,
    :math:`n_w = q = 30`, have no such remainder).

    A schedule whose last epoch is a teacher-phase epoch gets a ``UserWarning``: the student
    does not train in its final epochs.

    Raises
    ------
    PIDValueError
        If the schedule has no teacher-phase epoch (the teacher-side filters would never be
        fitted to the student: RID would regress the student onto a random projection of the
        teacher) or no student-phase epoch (the student would not train).

    Examples
    --------
    >>> resolve_schedule(300)
    Schedule(warmup=30, cycle=30, ratio=0.25, automatic=True)
    >>> resolve_schedule(4).phases(4)
    ['warmup', 'warmup', 'teacher', 'student']
    >>> resolve_schedule(5).phases(5)
    ['warmup', 'warmup', 'warmup', 'teacher', 'student']
    """
    automatic = warmup is None and cycle is None and ratio is None
    epochs = check_int(epochs, "epochs", 1)
    cycle = max(2, round(epochs / 10)) if cycle is None else _non_negative_int(cycle, "cycle", 1)
    ratio = DEFAULT_RATIO if ratio is None else check_ratio(ratio)
    if warmup is None:
        warmup = max(0, min(cycle, epochs - cycle))
        if epochs - warmup >= cycle:       # whole cycles after the warm-up
            warmup += (epochs - warmup) % cycle
    else:
        warmup = _non_negative_int(warmup, "warmup", 0)
    schedule = Schedule(warmup, cycle, float(ratio), automatic)
    phases = schedule.phases(epochs)
    settings = f"epochs={epochs}, warmup={warmup}, cycle={cycle}, ratio={ratio}"
    if "teacher" not in phases:
        raise fail("ratio", f"the schedule ({settings}) has no teacher-phase epoch, so the "
                   "teacher-side filters would never be fitted and the student would be "
                   "regressed onto a random projection of the teacher",
                   "Leave warmup, cycle and ratio at None for a schedule scaled to the epochs, "
                   "or choose ratio > 0 and enough epochs after the warm-up", ratio)
    if "student" not in phases:
        raise fail("epochs", f"the schedule ({settings}) has no student-phase epoch, so the "
                   "student would not train", "Train for more epochs, or lower warmup or ratio",
                   epochs)
    last_student = len(phases) - 1 - phases[::-1].index("student")
    if last_student < epochs - 1:
        warnings.warn(f"The schedule ({settings}) ends with {epochs - 1 - last_student} "
                      f"teacher-phase epoch(s): the student does not train after epoch "
                      f"{last_student} (0-based). Choose epochs = warmup + a multiple of cycle, "
                      "or leave warmup at None to put the remainder in the warm-up",
                      UserWarning, stacklevel=caller_stacklevel())
    return schedule


def learning_rate(epoch: int, base_lr: float, schedule: str = "multistep",
                  milestones: Sequence[int] = (), gamma: float = 0.2, epochs: int = 1) -> float:
    r"""Learning rate at 0-based ``epoch``.

    ``"multistep"``: :math:`\eta\,\gamma^{\#\{m \le e\}}`; ``"cosine"``:
    :math:`\eta\,(1 + \cos(\pi e / E))/2`; ``"constant"``: :math:`\eta`.
    """
    if schedule == "multistep":
        return base_lr * gamma ** sum(1 for m in milestones if m <= epoch)
    if schedule == "cosine":
        return base_lr * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1)))
    return base_lr
