"""Teachers and students by name: small digits / MNIST-1D nets, Wide-ResNets, ResNets.

Every model built here has an attribute ``feature_layers``: the module paths that a
distillation method hooks by default (innermost last). Names accepted by :func:`get_model`:

========================  ===========================================================
``"digits_cnn"``          3-block CNN for 8x8 digits (``width`` channels), layers ``layer1..3``
``"digits_mlp"``          MLP on the 64 pixels (``hidden`` sizes), layers ``layer1..``
``"mnist1d_cnn"``         1-D CNN for MNIST-1D (length 40), layers ``layer1..3``
``"digits_resnet"``       deep pre-activation residual CNN, digits shapes (:class:`SmallResNet`)
``"mnist1d_resnet"``      the same for MNIST-1D; layers ``layer1..3``
``"wrn-D-W"``             Wide-ResNet of depth D and widen factor W (Zagoruyko and Komodakis
                          2016), e.g. ``"wrn-40-2"``; layers ``block1..3``
``"resnet18"``            ResNet-18 / ``"resnet34"`` (He et al. 2016), our own definition;
                          ``cifar_stem=True`` for 32x32 inputs; layers ``layer1..4``
``"torchvision:NAME"``    ``torchvision.models.NAME`` (only if torchvision is installed)
``"module:function"``     any importable factory ``function(num_classes=..., **kwargs)``
========================  ===========================================================

Register your own with :func:`register_model`. :func:`untrained_teacher` builds a randomly
initialised frozen teacher with a fixed seed (the paper's "ut" nuisance teacher) and
:class:`NuisanceTeacher` appends random channels G to a teacher's features, T = concat(Z, G).
"""

from __future__ import annotations

import functools
import importlib
import math
import re
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from pidkit.errors import PIDKitError, PIDTypeError
from pidkit.validation import check_int, fail

from .batches import MODULE_WRAPPERS, KeywordInputs
from .features import FeatureHooks, check_module_paths

__all__ = [
    "register_model",
    "get_model",
    "available_models",
    "default_layers",
    "freeze",
    "module_device",
    "module_dtype",
    "resolve_device",
    "untrained_teacher",
    "NuisanceTeacher",
    "KeywordInputs",
    "DigitsCNN",
    "DigitsMLP",
    "MNIST1DCNN",
    "SmallResNet",
    "WideResNet",
    "ResNet",
]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable:
    """Decorator registering ``factory(num_classes=..., **kwargs) -> nn.Module`` under ``name``.

    Examples
    --------
    >>> @register_model("tiny_mlp")
    ... def tiny_mlp(num_classes=10, **kw):
    ...     return DigitsMLP(num_classes=num_classes, hidden=(8,))
    >>> get_model("tiny_mlp").feature_layers
    ('layer1',)
    """
    if not isinstance(name, str) or not name:
        raise fail("name", "must be a non-empty model name (str)",
                   "Pass e.g. register_model('tiny_mlp')", name, kind=PIDTypeError)

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if not callable(factory):
            raise fail("factory", f"registered as model {name!r} is a "
                       f"{type(factory).__name__}, not callable", "Register a function "
                       "(num_classes=..., **kwargs) -> nn.Module", None, kind=PIDTypeError)
        _REGISTRY[name.lower()] = factory
        return factory
    return decorator


def available_models() -> list[str]:
    """Registered names (plus the patterns ``wrn-D-W``, ``torchvision:NAME``, ``module:fn``)."""
    return sorted(_REGISTRY) + ["wrn-D-W", "torchvision:NAME", "module:function"]


