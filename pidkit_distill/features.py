"""Intermediate features of any ``nn.Module``, picked by module path with forward hooks.

Nothing in the model is rewritten: :class:`FeatureHooks` registers a forward hook on each named
submodule (paths as in ``model.named_modules()``, e.g. ``"layer3"`` or ``"block2.0.conv1"``) and
keeps the last output of each. A module whose output is a tuple, a list, a mapping (a Hugging
Face ``ModelOutput``: its values in order) or a dataclass (its fields in order) is handled by an
index suffix, ``"lstm[0]"``; without a suffix its first tensor is used. A model wrapped
by ``torch.compile``, :class:`~torch.nn.DataParallel` or
:class:`~torch.nn.parallel.DistributedDataParallel` takes the paths of the model inside it too
(``"layer3"`` for ``"_orig_mod.layer3"`` or ``"module.layer3"``).

Features are tensors of shape ``(N, C)`` (vectors) or ``(N, C, *spatial)`` (maps: ``(N, C, L)``,
``(N, C, H, W)``, ...). The distillation losses and the audits treat the second axis as the
channel axis. A module whose output has its channels last, such as the tokens ``(N, T, C)`` of a
batch-first transformer layer, is named with the layout suffix ``":channels_last"``
(``"encoder.layers.encoder_layer_1:channels_last"``, ``"blocks.5[0]:channels_last"``): its output
``(N, *positions, C)`` is read as ``(N, C, *positions)`` (a view, moved once where it is
captured), so that every loss and audit sees ``C`` channels at ``T`` positions.
``":channels_first"`` is the default, the output as it is. A shape cannot tell the two layouts
apart (``(N, 197, 768)`` could be 197 channels of length 768), so nothing is guessed. The
layout is that of the tensor's axes, not its memory format: a convolution's output in
``torch.channels_last`` memory format is still ``(N, C, H, W)`` and takes no suffix.

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
import dataclasses
import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pidkit.errors import PIDTypeError
from pidkit.validation import check_choice, fail

from .batches import MODULE_WRAPPERS
from .labels import as_class_labels

__all__ = [
    "FeatureHooks",
    "eval_mode",
    "ExtractedFeatures",
    "get_module",
    "forward_with_features",
    "feature_shapes",
    "check_layer_pairs",
    "check_module_paths",
    "check_feature_batch",
    "inner_model",
    "extract_features",
    "FEATURE_LAYOUTS",
    "split_layout",
]

#: Samples per batch when :func:`extract_features` batches a data set of samples itself.
EXTRACT_BATCH_SIZE = 256

#: How a hooked output's axes are laid out, named by a layer spec's suffix ``":layout"``:
#: ``(N, C, *positions)`` (the default) or ``(N, *positions, C)`` (e.g. transformer tokens).
FEATURE_LAYOUTS = ("channels_first", "channels_last")

_SPEC = re.compile(r"^(?P<path>[^\[\]:]*)(\[(?P<index>-?\d+)\])?(:(?P<layout>[^:]*))?$")


def _parse(spec: str) -> tuple[str, int | None, str]:
    """``spec`` as ``(module path, item index or None, layout)``."""
    if not isinstance(spec, str):
        raise fail("layers", "each layer must be a module path string", "Use names from "
                   "model.named_modules(), e.g. 'layer3'", spec, kind=PIDTypeError)
    match = _SPEC.match(spec)
    if match is None:
        raise fail("layers", f"cannot parse layer spec {spec!r}",
                   "Use 'path', 'path[i]' to pick item i of a tuple output, and a suffix "
                   "':channels_last' for an output laid out (N, *positions, C)")
    index, layout = match.group("index"), match.group("layout")
    if layout is None:
        layout = "channels_first"
    elif layout not in FEATURE_LAYOUTS:
        raise fail("layers", f"layer spec {spec!r} names the feature layout {layout!r}, which "
                   "is not a known layout", f"Use one of: {', '.join(FEATURE_LAYOUTS)} (e.g. "
                   f"'{match.group(0).rsplit(':', 1)[0]}:channels_last' for tokens (N, T, C))")
    return match.group("path"), None if index is None else int(index), layout


def split_layout(spec: str) -> tuple[str, str]:
    """Split a layer spec into the spec of the module output and its feature layout.

    Parameters
    ----------
    spec : str
        ``"path"``, ``"path[i]"``, optionally followed by ``":channels_last"`` or
        ``":channels_first"`` (see :class:`FeatureHooks`).

    Returns
    -------
    output : str
        ``spec`` without its layout suffix: the output as the module returns it.
    layout : {"channels_first", "channels_last"}
        One of :data:`FEATURE_LAYOUTS` (``"channels_first"`` when the spec has no suffix).

    Raises
    ------
    PIDValueError
        ``spec`` cannot be parsed, or names a layout other than :data:`FEATURE_LAYOUTS`; the
        message names ``layers`` and lists the layouts.

    Examples
    --------
    >>> split_layout("encoder.layers.encoder_layer_1:channels_last")
    ('encoder.layers.encoder_layer_1', 'channels_last')
    >>> split_layout("lstm[0]")
    ('lstm[0]', 'channels_first')
    """
    path, index, layout = _parse(spec)
    return (path if index is None else f"{path}[{index}]"), layout


def _channels_first(x: torch.Tensor, layout: str) -> torch.Tensor:
    """``x`` with its channel axis second: an ``(N, *positions, C)`` output of a
    ``"channels_last"`` layer moved to ``(N, C, *positions)`` (a view); vectors ``(N, C)`` and
    ``"channels_first"`` outputs as they are."""
    return x.movedim(-1, 1) if layout == "channels_last" and x.dim() > 2 else x


def _describe(model: nn.Module, name: str) -> str:
    kind = type(model).__name__
    return name if name == kind else f"the {name} ({kind})"


def _unknown_module(model: nn.Module, path: str, modules: dict[str, nn.Module],
                    name: str) -> Exception:
    """The error for a module path that ``model`` does not have: the closest paths it does have
    (difflib), how many modules it has and its top-level children."""
    names = [n for n in modules if n]
    near = difflib.get_close_matches(path, names, n=8, cutoff=0.6)
    depth = path.count(".")  # prefer paths as deep as the one asked for ('layer5' -> 'layer4')
    near = sorted(near, key=lambda n: abs(n.count(".") - depth))[:5]
    if not near and "." in path:  # compare the last component: 'layer3.0.conv3' -> '...conv2'
        last = path.rsplit(".", 1)[-1]
        near = [n for n in names if difflib.get_close_matches(last, [n.rsplit(".", 1)[-1]],
                                                              n=1, cutoff=0.75)][:5]
    children = [n for n, _ in model.named_children()]
    shown = ", ".join(children[:12]) + (f", ... ({len(children)} in all)"
                                         if len(children) > 12 else "")
    guess = (f"Did you mean {' or '.join(repr(n) for n in near)}? " if near else
             "No module path is close to it. ")
    it = _describe(model, name)
    it = it[:1].upper() + it[1:]
    where = (f"{it} has {len(names)} submodules; top level: {shown or '(none)'}. " if names
             else f"{it} has no submodules (use '' for the model's own output). ")
    return fail("layers", f"module {path!r} not found in {_describe(model, name)}",
                guess + where + f"List the paths with [n for n, _ in {name}.named_modules()]")


def get_module(model: nn.Module, path: str, *, name: str = "model") -> nn.Module:
    """Return the submodule of ``model`` at dotted ``path`` (``""`` is the model itself).

    Parameters
    ----------
    model : nn.Module
    path : str
        A key of ``dict(model.named_modules())``.
    name : str, default "model"
        What to call the model in error messages (``"teacher"``, ``"student"``).

    Raises
    ------
    PIDValueError
        ``path`` is not a module of ``model``; the message names ``layers``, the model, the
        closest paths it has (difflib) and its top-level children.

    Examples
    --------
    >>> net = nn.Sequential()
    >>> net.add_module("layer3", nn.Linear(2, 2))
    >>> get_module(net, "layr3", name="student")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pidkit.errors.PIDValueError: layers: module 'layr3' not found in the student ...
    """
    modules = dict(model.named_modules())
    found = _resolve(model, path, modules)
    if found is not None:
        return modules[found]
    raise _unknown_module(model, path, modules, name)


def _wrapper_prefix(model: nn.Module) -> str:
    """The path prefix a wrapper adds to its model's module paths: ``"_orig_mod."`` for
    ``torch.compile(model)``, ``"module."`` for :class:`~torch.nn.DataParallel`,
    :class:`~torch.nn.parallel.DistributedDataParallel` and
    :class:`~pidkit_distill.batches.KeywordInputs`, repeated for nested wrappers; ``""`` for a
    plain model."""
    inner = getattr(model, "_orig_mod", None)
    if isinstance(inner, nn.Module):
        return "_orig_mod." + _wrapper_prefix(inner)
    if isinstance(model, MODULE_WRAPPERS):
        return "module." + _wrapper_prefix(model.module)
    return ""


def inner_model(model: nn.Module) -> nn.Module:
    """The model inside the wrappers whose path prefix :func:`_wrapper_prefix` knows
    (``torch.compile``, :class:`~torch.nn.DataParallel`,
    :class:`~torch.nn.parallel.DistributedDataParallel`,
    :class:`~pidkit_distill.batches.KeywordInputs`, nested ones too), or ``model`` itself: the
    model whose module paths and ``state_dict`` keys the user built."""
    inner = getattr(model, "_orig_mod", None)
    if isinstance(inner, nn.Module):
        return inner_model(inner)
    if isinstance(model, MODULE_WRAPPERS):
        return inner_model(model.module)
    return model


def _resolve(model: nn.Module, path: str, modules: dict[str, nn.Module]) -> str | None:
    """``path`` if ``model`` has it, else the same path inside the model a wrapper holds
    (``"layer3"`` of ``torch.compile(net)`` is ``"_orig_mod.layer3"``: the paths of the model
    the user built), else ``None``."""
    if path in modules:
        return path
    inner = _wrapper_prefix(model) + path
    return inner if path and inner in modules else None


def check_module_paths(model: nn.Module, paths: Sequence[str], *, name: str = "model") -> None:
    """Refuse layer specs that are not layers of ``model``: the empty path (the model itself),
    paths it does not have (:func:`get_module`'s error, with the closest paths) and unknown
    layout suffixes. A spec may pick an item of a tuple output, ``"lstm[0]"``, and name its
    layout, ``"blocks.5:channels_last"`` (see :class:`FeatureHooks`)."""
    for spec in paths:
        path, _, _ = _parse(spec)
        if not path:
            raise fail("layers", f"holds the empty path, which names the whole {name}, not a "
                       "layer", f"Name a submodule of the {name} (one of {name}.named_modules())")
        get_module(model, path, name=name)


def _items(output) -> list | None:
    """The items of a structured module output in order: a tuple's or list's entries, a
    mapping's values (``output[i]`` of a Hugging Face ``ModelOutput``) or a dataclass's fields;
    ``None`` for anything else."""
    if isinstance(output, (tuple, list)):
        return list(output)
    if isinstance(output, Mapping):
        return list(output.values())
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        return [getattr(output, f.name) for f in dataclasses.fields(output)]
    return None


def _select(output, index: int | None, spec: str) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        if index is not None:
            raise fail("layers", f"{spec!r} asks for item {index} but the module returns a tensor",
                       "Drop the [i] suffix")
        return output
    items = _items(output)
    if items is None:
        raise fail("layers", f"module {spec!r} returned {type(output).__name__}, not a tensor, "
                   "tuple, list, mapping or dataclass", "Hook a submodule that returns a tensor",
                   kind=PIDTypeError)
    kinds = ", ".join(f"[{i}] {type(o).__name__}" for i, o in enumerate(items))
    if index is None:
        tensors = [o for o in items if isinstance(o, torch.Tensor)]
        if not tensors:
            raise fail("layers", f"module {spec!r} returned a {type(output).__name__} without "
                       f"a tensor among its items ({kinds or 'none'})",
                       "Hook a module that returns a tensor", kind=PIDTypeError)
        return tensors[0]
    if not -len(items) <= index < len(items):
        raise fail("layers", f"{spec!r} asks for item {index} but the module returned a "
                   f"{type(output).__name__} of {len(items)} items ({kinds or 'none'})",
                   "Pick an item that exists, or drop the [i] suffix for its first tensor")
    if not isinstance(items[index], torch.Tensor):
        raise fail("layers", f"{spec!r} asks for item {index} of the module's "
                   f"{type(output).__name__}, which is a {type(items[index]).__name__}, not a "
                   f"tensor (items: {kinds})", "Pick an item that is a tensor, or hook the "
                   "submodule that computes the tensor you want", kind=PIDTypeError)
    return items[index]


class FeatureHooks:
    """Context manager capturing the outputs of named submodules during forward passes.

    Parameters
    ----------
    model : nn.Module
        Any model; it is not modified (hooks are removed on exit).
    layers : sequence of str
        Module paths, optionally with the index of an item of a structured output
        ``"name[i]"`` (a tuple's, a list's, a mapping's or a dataclass's items in order;
        negative indices count from the end), and optionally with the layout of the output's
        axes, ``"name:channels_last"`` or ``"name[i]:channels_last"`` (one of
        :data:`FEATURE_LAYOUTS`): a ``"channels_last"`` output ``(N, *positions, C)``, such as
        a batch-first transformer layer's tokens ``(N, T, C)``, is captured as the view
        ``(N, C, *positions)``; ``"channels_first"`` (the default) keeps it as it is.
    detach : bool, default False
        Store detached outputs (for audits); keep the graph otherwise (for losses).
    name : str, default "model"
        What to call the model in error messages (``"teacher"``, ``"student"``).

    Attributes
    ----------
    features : dict[str, Tensor]
        The last captured output per layer spec, in the order given, with its channels on
        axis 1 (``(N, C)`` or ``(N, C, *positions)``).

    Raises
    ------
    PIDValueError
        A path is not a module of ``model``, or a spec names an unknown layout (raised here,
        before any forward pass; see :func:`get_module`).

    Examples
    --------
    A transformer layer's tokens ``(N, T, C)`` read as ``C`` channels at ``T`` positions:

    >>> layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, batch_first=True)
    >>> net = nn.Sequential(layer)
    >>> with FeatureHooks(net, ["0:channels_last"]) as hooks:
    ...     tokens = net(torch.zeros(2, 5, 8))
    >>> tuple(tokens.shape), tuple(hooks.features["0:channels_last"].shape)
    ((2, 5, 8), (2, 8, 5))
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], *, detach: bool = False,
                 name: str = "model"):
        if not isinstance(model, nn.Module):
            raise fail(name, f"is a {type(model).__name__}, not a torch.nn.Module",
                       "Pass the network (an nn.Module)", kind=PIDTypeError)
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
            raise fail("layers", "must be a list of module paths (a str would be read as "
                       "one path per character)", "Pass e.g. ['layer3'] (names of "
                       f"{name}.named_modules())", layers, kind=PIDTypeError)
        self.model = model
        self.layers = list(layers)
        self.detach = detach
        self.name = name
        self.features: dict[str, torch.Tensor] = {}
        self._versions: dict[str, int | None] = {}     # version counters at capture
        self._calls: dict[str, int] = {}    # calls per layer in the current forward pass
        self._handles: list = []
        targets = [(spec, *_parse(spec)) for spec in self.layers]
        modules = dict(model.named_modules()) if targets else {}
        found = [_resolve(model, path, modules) for _, path, _, _ in targets]
        for (_, path, _, _), at in zip(targets, found, strict=True):  # unknown paths: fail early
            if at is None:
                raise _unknown_module(model, path, modules, name)
        self._targets = [(spec, modules[at], index, layout)
                         for (spec, _, index, layout), at in zip(targets, found, strict=True)]
        if any(isinstance(m, torch.jit.ScriptModule) for _, m, _, _ in self._targets):
            raise fail("layers", f"name TorchScript modules of {_describe(model, name)}, "
                       "and TorchScript does not support forward hooks", "Pass the eager "
                       "nn.Module (before torch.jit.script), or a method that needs no "
                       "features (method='kd' or 'none')", self.layers, kind=PIDTypeError)

    def _hook(self, spec: str, index: int | None, layout: str):
        def hook(_module, _inputs, output):
            value = _select(output, index, spec)
            self.features[spec] = _channels_first(value.detach() if self.detach else value,
                                                  layout)
            self._versions[spec] = _version(value)
            self._calls[spec] = self._calls.get(spec, 0) + 1
        return hook

    def _new_pass(self, *_) -> None:
        """A forward pre-hook on the model: a new forward pass counts its calls afresh."""
        self._calls.clear()

    def __enter__(self) -> FeatureHooks:
        if self._handles:           # entered again while active: a second set would leak
            raise fail("FeatureHooks", "is already active (entered twice)", "Use one `with` "
                       "block per FeatureHooks object, or create another for a nested pass",
                       kind=PIDTypeError)
        self._calls.clear()
        if self._targets:           # a TorchScript model (no hooks) may run without layers
            self._handles.append(self.model.register_forward_pre_hook(self._new_pass))
        for spec, module, index, layout in self._targets:
            self._handles.append(module.register_forward_hook(self._hook(spec, index, layout)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def collect(self) -> list[torch.Tensor]:
        """Features of the last forward pass, in the order of ``layers``.

        Raises
        ------
        PIDValueError
            A layer did not run; a layer ran more than once in the forward pass (a module
            applied twice, such as the one ``relu`` of a torchvision ResNet block, after
            ``bn1`` and after the residual sum), whose features would be those of its last
            call only; or its output was changed in place later in the pass.
        """
        missing = [s for s in self.layers if s not in self.features]
        if missing:
            raise fail("layers", f"modules {missing} of {_describe(self.model, self.name)} did "
                       "not run in the forward pass",
                       "Hook modules that the model's forward actually calls")
        repeated = {s: self._calls[s] for s in self.layers if self._calls.get(s, 0) > 1}
        self._calls.clear()
        if repeated:
            runs = ", ".join(f"{s!r} {n} times" for s, n in repeated.items())
            raise fail("layers", f"a hooked module of {_describe(self.model, self.name)} ran "
                       f"more than once in one forward pass ({runs}): it is applied at several "
                       "points of the network (e.g. the one `relu` of a torchvision ResNet "
                       "block, after bn1 and after the residual sum), so its features would "
                       "be those of its last call only", "Hook a module that runs once per "
                       "forward pass: the enclosing block or a neighbouring layer (in a "
                       "torchvision ResNet, 'layer1.0' or 'layer1.0.conv2', not "
                       "'layer1.0.relu')")
        changed = [s for s in self.layers
                   if _version(self.features[s]) != self._versions[s]]
        if changed:
            raise fail("layers", f"the output of {changed} in {_describe(self.model, self.name)} "
                       "was changed in place later in the forward pass (an in-place operation "
                       "such as nn.ReLU(inplace=True) or `out += identity` after the module), "
                       "so the captured features would be those of a later point of the "
                       "network", "Hook a module whose output is not modified afterwards (e.g. "
                       "the enclosing block), or turn the in-place operations off: for m in "
                       "model.modules(): if isinstance(m, nn.ReLU): m.inplace = False")
        return [self.features[s] for s in self.layers]


def _version(x: torch.Tensor) -> int | None:
    """The version counter of ``x`` (bumped by every in-place operation on its storage's
    view), or ``None`` for an inference-mode tensor, which has none."""
    return None if x.is_inference() else x._version


def forward_with_features(model: nn.Module, x: torch.Tensor, layers: Sequence[str], *,
                          name: str = "model") -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run ``model(x)`` once and return ``(output, [feature per layer])``.

    Gradients flow through the features as through the output (wrap the call in
    ``torch.no_grad()`` for a frozen teacher). ``name`` is what error messages call the model.
    """
    with FeatureHooks(model, layers, name=name) as hooks:
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
def feature_shapes(model: nn.Module, x: torch.Tensor, layers: Sequence[str], *,
                   name: str = "model") -> list[tuple]:
    """Per-sample shapes ``(C,)`` or ``(C, *spatial)`` of each layer's output on input ``x``.

    Runs the model in eval mode on ``x`` (a batch of at least 1) and restores its mode after.
    A layer named with ``":channels_last"`` gives the shape of its output with the channels
    moved first (tokens ``(N, T, C)``: ``(C, T)``), as :class:`FeatureHooks` captures it.
    ``name`` is what error messages call the model (``"teacher"``, ``"student"``).

    Raises
    ------
    PIDValueError
        A layer is not a module of ``model`` (see :func:`get_module`), or its output does not
        have the batch on its first axis (e.g. tokens flattened to ``(N*L, C)``) or has no
        channel axis.
    """
    with eval_mode(model):
        _, feats = forward_with_features(model, x, layers, name=name)
    n = len(x)
    for spec, f in zip(layers, feats, strict=True):
        shape = tuple(f.shape)
        if f.dim() < 2 or shape[0] != n:
            what = ("has no channel axis" if f.dim() == 1 and shape[0] == n else
                    f"does not have the batch of {n} inputs on its first axis")
            raise fail("layers", f"layer {spec!r} of {_describe(model, name)} returned shape "
                       f"{shape}, which {what}", _BATCH_FIRST_FIX)
    return [tuple(f.shape[1:]) for f in feats]


_BATCH_FIRST_FIX = ("Hook modules whose output is (N, C) or (N, C, *spatial) with the batch "
                    "first (build nn.LSTM, nn.GRU, nn.MultiheadAttention and nn.Transformer* "
                    "layers with batch_first=True: otherwise they output (L, N, C)); a module "
                    "that folds the batch into another axis (e.g. tokens flattened to (N*L, C)) "
                    "or reduces over it cannot be distilled or audited. Tokens (N, T, C) "
                    "are read as C channels with the suffix ':channels_last' (e.g. "
                    "'encoder.layers.encoder_layer_1:channels_last')")


def check_layer_pairs(teacher_shapes: Sequence[Sequence[int]],
                      student_shapes: Sequence[Sequence[int]],
                      layers: Sequence[tuple[str, str]] | None = None, *,
                      spatial: str = "pool") -> None:
    """Check the per-sample shapes of the (teacher, student) layer pairs before a loss is built.

    Parameters
    ----------
    teacher_shapes, student_shapes : sequence of tuple
        Per-sample shapes ``(C,)`` or ``(C, *spatial)``, one per pair, as returned by
        :func:`feature_shapes`.
    layers : sequence of (str, str), optional
        The pairs' module paths, named in the messages.
    spatial : {"pool", "match"}, default "pool"
        ``"pool"``: a map may be paired with a vector or with a map of another spatial rank
        (the built-in losses average-pool both sides to a common size, globally when the ranks
        differ). ``"match"``: both sides of every pair must have the same spatial rank, for
        losses that compare features position by position.

    Raises
    ------
    PIDValueError
        The two lists differ in length, a shape has no channel axis or a zero-sized axis, or
        (``spatial="match"``) a pair mixes a map and a vector or maps of different rank. The
        message names the pair and both shapes.

    Examples
    --------
    >>> check_layer_pairs([(64, 8, 8)], [(32, 8, 8)], [("layer3", "layer3")])
    >>> check_layer_pairs([(64, 8, 8)], [(32,)], [("layer3", "fc1")],
    ...                   spatial="match")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pidkit.errors.PIDValueError: layers: pair 0 ('layer3', 'fc1') pairs a teacher 2-D ...
    """
    check_choice(spatial, "spatial", ("pool", "match"))
    t_shapes, s_shapes = [tuple(t) for t in teacher_shapes], [tuple(s) for s in student_shapes]
    if len(t_shapes) != len(s_shapes):
        raise fail("layers", f"{len(t_shapes)} teacher layers but {len(s_shapes)} student "
                   "layers", "Give (teacher_path, student_path) pairs, one per distilled pair")
    pairs = list(layers) if layers is not None else [("?", "?")] * len(t_shapes)
    for i, (t, s, pair) in enumerate(zip(t_shapes, s_shapes, pairs, strict=False)):
        label = f"pair {i} {tuple(pair)!r}" if layers is not None else f"pair {i}"
        for side, shape in (("teacher", t), ("student", s)):
            if len(shape) == 0:
                raise fail("layers", f"{label}: the {side} feature has per-sample shape () (one "
                           "number per sample, no channel axis)", _BATCH_FIRST_FIX)
            if any(int(d) < 1 for d in shape):
                raise fail("layers", f"{label}: the {side} feature has per-sample shape "
                           f"{shape} with an empty axis", "Hook a layer whose output is "
                           "not empty for a single sample")
        if spatial == "match" and len(t) != len(s):
            def kind(shape: tuple) -> str:
                return "vector" if len(shape) == 1 else f"{len(shape) - 1}-D feature map"
            if len(s) == 1:
                fix = (f"Pick a student layer that outputs a {len(t) - 1}-D map, or a teacher "
                       "layer that outputs a vector")
            elif len(t) == 1:
                fix = (f"Pick a teacher layer that outputs a {len(s) - 1}-D map, or a student "
                       "layer that outputs a vector")
            else:
                fix = "Pair layers whose maps have the same number of spatial axes"
            raise fail("layers", f"{label} pairs a teacher {kind(t)} of per-sample shape {t} "
                       f"with a student {kind(s)} of shape {s}", fix)


def check_feature_batch(y: torch.Tensor, teacher_features: Sequence[torch.Tensor],
                        student_features: Sequence[torch.Tensor],
                        layers: Sequence[tuple[str, str]]) -> None:
    """Check that every captured feature of a mini-batch has the batch size of the labels on
    its first axis (cheap: shapes only, no synchronisation with the device).

    Parameters
    ----------
    y : Tensor ``(N,)``
        The batch's labels.
    teacher_features, student_features : sequence of Tensor
        One per pair (a side may be empty when it was not computed, e.g. the student in RID's
        teacher phase).
    layers : sequence of (str, str)
        The (teacher_path, student_path) pairs, named in the message.

    Raises
    ------
    PIDValueError
        A feature's first axis is not ``N``; the message names the pair and both shapes.
    """
    n = int(y.shape[0]) if y.dim() else 1
    pairs = list(layers)
    for i, pair in enumerate(pairs):
        t = teacher_features[i] if i < len(teacher_features) else None
        s = student_features[i] if i < len(student_features) else None
        bad = [f for f in (t, s) if f is not None and (f.dim() < 1 or int(f.shape[0]) != n)]
        if bad:
            def shape(f: torch.Tensor | None) -> str:
                return "not computed" if f is None else str(tuple(f.shape))
            raise fail("layers", f"pair {i} {tuple(pair)!r}: teacher feature shape {shape(t)} "
                       f"and student feature shape {shape(s)} do not both start with the "
                       f"batch size {n} of the labels (y of shape {tuple(y.shape)})",
                       _BATCH_FIRST_FIX)


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
                     max_batches: int | None = None,
                     input_key: int | str | tuple[str, ...] | None = None,
                     label_key: int | str | None = None,
                     output_key: int | str | Callable[[Any], torch.Tensor] | None = None
                     ) -> ExtractedFeatures:
    """Collect the features of ``layers`` (and labels, logits) over a data loader, in eval mode.

    Batches and model outputs are read as by the trainer
    (:class:`~pidkit_distill.batches.BatchFormat`): a batch is a tuple ``(x, y, ...)`` or a
    mapping, and the logits are the model's tensor output, the first item of a tuple/list
    output, or the ``"logits"`` entry of a mapping output, unless ``output_key`` says otherwise.

    Parameters
    ----------
    model : nn.Module
        Any model; put in eval mode for the pass and restored to its previous mode after.
    loader : DataLoader, iterable of batches, Dataset, list of samples or (X, y)
        A ``DataLoader`` or any iterable of ``(inputs, labels)`` batches (or mappings); the
        data forms the trainer and :func:`~pidkit_distill.audits.audit` accept (a map-style
        ``Dataset``, a list or ``IterableDataset`` of samples, a tuple ``(X, y)`` of tensors or
        arrays) are batched in order, 256 samples at a time
        (:func:`~pidkit_distill.batches.as_loader`).
    layers : sequence of str
        Module paths (see :class:`FeatureHooks`).
    device : str or torch.device
        Where the model runs; results are returned on CPU.
    max_batches : int, optional
        Stop after this many batches.
    input_key, label_key, output_key : optional
        Which entries of a batch are the input and the label, and which part of the model's
        output holds the logits (:class:`~pidkit_distill.batches.BatchFormat`).

    Returns
    -------
    ExtractedFeatures

    Raises
    ------
    PIDValueError, PIDTypeError
        Labels that break the rule of :mod:`pidkit_distill.labels`: not one per sample, floats
        with a fractional part or not finite (whole-number float labels are converted exactly;
        a fractional label would be truncated by an integer cast), booleans.

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
    from .batches import BatchFormat, as_loader, to_device

    fmt = BatchFormat(input_key, label_key, output_key)
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise fail("device", f"is not a torch device ({exc})", "Use 'cpu', 'cuda' or "
                   "'cuda:1'", device) from exc
    loader = as_loader(loader, EXTRACT_BATCH_SIZE, "loader", fmt)   # samples: batched in order
    feats: dict[str, list] = {s: [] for s in layers}
    targets, logits = [], []
    with eval_mode(model), FeatureHooks(model, layers, detach=True) as hooks:
        for i, batch in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            x, y = fmt.split(batch, "loader")
            out = fmt.logits(model(to_device(x, device)))
            for spec, f in zip(layers, hooks.collect(), strict=True):
                feats[spec].append(f.float().cpu())
            targets.append(as_class_labels(y.cpu(), "loader"))
            logits.append(out.detach().float().cpu())
    if not targets:
        raise fail("loader", "yielded no batches", "Pass a non-empty data loader")
    return ExtractedFeatures({s: torch.cat(v) for s, v in feats.items()},
                             torch.cat(targets), torch.cat(logits))
