"""Every exception and warning pidkit raises, defined in one place.

Errors subclass the built-in :class:`ValueError` or :class:`TypeError` (and a lookup that
finds nothing in a result or report, :class:`KeyError` or :class:`IndexError`, as for any
mapping or sequence), so code that already catches those keeps working; catch
:class:`PIDKitError` to catch everything pidkit raises on purpose. Messages follow one
format: the argument, what was wrong with the value received, and how to fix it (see
:func:`pidkit.validation.fail`).
"""

from __future__ import annotations

__all__ = [
    "PIDKitError",
    "PIDValueError",
    "PIDTypeError",
    "CheckpointError",
    "PIDKeyError",
    "PIDIndexError",
    "ConvergenceWarning",
    "RegularizationWarning",
    "caller_stacklevel",
]


class PIDKitError(Exception):
    """Base class of every error pidkit raises on purpose."""


class PIDValueError(PIDKitError, ValueError):
    """An argument has the right type but an invalid value (a pmf with negative mass, ...)."""


class PIDTypeError(PIDKitError, TypeError):
    """An argument has the wrong type (a string where an array was expected, ...)."""


class CheckpointError(PIDValueError):
    """A checkpoint file cannot be used: missing, a directory, empty, truncated, corrupted
    (failed checksum), holding pickled objects, or not a trainer checkpoint. The message names
    the path and what to do; the low-level error, if any, is chained as ``__cause__``."""


class PIDKeyError(PIDKitError, KeyError):
    """A lookup by key in a result or report found nothing (``r.atoms["{0}{2}"]``,
    ``report["fc -> fc"]``, ``report[0]["red"]``): a :class:`KeyError`, as for any mapping
    (``except KeyError`` and ``Mapping.get`` keep working), whose message names the keys
    there are. Printed as its message (a plain ``KeyError`` shows the repr of its argument)."""

    def __str__(self) -> str:
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class PIDIndexError(PIDKitError, IndexError):
    """A position out of range in a sequence-like result (``report[5]`` of a report of two
    layer pairs): an :class:`IndexError`, as for any sequence, whose message names the
    positions there are."""


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before reaching its tolerance; the message says what to
    change."""


class RegularizationWarning(UserWarning):
    """An input was regularised (e.g. a ridge added to a near-singular covariance); the message
    states the amount."""


def caller_stacklevel(packages: tuple[str, ...] = ("pidkit",)) -> int:
    """The ``stacklevel`` that makes :func:`warnings.warn`, called by the caller of this
    function, point at the first frame outside ``packages`` (top-level package names) and their
    companion packages named ``<package>_*`` (``pidkit_distill`` for ``pidkit``): the user's
    line that called the library, whatever the depth of the internal calls in between, also
    when a pidkit function warns inside a pidkit_distill call (Python 3.12's
    ``skip_file_prefixes`` does this; pidkit supports 3.11)."""
    import sys

    def ours(frame) -> bool:
        top = frame.f_globals.get("__name__", "").partition(".")[0]
        return any(top == name or top.startswith(name + "_") for name in packages)

    frame, level = sys._getframe(1), 1
    while frame is not None and ours(frame):
        frame, level = frame.f_back, level + 1
    return level