def get_model(name: str, num_classes: int = 10, **kwargs) -> nn.Module:
    """Build a model by name (see the module docstring for the names).

    Parameters
    ----------
    name : str
        Registered name, ``"wrn-D-W"``, ``"torchvision:NAME"`` or ``"package.module:function"``.
    num_classes : int
        Size of the output layer.
    **kwargs
        Passed to the factory (e.g. ``width=``, ``in_channels=``, ``cifar_stem=``).
    """
    if not isinstance(name, str):
        raise fail("name", "must be a model name string", f"Use one of {available_models()}",
                   name, kind=PIDTypeError)
    num_classes = check_int(num_classes, "num_classes", 2)
    key = name.lower()
    wrn = re.fullmatch(r"wrn-(\d+)-(\d+)", key)
    if wrn:
        factory = functools.partial(WideResNet, int(wrn.group(1)), int(wrn.group(2)))
    elif key.startswith("torchvision:"):
        return _torchvision_model(name.split(":", 1)[1], num_classes, **kwargs)
    elif key in _REGISTRY:
        factory = _REGISTRY[key]
    elif ":" in name:
        module_name, func_name = name.split(":", 1)
        try:
            factory = getattr(importlib.import_module(module_name), func_name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise fail("name", f"cannot import factory {name!r} ({exc})",
                       "Give an importable 'package.module:function'") from exc
        if not callable(factory):
            raise fail("name", f"{name!r} is not a function", "Give an importable "
                       "'package.module:function' that builds the model", kind=PIDTypeError)
    else:
        raise fail("name", "is not a known model", f"Use one of {available_models()}", name)
    try:
        with warnings.catch_warnings():   # torch's "zero-element tensors" note: refused below
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            model = factory(num_classes=num_classes, **kwargs)
    except PIDKitError:                 # the factory's own typed error, naming its option
        raise
    except TypeError as exc:            # an option the factory does not take, or twice
        raise fail("kwargs", f"model {name!r} does not accept {kwargs} ({exc})", "See the "
                   "factory's signature for its options", kind=PIDTypeError) from exc
    except (RuntimeError, ValueError) as exc:   # torch refusing the sizes (width=-1, 1.5)
        raise fail("kwargs", f"model {name!r} cannot be built with {kwargs} ({exc})",
                   "Pass positive sizes") from exc
    empty = [n for n, p in model.named_parameters() if p.numel() == 0] \
        if isinstance(model, nn.Module) else []
    if empty:                           # width=0, 'wrn-16-0', hidden=(0,): nothing to train
        what = f"with {kwargs}" if kwargs else f"as {name!r}"
        blamed = "name" if wrn and int(wrn.group(2)) == 0 else "kwargs"
        raise fail(blamed, f"model {name!r} built {what} has "
                   f"layers of size 0 ({', '.join(empty[:3])}{', ...' if len(empty) > 3 else ''})",
                   "Pass positive sizes (widths, widen factors, hidden units)")
    return model


def _torchvision_model(arch: str, num_classes: int, **kwargs) -> nn.Module:
    try:
        tv_models = importlib.import_module("torchvision.models")
    except ImportError as exc:
        raise fail("name", f"'torchvision:{arch}' needs torchvision, which is not installed",
                   "Install a torchvision build matching your torch, or use our own "
                   "'resnet18' / 'resnet34'") from exc
    model = tv_models.get_model(arch, num_classes=num_classes, **kwargs)
    if arch.startswith("resnet"):
        model.feature_layers = ("layer2", "layer3", "layer4")
    return model


def default_layers(model: nn.Module) -> tuple[str, ...]:
    """The model's ``feature_layers`` attribute (module paths to distil by default); for a
    wrapper such as :class:`~torch.nn.DataParallel`,
    :class:`~torch.nn.parallel.DistributedDataParallel` or :class:`KeywordInputs`, its wrapped
    ``module``'s, with the ``module.`` prefix the wrapper adds to the paths."""
    layers = getattr(model, "feature_layers", None)
    if not layers and isinstance(model, MODULE_WRAPPERS):
        return tuple(f"module.{path}" for path in default_layers(model.module))
    if not layers:
        raise fail("model", f"{type(model).__name__} has no feature_layers attribute",
                   "Pass layers=[(teacher_path, student_path), ...] explicitly")
    return tuple(layers)


def _check_module(model: object, name: str) -> None:
    """Refuse an argument that is not a torch module, naming it."""
    if not isinstance(model, nn.Module):
        raise fail(name, f"is a {type(model).__name__}, not a torch.nn.Module", "Pass the "
                   "network (an nn.Module)", kind=PIDTypeError)


def freeze(model: nn.Module) -> nn.Module:
    """Put ``model`` in eval mode and turn off gradients of all its parameters (in place)."""
    _check_module(model, "model")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _same_device(a: torch.device, b: torch.device) -> bool:
    """``a`` and ``b`` name the same device (``"cuda"`` without index is the current one)."""
    if a.type != b.type:
        return False
    if a.index is None or b.index is None:
        current = (torch.cuda.current_device() if a.type == "cuda" and torch.cuda.is_available()
                   else 0)
        return (a.index if a.index is not None else current) == \
            (b.index if b.index is not None else current)
    return a.index == b.index


def module_device(model: nn.Module, name: str = "model",
                  expected: str | torch.device | None = None) -> torch.device | None:
    """The one device that holds all parameters and buffers of ``model``.

    Parameters
    ----------
    model : nn.Module
    name : str, default "model"
        The argument named in error messages (``"teacher"``, ``"student"``).
    expected : str or torch.device, optional
        Also require that device (``"cuda"`` matches the current CUDA device).

    Returns
    -------
    torch.device or None
        ``None`` when the model has no parameters and no buffers.

    Raises
    ------
    PIDValueError
        Tensors on the ``meta`` device (shapes without data, e.g. a model built under
        ``torch.device("meta")`` and never loaded), tensors on several devices (a model split
        over devices by hand), or a device other than ``expected``. The message names ``name``,
        the devices and example tensors, and what to do.

    Examples
    --------
    >>> module_device(nn.Linear(2, 2), "student")
    device(type='cpu')
    >>> module_device(nn.Linear(2, 2, device="meta"), "teacher")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pidkit.errors.PIDValueError: teacher: has parameters or buffers on the 'meta' device ...
    """
    _check_module(model, name)
    if expected is not None:
        try:
            expected = torch.device(expected)
        except (RuntimeError, TypeError) as exc:
            raise fail("expected", f"is not a device ({exc})", "Pass e.g. 'cpu' or 'cuda:0'",
                       expected) from exc
    where: dict[torch.device, list[str]] = {}
    for path, tensor in [*model.named_parameters(), *model.named_buffers()]:
        where.setdefault(tensor.device, []).append(path)
    if not where:
        return None
    meta = [d for d in where if d.type == "meta"]
    if meta:
        examples = where[meta[0]][:3]
        raise fail(name, f"has parameters or buffers on the 'meta' device (shapes without "
                   f"data), e.g. {examples}", "Give them values first: "
                   f"{name}.to_empty(device=...) then {name}.load_state_dict(weights), or build "
                   "the model outside a torch.device('meta') context")
    if len(where) > 1:
        spread = "; ".join(f"{d}: {len(p)} tensors, e.g. {p[:2]}" for d, p in where.items())
        raise fail(name, f"has parameters or buffers on {len(where)} devices ({spread})",
                   f"Put the whole model on one device with {name}.to(device); the trainer "
                   "runs each model on one device (pass device=...)")
    (device,) = where
    if expected is not None and not _same_device(device, expected):
        raise fail(name, f"is on {device}, not on the requested device {expected}",
                   f"Move it with {name}.to({str(expected)!r}), or request device="
                   f"{str(device)!r}")
    return device


def resolve_device(device: str | torch.device, argument: str = "device") -> torch.device:
    """``device`` (a string such as ``"cpu"``, ``"cuda:1"``, ``"mps"``, or a
    :class:`torch.device`) as a :class:`torch.device` this machine has.

    Raises
    ------
    PIDValueError
        ``device`` is not a device name, is ``"meta"`` (no data to compute on), or names a
        CUDA or MPS device that this machine or this torch build lacks; the message names
        ``argument`` and the devices to use instead.
    """
    usable = "Use 'cpu', 'cuda', 'cuda:1' or 'mps'"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise fail(argument, "is not a torch device", usable, device) from exc
    if dev.type == "meta":
        raise fail(argument, "'meta' holds shapes without data, so nothing can run on it",
                   usable, device)
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            raise fail(argument, "CUDA is not available", "Use device='cpu'", device)
        if dev.index is not None and dev.index >= count:
            raise fail(argument, f"names CUDA device {dev.index}, but this machine has "
                       f"{count} (cuda:0..cuda:{count - 1})", "Pick one of those", device)
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise fail(argument, "MPS (Apple GPUs) is not available in this torch build or on "
                   "this machine", "Use device='cpu'", device)
    return dev


def module_dtype(model: nn.Module) -> torch.dtype | None:
    """The floating-point dtype of ``model``'s parameters (``torch.float32`` after
    ``model.float()``, ``torch.float64`` after ``model.double()``), or ``None`` when it has no
    floating-point parameter or several dtypes (a model mixing precisions by design)."""
    _check_module(model, "model")
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    return dtypes.pop() if len(dtypes) == 1 else None


def untrained_teacher(name: str, seed: int = 0, num_classes: int = 10, **kwargs) -> nn.Module:
    """A randomly initialised, never trained, frozen teacher (the paper's "ut" teacher).

    The global torch RNG is left untouched: initialisation draws from a forked RNG seeded with
    ``seed``, so the same ``(name, seed, kwargs)`` always gives the same weights.
    """
    seed = check_int(seed, "seed", 0)
    if seed >= 2**64:
        raise fail("seed", "must be below 2**64 (torch's seeds)", "Pass a smaller seed", seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = get_model(name, num_classes=num_classes, **kwargs)
    return freeze(model)


class _Tap(nn.Identity):
    """A named point where :class:`NuisanceTeacher` exposes concat(Z, G) to hooks."""


class NuisanceTeacher(nn.Module):
    r"""A teacher whose features carry extra channels irrelevant to the label.

    For each hooked layer with output :math:`Z` of shape ``(N, C, *spatial)`` the module
    ``taps.<i>`` outputs :math:`T = \mathrm{concat}(Z, G)` along channels, with ``channels``
    extra channels :math:`G` of the same spatial size:

    - ``kind="noise"``: :math:`G \sim \mathcal N(0, \mathrm{scale}^2)` drawn afresh at every
      forward from a generator seeded with ``seed``; independent of the input, so
      :math:`I(Y; G) = 0` exactly.
    - ``kind="random_features"``: :math:`G = \mathrm{scale}\cdot\tanh(W x)` a fixed random
      projection (seed ``seed``) of the flattened input, resized to the layer's spatial size;
      high-entropy input features that the teacher did not learn for the task.

    The logits are the wrapped teacher's. ``feature_layers`` lists the taps. The wrapped
    teacher is frozen; this module has no trainable parameters. The noise generator's state is
    not part of trainer checkpoints, so a resumed run with ``kind="noise"`` draws different
    noise than an uninterrupted one (``random_features`` is deterministic).

    Parameters
    ----------
    teacher : nn.Module
    layers : sequence of str, optional
        Teacher layers to augment (default: ``teacher.feature_layers``).
    channels : int or sequence of int
        Number of nuisance channels per layer.
    kind : {"noise", "random_features"}
    scale : float
        Standard deviation (noise) or amplitude (random features) of G.
    seed : int
    """

    def __init__(self, teacher: nn.Module, layers: Sequence[str] | None = None,
                 channels: int | Sequence[int] = 16, kind: str = "noise", scale: float = 1.0,
                 seed: int = 0):
        super().__init__()
        if kind not in ("noise", "random_features"):
            raise fail("kind", "is not a known nuisance kind", "Use 'noise' or 'random_features'",
                       kind)
        if not math.isfinite(float(scale)):
            raise fail("scale", "must be finite", "Pass the nuisance channels' scale, e.g. 1.0",
                       scale)
        self.teacher = freeze(teacher)
        self.source_layers = tuple(layers) if layers is not None else default_layers(teacher)
        n = len(self.source_layers)
        check_module_paths(teacher, self.source_layers, name="teacher")
        self.channels = [channels] * n if isinstance(channels, int) else list(channels)
        if len(self.channels) != n:
            raise fail("channels", f"has {len(self.channels)} entries for {n} layers",
                       "Give one channel count per layer or a single int")
        self.channels = [check_int(c, "channels", 1) for c in self.channels]
        self.kind, self.scale, self.seed = kind, float(scale), int(seed)
        self.taps = nn.ModuleList(_Tap() for _ in range(n))
        self.feature_layers = tuple(f"taps.{i}" for i in range(n))
        self._generator: torch.Generator | None = None
        self._projections: dict[int, torch.Tensor] = {}

    def _noise(self, shape, like: torch.Tensor) -> torch.Tensor:
        if self._generator is None or self._generator.device != like.device:
            self._generator = torch.Generator(device=like.device)
            self._generator.manual_seed(self.seed)
        return torch.randn(shape, generator=self._generator, device=like.device,
                           dtype=like.dtype) * self.scale

    def _random_features(self, i: int, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        spatial = z.shape[2:]
        size = self.channels[i] * int(torch.tensor(spatial).prod()) if spatial else self.channels[i]
        flat = x.reshape(len(x), -1).to(z.dtype)
        if i not in self._projections:
            g = torch.Generator().manual_seed(self.seed + 7919 * i)
            w = torch.randn(flat.shape[1], size, generator=g) / flat.shape[1] ** 0.5
            self._projections[i] = w
        w = self._projections[i].to(device=z.device, dtype=z.dtype)
        return self.scale * torch.tanh(flat @ w).reshape(len(x), self.channels[i], *spatial)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with FeatureHooks(self.teacher, self.source_layers) as hooks:
            logits = self.teacher(x)
            feats = hooks.collect()
        for i, z in enumerate(feats):
            shape = (z.shape[0], self.channels[i], *z.shape[2:])
            g = self._noise(shape, z) if self.kind == "noise" else self._random_features(i, x, z)
            self.taps[i](torch.cat([z, g], dim=1))
        return logits


# ----------------------------------------------------------------------------- small nets
def _conv_block(cin: int, cout: int, dims: int, pool: bool) -> nn.Sequential:
    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    bn = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
    layers = [conv(cin, cout, 3, padding=1, bias=False), bn(cout), nn.ReLU(inplace=True)]
    if pool:
        layers.append((nn.MaxPool1d if dims == 1 else nn.MaxPool2d)(2))
    return nn.Sequential(*layers)


class DigitsCNN(nn.Module):
    """Three conv blocks (``width``, ``2 width``, ``2 width`` channels) for ``(N, 1, 8, 8)``
    digits; feature maps 8x8, 4x4, 4x4 at ``layer1..3``."""

    feature_layers = ("layer1", "layer2", "layer3")

    def __init__(self, num_classes: int = 10, width: int = 32, in_channels: int = 1):
        super().__init__()
        self.layer1 = _conv_block(in_channels, width, 2, pool=False)
        self.layer2 = _conv_block(width, 2 * width, 2, pool=True)
        self.layer3 = _conv_block(2 * width, 2 * width, 2, pool=False)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class DigitsMLP(nn.Module):
    """MLP on flattened inputs; hidden layer ``i`` (Linear + ReLU) is ``layer{i}``."""

    def __init__(self, num_classes: int = 10, hidden: Sequence[int] = (64, 32),
                 in_features: int = 64):
        super().__init__()
        sizes = [in_features, *hidden]
        for i in range(len(hidden)):
            self.add_module(f"layer{i + 1}",
                            nn.Sequential(nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU()))
        self.fc = nn.Linear(sizes[-1], num_classes)
        self.feature_layers = tuple(f"layer{i + 1}" for i in range(len(hidden)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        for name in self.feature_layers:
            x = getattr(self, name)(x)
        return self.fc(x)


class MNIST1DCNN(nn.Module):
    """Three 1-D conv blocks for MNIST-1D sequences ``(N, 40)`` or ``(N, 1, 40)``."""

    feature_layers = ("layer1", "layer2", "layer3")

    def __init__(self, num_classes: int = 10, width: int = 32, in_channels: int = 1):
        super().__init__()
        self.layer1 = _conv_block(in_channels, width, 1, pool=True)
        self.layer2 = _conv_block(width, width, 1, pool=True)
        self.layer3 = _conv_block(width, width, 1, pool=False)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool1d(x, 1), 1))


register_model("digits_cnn")(DigitsCNN)
register_model("digits_mlp")(DigitsMLP)
register_model("mnist1d_cnn")(MNIST1DCNN)


class _PreActBlock(nn.Module):
    """Pre-activation basic block in 1-D or 2-D: BN-ReLU-conv3-BN-ReLU-conv3 plus the input
    (a 1x1 convolution of the activated input when the channel count changes)."""

    def __init__(self, cin: int, cout: int, dims: int):
        super().__init__()
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        bn = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        self.bn1, self.conv1 = bn(cin), conv(cin, cout, 3, padding=1, bias=False)
        self.bn2, self.conv2 = bn(cout), conv(cout, cout, 3, padding=1, bias=False)
        self.shortcut = None if cin == cout else conv(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(o)
        return self.conv2(F.relu(self.bn2(self.conv1(o)))) + skip


class SmallResNet(nn.Module):
    r"""A deep pre-activation residual CNN for digits (``dims=2``) or MNIST-1D (``dims=1``),
    with the feature-map shapes of :class:`DigitsCNN` / :class:`MNIST1DCNN` at ``layer1..3``.

    A 3x3 stem convolution (``in_channels -> width``), then three groups ``layer1..3`` of
    ``blocks`` pre-activation basic blocks each (as in :class:`WideResNet`), each group closed
    by BatchNorm and ReLU, global average pooling and a linear head. Group widths and
    resolutions: digits ``(width, 2 width, 2 width)`` channels on ``8x8, 4x4, 4x4`` maps
    (2x2 max-pooling at the start of ``layer2``); MNIST-1D ``width`` channels on lengths
    ``20, 10, 10`` (max-pooling at the start of ``layer1`` and ``layer2``). Convolutions are
    initialised as in :class:`WideResNet` (Kaiming normal, fan-out, ReLU gain):

    .. math::

        W \sim \mathcal N\big(0,\ 2 / (C_\text{out} k)\big),

    with :math:`k` the kernel size (positions). Depth: ``1 + 6 blocks`` 3x3 convolutions
    and the linear head (digits adds one 1x1 shortcut convolution where the width doubles).

    Why it exists: it is the nuisance-teacher benchmark's teacher. Randomly initialised and
    frozen (BatchNorm in eval mode with its default statistics, i.e. the identity), each
    residual block adds a branch of about the variance of its input, so the untrained
    network's features grow with depth to an O(1) or larger scale and are hard for a small
    student to regress, like the paper's untrained WRN-40-2; trained, the closing
    BatchNorm-ReLU of every group keeps them at O(1). The untrained shallow :class:`DigitsCNN`
    (PyTorch's default initialisation) instead has features about 40 times smaller than the
    trained one's, which a VID regressor matches with a near-constant output.

    Parameters
    ----------
    num_classes : int
    width : int
        Channels of the first group (see above for the others).
    blocks : int
        Residual blocks per group.
    dims : {1, 2}
        1-D sequences ``(N, L)`` or ``(N, C, L)`` (MNIST-1D), or 2-D images ``(N, C, H, W)``.
    in_channels : int

    Examples
    --------
    >>> net = get_model("digits_resnet", width=4, blocks=2)
    >>> net(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])

    References
    ----------
    K. He, X. Zhang, S. Ren, J. Sun, "Identity Mappings in Deep Residual Networks", ECCV 2016
    (pre-activation blocks); S. Zagoruyko, N. Komodakis, "Wide Residual Networks", BMVC 2016.
    """

    feature_layers = ("layer1", "layer2", "layer3")

    def __init__(self, num_classes: int = 10, width: int = 16, blocks: int = 3, dims: int = 2,
                 in_channels: int = 1):
        super().__init__()
        if dims not in (1, 2):
            raise fail("dims", "must be 1 (sequences) or 2 (images)", "Pass dims=1 or dims=2",
                       dims)
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
            raise fail("blocks", "must be a positive integer", "Pass e.g. blocks=3", blocks)
        self.dims = dims
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        bn = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        pool = nn.MaxPool1d if dims == 1 else nn.MaxPool2d
        widths = (width, 2 * width, 2 * width) if dims == 2 else (width, width, width)
        pools = (False, True, False) if dims == 2 else (True, True, False)
        self.stem = conv(in_channels, width, 3, padding=1, bias=False)
        cin = width
        for g in range(3):
            group: list[nn.Module] = [pool(2)] if pools[g] else []
            for _ in range(blocks):
                group.append(_PreActBlock(cin, widths[g], dims))
                cin = widths[g]
            group += [bn(cin), nn.ReLU()]
            self.add_module(f"layer{g + 1}", nn.Sequential(*group))
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dims == 1 and x.dim() == 2:
            x = x.unsqueeze(1)
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        pool = F.adaptive_avg_pool1d if self.dims == 1 else F.adaptive_avg_pool2d
        return self.fc(torch.flatten(pool(x, 1), 1))


@register_model("digits_resnet")
def digits_resnet(num_classes: int = 10, width: int = 16, blocks: int = 3,
                  **kwargs) -> SmallResNet:
    """:class:`SmallResNet` for ``(N, 1, 8, 8)`` digits (the shapes of ``digits_cnn``)."""
    return SmallResNet(num_classes, width=width, blocks=blocks, dims=2, **kwargs)


@register_model("mnist1d_resnet")
def mnist1d_resnet(num_classes: int = 10, width: int = 32, blocks: int = 3,
                   **kwargs) -> SmallResNet:
    """:class:`SmallResNet` for MNIST-1D sequences (the shapes of ``mnist1d_cnn``)."""
    return SmallResNet(num_classes, width=width, blocks=blocks, dims=1, **kwargs)


# ----------------------------------------------------------------------------- Wide-ResNet
class _WideBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3 + shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.dropout = dropout
        self.shortcut = (None if cin == cout and stride == 1
                         else nn.Conv2d(cin, cout, 1, stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(o)
        o = self.conv1(o)
        o = F.relu(self.bn2(o))
        if self.dropout > 0:
            o = F.dropout(o, self.dropout, self.training)
        return self.conv2(o) + skip


class WideResNet(nn.Module):
    """WRN-depth-width for 32x32 images (Zagoruyko and Komodakis 2016).

    ``(depth - 4) / 6`` blocks per group; groups of ``16w, 32w, 64w`` channels at ``block1..3``
    (32x32, 16x16, 8x8 maps for 32x32 inputs); e.g. WRN-40-2 teacher, WRN-16-1 student.
    """

    feature_layers = ("block1", "block2", "block3")

    def __init__(self, depth: int = 16, width: int = 1, num_classes: int = 10,
                 in_channels: int = 3, dropout: float = 0.0):
        super().__init__()
        if (depth - 4) % 6 != 0 or depth < 10:
            raise fail("depth", "must be 6n + 4 with n >= 1", "Use e.g. 16, 22, 28, 40", depth)
        n = (depth - 4) // 6
        widths = [16, 16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        for g in range(3):
            blocks = [_WideBlock(widths[g] if i == 0 else widths[g + 1], widths[g + 1],
                                 (1 if g == 0 else 2) if i == 0 else 1, dropout)
                      for i in range(n)]
            self.add_module(f"block{g + 1}", nn.Sequential(*blocks))
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        x = F.relu(self.bn(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ----------------------------------------------------------------------------- ResNet
class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (None if cin == cout and stride == 1 else
                           nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                         nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(out + skip)


class ResNet(nn.Module):
    """ResNet with basic blocks (He et al. 2016): ``blocks=(2, 2, 2, 2)`` is ResNet-18,
    ``(3, 4, 6, 3)`` ResNet-34. ``cifar_stem=True`` uses a 3x3 stem without max-pooling for
    32x32 inputs; otherwise the ImageNet 7x7/2 stem and 3x3/2 max-pool."""

    feature_layers = ("layer2", "layer3", "layer4")

    def __init__(self, blocks: Sequence[int] = (2, 2, 2, 2), num_classes: int = 1000,
                 in_channels: int = 3, cifar_stem: bool = False, width: int = 64):
        super().__init__()
        if cifar_stem:
            self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(width)
        cin = width
        for i, n in enumerate(blocks):
            cout = width * 2 ** i
            layer = [_BasicBlock(cin if j == 0 else cout, cout, (1 if i == 0 else 2) if j == 0
                                 else 1) for j in range(n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
            cin = cout
        self.fc = nn.Linear(cin, num_classes)
        self._n_layers = len(blocks)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        for i in range(self._n_layers):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@register_model("resnet18")
def resnet18(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-18 (our definition; ``cifar_stem=True`` for 32x32 inputs)."""
    return ResNet((2, 2, 2, 2), num_classes=num_classes, **kwargs)


@register_model("resnet34")
def resnet34(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-34 (our definition; ``cifar_stem=True`` for 32x32 inputs)."""
    return ResNet((3, 4, 6, 3), num_classes=num_classes, **kwargs)
