"""Optimizers and learning-rate schedulers the way PyTorch users set them up.

Each phase (student, teacher) gets its own optimizer, built by :func:`build_optimizer` from a
name (``"sgd"``, ``"adam"``, ``"adamw"``), any ``torch.optim.Optimizer`` class, or a factory
``param_groups -> Optimizer`` (e.g. ``functools.partial(torch.optim.AdamW, lr=3e-4)``).

The factory receives named parameter groups (:func:`param_groups`): ``"student"`` and
``"loss"`` (the method's own filters, heads and scales), each split into a group with weight
decay and a ``"..._no_decay"`` group with ``weight_decay=0`` holding the parameters with fewer
than two dimensions: biases, normalisation scales and shifts, and RID's per-channel sigma.
Decaying those shrinks scales that carry no overfitting risk (and, for sigma, pulls the
regulariser's own temperature towards zero). The ``"name"`` entry of each group lets a factory
change one group, e.g. a smaller learning rate for the student's backbone. A weight decay the
factory sets itself (``functools.partial(torch.optim.AdamW, weight_decay=0.05)``) applies to
the decayed groups in place of the trainer's ``weight_decay`` (:func:`build_optimizer`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from pidkit.errors import PIDTypeError
from pidkit.validation import fail

__all__ = ["param_groups", "build_optimizer", "build_scheduler", "OPTIMIZERS"]

#: Optimizers accepted by name.
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}

OptimizerSpec = str | type | Callable[[list[dict]], torch.optim.Optimizer]


def param_groups(named: Iterable[tuple[str, Iterable[nn.Parameter]]], weight_decay: float,
                 decay_1d: bool = False) -> list[dict[str, Any]]:
    """Parameter groups ``{"name", "params", "weight_decay"}`` for each ``(name, parameters)``;
    trainable parameters only, each parameter once, empty groups left out.

    With ``decay_1d=False`` (default) parameters with ``ndim < 2`` go to a ``name + "_no_decay"``
    group with ``weight_decay = 0``.

    Examples
    --------
    >>> lin = nn.Linear(3, 2)
    >>> groups = param_groups([("student", lin.parameters())], 1e-4)
    >>> [g["name"] for g in groups], [g["weight_decay"] for g in groups]
    (['student', 'student_no_decay'], [0.0001, 0.0])
    """
    seen: set[int] = set()
    groups = []
    for name, params in named:
        decay, no_decay = [], []
        for p in params:
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (decay if decay_1d or p.dim() >= 2 else no_decay).append(p)
        groups += [{"name": name, "params": decay, "weight_decay": weight_decay},
                   {"name": f"{name}_no_decay", "params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(spec: OptimizerSpec, groups: list[dict], *, lr: float, momentum: float,
                    nesterov: bool, argument: str = "optimizer") -> torch.optim.Optimizer:
    """An optimizer over ``groups`` from a name, an optimizer class or a factory.

    Names and classes get ``lr`` (and, for SGD, ``momentum`` and ``nesterov``); a factory is
    called with the groups alone and sets its own options. The groups carry their
    ``weight_decay``, which overrides an optimizer's own; so a weight decay the factory sets
    itself (``functools.partial(torch.optim.AdamW, lr=3e-4, weight_decay=0.05)``) replaces
    the groups' value in the decayed groups that the factory left as they were (the
    ``..._no_decay`` groups keep 0). A factory that sets none keeps the groups' value.

    Examples
    --------
    >>> lin = nn.Linear(3, 2)
    >>> adamw = functools.partial(torch.optim.AdamW, lr=3e-4, weight_decay=0.05)
    >>> opt = build_optimizer(adamw, param_groups([("student", lin.parameters())], 5e-4),
    ...                       lr=0.1, momentum=0.9, nesterov=False)
    >>> [(g["name"], g["weight_decay"]) for g in opt.param_groups]
    [('student', 0.05), ('student_no_decay', 0.0)]
    """
    if isinstance(spec, str):
        key = spec.lower()
        if key not in OPTIMIZERS:
            raise fail(argument, "is not a known optimizer name", f"Use one of "
                       f"{sorted(OPTIMIZERS)}, a torch.optim class or a factory "
                       "param_groups -> Optimizer", spec)
        spec = OPTIMIZERS[key]
    if isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer):
        options: dict[str, Any] = {"lr": lr}
        if issubclass(spec, torch.optim.SGD):
            options.update(momentum=momentum, nesterov=nesterov and momentum > 0)
        return spec(groups, **options)
    if callable(spec):
        given = {g.get("name"): g.get("weight_decay") for g in groups}
        optimizer = spec(groups)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise fail(argument, f"factory returned {type(optimizer).__name__}, not a "
                       "torch.optim.Optimizer", "Return an optimizer built on the given "
                       "parameter groups", spec, kind=PIDTypeError)
        own = _factory_weight_decay(spec, optimizer)
        if own is not None:    # the factory's own decay, not the groups' config value
            for group in optimizer.param_groups:
                name = group.get("name")
                if name in given and not str(name).endswith("_no_decay") and \
                        group.get("weight_decay") == given[name]:
                    group["weight_decay"] = own
        return optimizer
    raise fail(argument, "must be an optimizer name, a torch.optim.Optimizer class or a "
               "factory", "Example: optimizer='adamw' or functools.partial(torch.optim.AdamW, "
               "lr=3e-4)", spec, kind=PIDTypeError)


def _factory_weight_decay(spec: Callable, optimizer: torch.optim.Optimizer) -> float | None:
    """The weight decay a factory gave its optimizer itself (``functools.partial(AdamW,
    weight_decay=0.05)``, or ``lambda groups: AdamW(groups, weight_decay=0.05)``): a
    ``weight_decay`` keyword of a ``functools.partial``, else the optimizer's default when it
    differs from its class's signature default; ``None`` when the factory set none."""
    if isinstance(spec, functools.partial) and "weight_decay" in spec.keywords:
        return spec.keywords["weight_decay"]
    if "weight_decay" not in optimizer.defaults:
        return None
    try:
        default = inspect.signature(type(optimizer)).parameters["weight_decay"].default
    except (KeyError, TypeError, ValueError):
        return None
    value = optimizer.defaults["weight_decay"]
    return None if default is inspect.Parameter.empty or value == default else value


def build_scheduler(spec: Callable | None, optimizer: torch.optim.Optimizer | None,
                    argument: str = "scheduler"):
    """``spec(optimizer)`` (e.g. ``functools.partial(torch.optim.lr_scheduler.StepLR,
    step_size=30)``) or ``None``."""
    if spec is None or optimizer is None:
        return None
    if not callable(spec):
        raise fail(argument, "must be a factory optimizer -> LRScheduler", "Example: "
                   "functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=100)",
                   spec, kind=PIDTypeError)
    scheduler = spec(optimizer)
    if not hasattr(scheduler, "step") or not hasattr(scheduler, "state_dict"):
        raise fail(argument, f"factory returned {type(scheduler).__name__}, not a learning-rate "
                   "scheduler", "Return a torch.optim.lr_scheduler object", spec,
                   kind=PIDTypeError)
    return scheduler
