"""Models and weight files of the subcommands (shared by ``train`` and ``audit``; the leading
underscore keeps this module from being a subcommand).

Every problem with a model option or a weight file is a typed error naming the command-line
flag (``--teacher-weights``, ``--student-kw``, ...), which the CLI prints as one line with exit
status 2. Weight files are read with ``torch.load(weights_only=True)`` only: loading never runs
code from the file.
"""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Any

from pidkit.errors import CheckpointError, PIDKitError, PIDTypeError
from pidkit.validation import fail

__all__ = ["build_model", "build_teacher", "load_weights", "load_into"]

#: How many offending keys an error message lists.
SHOWN_KEYS = 4


def _flag(role: str, what: str) -> str:
    return f"--{role}-{what}"


def build_model(name: str, num_classes: int, kw: list[tuple[str, Any]], role: str,
                seed: int | None = None):
    """:func:`pidkit_distill.models.get_model` with the ``--ROLE-kw`` options (with ``seed``:
    :func:`~pidkit_distill.models.untrained_teacher`, random weights from that seed). Options
    the model does not accept (a ``TypeError`` or ``ValueError`` of its constructor) become a
    :class:`~pidkit.errors.PIDTypeError` naming ``--ROLE-kw`` and listing the keyword
    parameters of the model's factory."""
    from .. import models
    from ._flags import flag_errors

    options = dict(kw)
    try:
        with flag_errors({"name": f"--{role}"}):    # an unknown model: name --ROLE
            if seed is None:
                return models.get_model(name, num_classes, **options)
            return models.untrained_teacher(name, seed, num_classes, **options)
    except PIDKitError as exc:      # get_model's errors about the options: name the flag
        cause = exc.__cause__
        if not str(exc).startswith("kwargs:") or cause is None:
            raise
        if isinstance(cause, TypeError):
            raise fail(_flag(role, "kw"), f"model {name!r} does not accept {options} "
                       f"({cause})", _accepted_advice(name), kind=PIDTypeError) from cause
        raise fail(_flag(role, "kw"), f"model {name!r} cannot be built with {options} "
                   f"({cause})", "Pass positive sizes") from cause
    except (TypeError, ValueError) as exc:
        raise fail(_flag(role, "kw"), f"model {name!r} does not accept {options} ({exc})",
                   _accepted_advice(name), kind=PIDTypeError) from exc


def _accepted_advice(name: str) -> str:
    """The advice listing the keyword options of the factory of ``name``."""
    accepted = _factory_options(name)
    return (f"Accepted options of {name!r}: {accepted}" if accepted else
            f"See the signature of the factory of {name!r} (pidkit_distill.models)")


def _factory_options(name: str) -> str | None:
    """The keyword parameters of the factory ``get_model`` calls for ``name`` (registered
    names only), as text; None when it cannot be told."""
    from .. import models

    factory = models._REGISTRY.get(name.lower())
    if factory is None:
        return None
    params = inspect.signature(factory).parameters.values()
    names = [p.name for p in params if p.name != "num_classes"
             and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    more = any(p.kind is p.VAR_KEYWORD for p in params)
    return ", ".join(names) + (" (and options passed on to the model class)" if more else "")


def build_teacher(args: argparse.Namespace, num_classes: int):
    """The frozen teacher of ``--teacher``: loaded from ``--teacher-weights``, or randomly
    initialised from ``--teacher-seed`` with ``--untrained-teacher``. Exactly one of the two
    is required: a named teacher without weights would be a random network that nobody asked
    for (the commands distil from, or audit, a *trained* teacher unless told otherwise)."""
    if args.untrained_teacher and args.teacher_weights:
        raise fail("--untrained-teacher", "and --teacher-weights were both given",
                   "Pass --teacher-weights FILE for a trained teacher, or --untrained-teacher "
                   "for a random frozen one, not both")
    if not args.teacher:
        if args.untrained_teacher or args.teacher_weights:
            flag = "--untrained-teacher" if args.untrained_teacher else "--teacher-weights"
            raise fail(flag, "needs --teacher", "Name the teacher model with --teacher NAME")
        return None
    if args.untrained_teacher:
        return build_model(args.teacher, num_classes, args.teacher_kw, "teacher",
                           seed=args.teacher_seed)
    if not args.teacher_weights:
        raise fail("--teacher-weights", f"is missing: --teacher {args.teacher} without "
                   "weights would be a randomly initialised network",
                   "Pass --teacher-weights FILE (a state_dict, e.g. written by --save-student "
                   "of a run that trained the teacher), or --untrained-teacher to use a random "
                   "frozen teacher on purpose")
    teacher = build_model(args.teacher, num_classes, args.teacher_kw, "teacher")
    load_into(teacher, load_weights(args.teacher_weights, "teacher"), args.teacher_weights,
              "teacher", args.teacher)
    return teacher


def load_weights(path: str, role: str) -> dict:
    """A ``state_dict`` from a plain weights file or, for the student, from a trainer
    checkpoint (its student weights), read once by :func:`pidkit_distill.train.read_saved`
    (``torch.load(weights_only=True)``; a plain weights file may also be in torch.save's legacy
    pre-zip format).

    Raises
    ------
    pidkit.errors.CheckpointError
        The file is missing, a directory, unreadable, not a file ``torch.save`` wrote,
        truncated or corrupted, holds objects other than tensors and plain data, or holds no
        ``state_dict``; or a trainer checkpoint is given as the teacher's weights, or is of a
        format version this one does not read. The message names ``--ROLE-weights``.
    """
    import torch

    from ..train import SavedFile, check_checkpoint_version, is_checkpoint, read_saved

    student = role == "student"
    spec = SavedFile(argument=_flag(role, "weights"), what="weights file",
                     writer="torch.save(model.state_dict(), path)"
                     + (" or Trainer.save_checkpoint" if student else ""),
                     inner="checkpoint.pt" if student else None, legacy=True)
    state = read_saved(path, spec)
    if is_checkpoint(state):
        if not student:
            raise fail(spec.argument, f"{Path(path)} is a trainer checkpoint, which holds the "
                       "student's weights", "Pass the teacher's own state_dict file",
                       kind=CheckpointError)
        return check_checkpoint_version(state, path, spec)["student"]
    if (not isinstance(state, dict) or not state
            or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items())):
        raise fail(spec.argument, f"{Path(path)} holds a {type(state).__name__}, neither a "
                   "state_dict (parameter names to tensors) nor a trainer checkpoint",
                   "Save weights with torch.save(model.state_dict(), path)",
                   kind=CheckpointError)
    return state


def load_into(model, state: dict, path: str, role: str, name: str) -> None:
    """``model.load_state_dict(state)`` (strict), with a typed error naming ``--ROLE-weights``
    and listing a few missing, unexpected and mis-shaped entries when the file was saved from
    another architecture."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = [f"{len(keys)} {what} (e.g. {', '.join(keys[:SHOWN_KEYS])})"
                for what, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                   ("shape mismatches, file vs model", shapes)) if keys]
    if problems:
        raise fail(_flag(role, "weights"), f"{path} does not fit model {name!r}: "
                   + "; ".join(problems), f"Pass the --{role} and --{role}-kw of the model "
                   "that saved these weights")
    model.load_state_dict(state)
