"""A frozen teacher evaluated once on a fixed set of inputs, then replayed.

Distillation on a fixed training pool without augmentation asks a frozen teacher for the same
outputs every epoch. :class:`CachedTeacher` computes them once and replays them to the trainer
and to its feature hooks, which see the same module paths as on the teacher itself. With the
nuisance benchmark's residual teachers it cut the full run from 1029 s to 640 s
(docs/nuisance_benchmark.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from pidkit.errors import PIDTypeError, PIDValueError
from pidkit.validation import check_int, fail

from .batches import check_input_dtypes
from .features import _parse, check_module_paths, forward_with_features, split_layout
from .models import freeze, module_dtype

__all__ = ["CachedTeacher"]


class _Replay(nn.Identity):
    """A point where :class:`CachedTeacher` hands a stored feature map to forward hooks."""


def _replayed_items(outputs: Sequence[str]) -> dict[str, dict[int | None, int]]:
    """For each module path among the output specs (``"path"`` or ``"path[i]"``), which stored
    feature is its item ``i`` (``None``: the module's tensor output). A path is either a
    tensor or items of a tuple, and items are counted from 0, so that the replayed tuple can
    hold them at their places."""
    items: dict[str, dict[int | None, int]] = {}
    for k, spec in enumerate(outputs):
        path, index, _ = _parse(spec)
        if index is not None and index < 0:
            raise fail("layers", f"{spec!r} counts an item from the end, which CachedTeacher "
                       "cannot replay (it does not store the other items)", "Name the item "
                       f"by its position from 0, e.g. '{path}[0]'", spec)
        given = items.setdefault(path, {})
        if index in given or (given and (index is None) != (None in given)):
            raise fail("layers", f"{spec!r} names the output of module {path!r} again",
                       "Give each module once: either its tensor output ('path') or distinct "
                       "items of its tuple output ('path[0]', 'path[1]')", spec)
        given[index] = k
    return items


def _replayed_output(items: dict[int | None, int], feats: Sequence[torch.Tensor]) -> Any:
    """The output a replayed module returns: the stored tensor, or a tuple holding the stored
    items at their places (None elsewhere), from which the hooks pick ``[i]``."""
    if None in items:
        return feats[items[None]]
    return tuple(feats[items[i]] if i in items else None for i in range(max(items) + 1))


def _row_keys(x: torch.Tensor) -> list[bytes]:
    """One exact key per sample: the bytes of its values."""
    rows = x.detach().to("cpu").contiguous().reshape(len(x), -1).numpy()
    return [row.tobytes() for row in rows]


class CachedTeacher(nn.Module):
    """Replay a frozen, deterministic teacher's logits and features on known inputs.

    At construction the teacher runs once over ``inputs`` (in batches of ``batch_size``) and
    its logits and the outputs of the modules at ``layers`` are stored. ``forward(x)``: when
    every sample of ``x`` is one of ``inputs`` (compared value by value), the stored logits are
    returned and each stored feature map passes through an identity module registered at the
    same path as in the teacher, so that forward hooks on ``layers`` (e.g.
    :class:`~pidkit_distill.features.FeatureHooks`) capture what the teacher would give;
    otherwise the teacher runs on ``x`` and its features pass through the same modules.

    The teacher is frozen in place (:func:`~pidkit_distill.models.freeze`, as the trainer
    does with any teacher) and must then be deterministic: no random layers (not
    ``NuisanceTeacher(kind="noise")``, whose channels are fresh noise at every call). Outputs
    are computed with the batch size of the cache, not of the caller, so they may differ from
    a direct call in the last bits.

    Parameters
    ----------
    teacher : nn.Module
        The teacher (frozen here, in place).
    inputs : Tensor
        The inputs it will be asked about, ``(N, ...)``.
    layers : sequence of str
        Module paths of the teacher whose outputs are replayed (``"path[i]"``: item ``i``,
        counted from 0, of a module's tuple output; the replayed module then returns a tuple
        holding the cached items at their places),
        optionally with a layout suffix (``"blocks.1:channels_last"``,
        :class:`~pidkit_distill.features.FeatureHooks`): the outputs are stored as the
        teacher returns them, and the layout applies where they are hooked, so
        ``feature_layers`` (the specs as given, the trainer's default layers) reads them as
        the teacher's own hooks would.
    batch_size : int, default 500

    Examples
    --------
    >>> from pidkit_distill import models
    >>> from pidkit_distill.features import forward_with_features
    >>> teacher = models.freeze(models.get_model("digits_cnn", width=4))
    >>> x = torch.randn(6, 1, 8, 8)
    >>> cached = CachedTeacher(teacher, x, ["layer3"])
    >>> logits, (f,) = forward_with_features(cached, x[:2], ["layer3"])
    >>> bool(torch.allclose(logits, teacher(x[:2]), atol=1e-6)), tuple(f.shape)
    (True, (2, 8, 4, 4))
    """

    def __init__(self, teacher: nn.Module, inputs: torch.Tensor, layers: Sequence[str],
                 batch_size: int = 500):
        super().__init__()
        if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1 or len(inputs) == 0:
            raise fail("inputs", "must be a non-empty tensor of samples (N, ...)",
                       "Pass the training inputs, e.g. torch.stack([x for x, _ in dataset])",
                       type(inputs).__name__)
        batch_size = check_int(batch_size, "batch_size", 1)
        if not isinstance(teacher, nn.Module):
            raise fail("teacher", f"is a {type(teacher).__name__}, not a torch.nn.Module",
                       "Pass the teacher network", kind=PIDTypeError)
        if isinstance(layers, str) or not isinstance(layers, Sequence) or not all(
                isinstance(p, str) for p in layers):
            raise fail("layers", "must be a list of module paths", "Pass e.g. ['layer2', "
                       "'layer3'] (names of teacher.named_modules())", layers, kind=PIDTypeError)
        check_module_paths(teacher, layers, name="teacher")
        check_input_dtypes(inputs, module_dtype(teacher), "inputs", model="teacher")
        self.teacher = freeze(teacher)
        self.layers = list(layers)
        self.feature_layers = tuple(self.layers)
        self._outputs = [split_layout(spec)[0] for spec in self.layers]   # outputs as returned
        self._items = _replayed_items(self._outputs)
        for path in self._items:
            self._install(path)
        logits, feats = [], [[] for _ in self.layers]
        with torch.no_grad():
            for start in range(0, len(inputs), batch_size):
                batch = inputs[start:start + batch_size]
                out, fs = forward_with_features(teacher, batch, self._outputs)
                logits.append(out)
                for store, f, spec in zip(feats, fs, self.layers, strict=True):
                    if f.dim() == 0 or f.shape[0] != len(batch):
                        raise fail("layers", f"{spec!r} gives a feature of shape "
                                   f"{tuple(f.shape)} for {len(batch)} inputs: its first axis "
                                   "is not the batch, so it cannot be stored per sample",
                                   "Cache batch-first outputs (an RNN's hidden state is "
                                   "(layers, N, H): use its sequence output, batch_first=True)",
                                   spec)
                    store.append(f)
        self.register_buffer("stored_logits", torch.cat(logits), persistent=False)
        for i, store in enumerate(feats):
            self.register_buffer(f"stored_feature{i}", torch.cat(store), persistent=False)
        self._index = {key: i for i, key in enumerate(_row_keys(inputs))}

    def _install(self, path: str) -> None:
        """Put a :class:`_Replay` module at dotted ``path``, creating containers on the way."""
        parts = path.split(".")
        node: nn.Module = self
        for depth, name in enumerate(parts):    # the cache's own attributes (teacher, ...)
            if name not in node._modules and hasattr(node, name) or (
                    node is self and name == "teacher"):
                raise fail("layers", f"path {path!r} clashes with the cache's attribute "
                           f"{name!r}", "Wrap the teacher so that its layer paths do not "
                           "start with 'teacher' or a torch.nn.Module attribute", path)
            if depth == len(parts) - 1:
                break
            if name not in node._modules:
                node.add_module(name, nn.Module())
            node = node._modules[name]
            if isinstance(node, _Replay):   # path lies inside another replayed module
                break
        last = parts[-1]
        if last in node._modules or isinstance(node, _Replay):
            raise fail("layers", f"path {path!r} is given twice or nests inside another one",
                       "Pass distinct, non-nested module paths", path)
        node.add_module(last, _Replay())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or len(x) == 0:
            raise fail("x", "must be a non-empty batch tensor (N, ...)", "Pass the inputs the "
                       "teacher would take", type(x).__name__, kind=PIDTypeError
                       if not isinstance(x, torch.Tensor) else PIDValueError)
        rows = [self._index.get(key) for key in _row_keys(x)]
        if None in rows:
            logits, feats = forward_with_features(self.teacher, x, self._outputs)
        else:
            idx = torch.tensor(rows, device=self.stored_logits.device)
            logits = self.stored_logits[idx]
            feats = [getattr(self, f"stored_feature{i}")[idx] for i in range(len(self.layers))]
        for path, items in self._items.items():
            self.get_submodule(path)(_replayed_output(items, feats))
        return logits
