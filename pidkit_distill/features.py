"""Intermediate features of any ``nn.Module``, picked by module path with forward hooks.

Nothing in the model is rewritten: :class:`FeatureHooks` registers a forward hook on each named
submodule (paths as in ``model.named_modules()``, e.g. ``"layer3"`` or ``"block2.0.conv1"``) and
keeps the last output of each. A module whose output is a tuple or list is handled by an index
suffix, ``"lstm[0]"``; without a suffix the first tensor of the tuple is used.

Features are tensors of shape ``(N, C)`` (vectors) or ``(N, C, *spatial)`` (maps: ``(N, C, L)``,
``(N, C, H, W)``, ...). The distillation losses treat the second axis as the channel axis.

Examples
--------
>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
>>> with FeatureHooks(net, ["1"]) as hooks:
...     logits = net(torch.zeros(5, 4))
>>> tuple(hooks.features["1"].shape)
(5, 3)
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pidkit._validation import fail
from pidkit.errors import PIDTypeError

__all__ = [
    "FeatureHooks",
    "eval_mode",
    "ExtractedFeatures",
    "get_module",
    "forward_with_features",
    "feature_shapes",
    "extract_features",
]

_SPEC = re.compile(r"^(?P<path>[^\[\]]*)(\[(?P<index>-?\d+)\])?$")


def _parse(spec: str) -> tuple[str, int | None]:
    if not isinstance(spec, str):
        raise fail("layers", "each layer must be a module path string", "Use names from "
                   "model.named_modules(), e.g. 'layer3'", spec, kind=PIDTypeError)
    match = _SPEC.match(spec)
    if match is None:
        raise fail("layers", f"cannot parse layer spec {spec!r}",
                   "Use 'path' or 'path[i]' to pick item i of a tuple output")
    index = match.group("index")
    return match.group("path"), None if index is None else int(index)


def get_module(model: nn.Module, path: str) -> nn.Module:
    """Return the submodule of ``model`` at dotted ``path`` (``""`` is the model itself).

    Raises :class:`~pidkit.errors.PIDValueError` listing close names when the path is unknown.
    """
    modules = dict(model.named_modules())
    if path in modules:
        return modules[path]
    names = [n for n in modules if n]
    near = [n for n in names if path.split(".")[-1] in n][:8] or names[:8]
    raise fail("layers", f"module {path!r} not found in {type(model).__name__}",
               f"Pick one of model.named_modules(), e.g. {near}")


def _select(output, index: int | None, spec: str) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        if index is not None:
            raise fail("layers", f"{spec!r} asks for item {index} but the module returns a tensor",
                       "Drop the [i] suffix")
        return output
    if isinstance(output, (tuple, list)):
        if index is None:
            tensors = [o for o in output if isinstance(o, torch.Tensor)]
            if not tensors:
                raise fail("layers", f"module {spec!r} returned a sequence without tensors",
                           "Hook a module that returns a tensor")
            return tensors[0]
        return output[index]
    raise fail("layers", f"module {spec!r} returned {type(output).__name__}, not a tensor or "
               "tuple", "Hook a submodule that returns a tensor", kind=PIDTypeError)


class FeatureHooks:
    """Context manager capturing the outputs of named submodules during forward passes.

    Parameters
    ----------
    model : nn.Module
        Any model; it is not modified (hooks are removed on exit).
    layers : sequence of str
        Module paths, optionally with a tuple index ``"name[i]"``.
    detach : bool, default False
        Store detached outputs (for audits); keep the graph otherwise (for losses).

    Attributes
    ----------
    features : dict[str, Tensor]
        The last captured output per layer spec, in the order given.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], *, detach: bool = False):
        self.model = model
        self.layers = list(layers)
        self.detach = detach
        self.features: dict[str, torch.Tensor] = {}
        self._handles: list = []
        self._targets = [(spec, *_parse(spec)) for spec in self.layers]
        for _, path, _ in self._targets:
            get_module(model, path)  # fail early on unknown paths

    def _hook(self, spec: str, index: int | None):
        def hook(_module, _inputs, output):
            value = _select(output, index, spec)
            self.features[spec] = value.detach() if self.detach else value
        return hook

    def __enter__(self) -> FeatureHooks:
        for spec, path, index in self._targets:
            module = get_module(self.model, path)
            self._handles.append(module.register_forward_hook(self._hook(spec, index)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def collect(self) -> list[torch.Tensor]:
        """Features of the last forward pass, in the order of ``layers``."""
        missing = [s for s in self.layers if s not in self.features]
        if missing:
            raise fail("layers", f"modules {missing} did not run in the forward pass",
                       "Hook modules that the model's forward actually calls")
        return [self.features[s] for s in self.layers]


def forward_with_features(model: nn.Module, x: torch.Tensor,
                          layers: Sequence[str]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run ``model(x)`` once and return ``(output, [feature per layer])``.

    Gradients flow through the features as through the output (wrap the call in
    ``torch.no_grad()`` for a frozen teacher).
    """
    with FeatureHooks(model, layers) as hooks:
        out = model(x)
        return out, hooks.collect()


@contextlib.contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Eval mode for ``models`` inside the block; afterwards every submodule gets back its own
    previous mode. (``model.train(was)`` would force one mode onto all submodules: a frozen
    teacher wrapped inside a module in training mode would come back training, its BatchNorm
    then normalising with batch statistics and updating its running ones.)

    >>> wrapper = nn.Sequential(nn.BatchNorm1d(3).eval())   # wrapper training, inner frozen
    >>> with eval_mode(wrapper):
    ...     pass
    >>> wrapper.training, wrapper[0].training
    (True, False)
    """
    modes = [(m, m.training) for model in models for m in model.modules()]
    for model in models:
        model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


@torch.no_grad()
def feature_shapes(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> list[tuple]:
    """Per-sample shapes ``(C,)`` or ``(C, *spatial)`` of each layer's output on input ``x``.

    Runs the model in eval mode on ``x`` (a batch of at least 1) and restores its mode after.
    """
    with eval_mode(model):
        _, feats = forward_with_features(model, x, layers)
    return [tuple(f.shape[1:]) for f in feats]


@dataclass
class ExtractedFeatures:
    """Features of a whole data set, on CPU.

    Attributes
    ----------
    features : dict[str, Tensor]
        Layer spec -> tensor ``(N, C, *spatial)`` (float32, detached).
    targets : Tensor
        Labels ``(N,)`` (int64).
    logits : Tensor
        Model outputs ``(N, K)``.
    """

    features: dict[str, torch.Tensor]
    targets: torch.Tensor
    logits: torch.Tensor

    def flat(self, layer: str) -> torch.Tensor:
        """Features of ``layer`` flattened to ``(N, D)``."""
        return self.features[layer].reshape(len(self.targets), -1)


@torch.no_grad()
def extract_features(model: nn.Module, loader: Iterable, layers: Sequence[str],
                     device: str | torch.device = "cpu", *,
                     max_batches: int | None = None) -> ExtractedFeatures:
    """Collect the features of ``layers`` (and labels, logits) over a data loader, in eval mode.

    Parameters
    ----------
    model : nn.Module
        Any model; put in eval mode for the pass and restored to its previous mode after.
    loader : iterable of (x, y)
        A ``DataLoader`` or any iterable of ``(inputs, labels)`` batches.
    layers : sequence of str
        Module paths (see :class:`FeatureHooks`).
    device : str or torch.device
        Where the model runs; results are returned on CPU.
    max_batches : int, optional
        Stop after this many batches.

    Returns
    -------
    ExtractedFeatures

    Examples
    --------
    >>> from pidkit_distill import data, models
    >>> train, test = data.load_digits()
    >>> net = models.get_model("digits_cnn", width=4)
    >>> loader = torch.utils.data.DataLoader(test, batch_size=128)
    >>> ex = extract_features(net, loader, ["layer3"])
    >>> ex.features["layer3"].shape[0] == len(test)
    True
    """
    device = torch.device(device)
    feats: dict[str, list] = {s: [] for s in layers}
    targets, logits = [], []
    with eval_mode(model), FeatureHooks(model, layers, detach=True) as hooks:
        for i, (x, y) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            out = model(x.to(device))
            for spec, f in zip(layers, hooks.collect(), strict=True):
                feats[spec].append(f.float().cpu())
            targets.append(torch.as_tensor(y).cpu())
            logits.append(out.detach().float().cpu())
    if not targets:
        raise fail("loader", "yielded no batches", "Pass a non-empty data loader")
    return ExtractedFeatures({s: torch.cat(v) for s, v in feats.items()},
                             torch.cat(targets).long(), torch.cat(logits))
