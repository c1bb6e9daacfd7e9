"""Data the way PyTorch users have it: data sets, data loaders, batches and model outputs.

- ``train_data`` / ``val_data`` may be a map-style :class:`~torch.utils.data.Dataset` (the
  trainer batches, shuffles and shards it with a
  :class:`~torch.utils.data.distributed.DistributedSampler`), an
  :class:`~torch.utils.data.IterableDataset` (batched in the order it yields; shard it yourself
  under ``torchrun``), or a ready :class:`~torch.utils.data.DataLoader` (used as it is: its
  sampler, ``collate_fn``, workers and batch size are respected; ``set_epoch`` is called on its
  sampler each epoch if it has one).
- A batch may be a tuple/list ``(x, y, ...)`` or a mapping such as ``{"image": x, "label": y}``.
  :class:`BatchFormat` picks the input and the label: by position (default ``0`` and ``1``) or
  by key; for mappings without explicit keys the first of the usual names is used
  (:data:`INPUT_KEYS`, :data:`LABEL_KEYS`).
- A model may return a tensor, a tuple/list (the first item is taken as logits), a mapping
  or a dataclass (``"logits"`` by default): :class:`BatchFormat.logits` selects the logits,
  with an index, a key or any callable ``output -> Tensor``.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import random
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from pidkit.errors import PIDTypeError, caller_stacklevel
from pidkit.validation import fail

from .labels import UNLABELLED, as_class_labels

__all__ = ["BatchFormat", "KeywordInputs", "MODULE_WRAPPERS", "INPUT_KEYS", "LABEL_KEYS",
           "OUTPUT_KEYS", "train_loader",
           "eval_loader", "has_batchnorm", "as_dataset", "check_data", "check_reiterable",
           "to_device",
           "device_batches",
           "class_labels", "check_label_values", "floating_dtypes", "check_input_dtypes",
           "first_forward", "loader_generators", "peek_batch", "collate_samples", "as_loader"]

#: Keys tried, in order, for the input of a mapping batch when ``input_key`` is not given.
INPUT_KEYS = ("input", "inputs", "x", "image", "images", "img", "pixel_values", "data",
              "features")
#: Keys tried, in order, for the label of a mapping batch when ``label_key`` is not given.
LABEL_KEYS = ("label", "labels", "y", "target", "targets", "class", "label_id")
#: Keys tried, in order, for the logits of a mapping output when ``output_key`` is not given.
OUTPUT_KEYS = ("logits", "logit", "output", "out", "scores")

Key = int | str
#: How many labels an error about non-numeric labels shows.
_SHOWN_LABELS = 3


def _first_key(mapping: Mapping, given: Key | None, candidates: Sequence[str], argument: str,
               what: str):
    if given is not None:
        if given not in mapping:
            raise fail(argument, f"is not a key of the {what} (keys: {sorted(map(str, mapping))})",
                       f"Pass one of the {what}'s keys", given)
        return mapping[given]
    for key in candidates:
        if key in mapping:
            return mapping[key]
    raise fail(argument, f"was not given and the {what} has none of the usual keys "
               f"{list(candidates)} (its keys: {sorted(map(str, mapping))})",
               f"Pass {argument}= naming the {what}'s entry", None)


def _by_position(items: Sequence, given: Key | None, default: int, argument: str, what: str):
    index = default if given is None else given
    if not isinstance(index, int) or isinstance(index, bool):
        raise fail(argument, f"must be an integer position for a {what} that is a sequence",
                   "Pass an int, or give mapping batches to use keys", index, kind=PIDTypeError)
    if not -len(items) <= index < len(items):
        raise fail(argument, f"position {index} is out of range for a {what} of "
                   f"{len(items)} items", "Pass a valid position", index)
    return items[index]


class KeywordInputs(nn.Module):
    """A model whose forward takes named inputs (``model(input_ids=..., attention_mask=...)``,
    as Hugging Face models do), callable with one mapping: ``KeywordInputs(model)(x)`` is
    ``model(**x)``.

    The trainer, ``extract_features`` and the audits call a model with a batch's input entry;
    with ``input_key=("input_ids", "attention_mask")`` that entry is the mapping of those
    batch entries (:class:`BatchFormat`), which this wrapper unpacks.
    Layer paths may be given as those of ``model`` (``"encoder.layer.5"``; the wrapper's own
    are ``"module.encoder.layer.5"``), and its ``feature_layers`` are ``model``'s.

    Examples
    --------
    >>> class TwoInputs(nn.Module):
    ...     def forward(self, a, b):
    ...         return a + b
    >>> KeywordInputs(TwoInputs())({"a": torch.ones(2), "b": torch.ones(2)})
    tensor([2., 2.])
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        if not isinstance(module, nn.Module):
            raise fail("module", f"is a {type(module).__name__}, not an nn.Module",
                       "Pass the model to wrap", kind=PIDTypeError)
        self.module = module

    def forward(self, x: Any) -> Any:
        if not isinstance(x, Mapping):
            raise fail("input_key", f"gives {type(x).__name__} inputs, but KeywordInputs calls "
                       "its model with a mapping of named inputs", "Pass input_key as a tuple "
                       "of the batch's input entries, e.g. input_key=('input_ids', "
                       "'attention_mask')", None, kind=PIDTypeError)
        return self.module(**x)


#: Wrappers whose model is their ``module`` attribute, its paths prefixed with ``module.``.
MODULE_WRAPPERS = (nn.DataParallel, nn.parallel.DistributedDataParallel, KeywordInputs)


@dataclasses.dataclass(frozen=True)
class BatchFormat:
    """Which entries of a batch are the input and the label, and which part of a model's output
    holds the logits.

    Parameters
    ----------
    input_key, label_key : int or str or None
        Position (tuple/list batches) or key (mapping batches) of the input and the label.
        ``None``: position 0 / 1, or the first of :data:`INPUT_KEYS` / :data:`LABEL_KEYS`.
        ``input_key`` may also be a tuple of keys of mapping batches: the input is then the
        mapping of those entries (``{"input_ids": ..., "attention_mask": ...}``), for models
        wrapped in :class:`KeywordInputs`.
    output_key : int or str or callable or None
        Position or key of the logits in a tuple/list or mapping output, or a callable
        ``output -> Tensor``. ``None``: a tensor output as it is, the first item of a
        tuple/list, the first of :data:`OUTPUT_KEYS` of a mapping (e.g. Hugging Face
        ``ModelOutput.logits``) or of a dataclass's fields.

    Examples
    --------
    >>> fmt = BatchFormat(input_key="image", label_key="label")
    >>> x, y = fmt.split({"image": torch.zeros(2, 3), "label": torch.tensor([0, 1])})
    >>> tuple(x.shape), y.tolist()
    ((2, 3), [0, 1])
    >>> BatchFormat().logits({"logits": torch.ones(2, 4), "aux": None}).shape
    torch.Size([2, 4])
    """

    input_key: Key | tuple[str, ...] | None = None
    label_key: Key | None = None
    output_key: Key | Callable[[Any], torch.Tensor] | None = None

    def __post_init__(self) -> None:
        """Refuse keys of another type now (a float position, a bool), not at the first
        batch or, for ``output_key`` and a model returning a tensor, never."""
        def is_key(key: Any) -> bool:
            return isinstance(key, (int, str)) and not isinstance(key, bool)

        several = isinstance(self.input_key, (tuple, list))
        for name, key, ok in (
                ("input_key", self.input_key,
                 self.input_key is None or is_key(self.input_key)
                 or (several and all(isinstance(k, str) for k in self.input_key))),
                ("label_key", self.label_key, self.label_key is None or is_key(self.label_key)),
                ("output_key", self.output_key, self.output_key is None
                 or is_key(self.output_key) or callable(self.output_key))):
            if not ok:
                what = ("a position (int), a key (str) or a callable output -> logits"
                        if name == "output_key" else "a position (int) or a key (str)")
                what += ", or a tuple of keys" if name == "input_key" else ""
                position, mapping_key = {"input_key": (0, "image"), "label_key": (1, "label"),
                                         "output_key": (0, "logits")}[name]
                raise fail(name, f"must be {what}, or None", f"Pass e.g. {name}={position} "
                           f"for a tuple, or {name}={mapping_key!r} for a mapping", key,
                           kind=PIDTypeError)

    def split(self, batch: Any, argument: str = "train_data") -> tuple[Any, torch.Tensor]:
        """``(input, label)`` of one batch of ``argument`` (the name errors give); the label
        as a tensor."""
        several = isinstance(self.input_key, (tuple, list))
        if several and not isinstance(batch, Mapping):
            raise fail("input_key", f"is a tuple of keys, but {argument} yields batches of "
                       f"type {type(batch).__name__}", "Give mapping batches (a data set "
                       "returning dicts), or pass one input_key", self.input_key,
                       kind=PIDTypeError)
        if several:
            if not self.input_key:
                raise fail("input_key", "is an empty tuple", "Name the input entries, e.g. "
                           "input_key=('input_ids', 'attention_mask')", self.input_key)
            x = {key: _first_key(batch, key, INPUT_KEYS, "input_key", "batch")
                 for key in self.input_key}
            y = _first_key(batch, self.label_key, LABEL_KEYS, "label_key", "batch")
        elif isinstance(batch, Mapping):
            x = _first_key(batch, self.input_key, INPUT_KEYS, "input_key", "batch")
            y = _first_key(batch, self.label_key, LABEL_KEYS, "label_key", "batch")
        elif isinstance(batch, (tuple, list)):
            if len(batch) < 2:
                raise fail(argument, f"yields batches of {len(batch)} item(s); an (input, "
                           "label) pair is needed", "Make the data set return (x, y) pairs or "
                           "mappings with an input and a label entry (input_key= / label_key= "
                           "name other entries)", None)
            x = _by_position(batch, self.input_key, 0, "input_key", "batch")
            y = _by_position(batch, self.label_key, 1, "label_key", "batch")
        else:
            raise fail(argument, f"yields batches of type {type(batch).__name__}; an "
                       "(input, label) tuple or a mapping is needed", "Return (x, y) or "
                       "{'input': x, 'label': y} from the data set", None, kind=PIDTypeError)
        if not isinstance(y, torch.Tensor):
            try:
                y = torch.as_tensor(y)
            except (TypeError, ValueError, RuntimeError) as exc:
                shown = repr(list(y)[:_SHOWN_LABELS] if isinstance(y, (list, tuple)) else y)
                raise fail(argument, f"yields labels that are not numbers ({shown[:80]}: "
                           f"{exc})", "Map class names to indices 0..K-1 in the data set "
                           "(e.g. classes.index(name)), or pass label_key= naming the "
                           "label entry", None, kind=PIDTypeError) from exc
        return x, y

    def logits(self, output: Any) -> torch.Tensor:
        """The logits tensor of a model's ``output``."""
        if callable(self.output_key):
            value = self.output_key(output)
        elif isinstance(output, torch.Tensor):
            value = output
        elif isinstance(output, Mapping) or hasattr(output, "keys"):
            value = _first_key(output, self.output_key, OUTPUT_KEYS, "output_key",
                               "model output")
        elif dataclasses.is_dataclass(output) and not isinstance(output, type):
            fields = {f.name: getattr(output, f.name) for f in dataclasses.fields(output)}
            value = _first_key(fields, self.output_key, OUTPUT_KEYS, "output_key",
                               "model output")
        elif isinstance(output, (tuple, list)):
            value = _by_position(output, self.output_key, 0, "output_key", "model output")
        else:
            value = output
        if not isinstance(value, torch.Tensor) or value.dim() != 2:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise fail("output_key", f"selects {shape} from the model's output; (N, classes) "
                       "logits are needed", "Pass output_key= (a position, a key or a callable) "
                       "picking the logits", self.output_key, kind=PIDTypeError)
        return value


def to_device(x: Any, device: torch.device, dtype: torch.dtype | None = None) -> Any:
    """``x`` (a tensor, or a tuple/list/mapping of them) moved to ``device`` (non-blocking);
    with ``dtype``, its floating-point tensors are also cast to ``dtype`` (integer tensors such
    as token ids are left as they are)."""
    if isinstance(x, torch.Tensor):
        cast = dtype if dtype is not None and x.is_floating_point() else None
        return x.to(device, dtype=cast, non_blocking=True)
    if isinstance(x, Mapping):
        return type(x)({k: to_device(v, device, dtype) for k, v in x.items()})
    if isinstance(x, (tuple, list)):
        return type(x)(to_device(v, device, dtype) for v in x)
    return x


def _tensors(x: Any) -> list[torch.Tensor]:
    """The tensors in ``x`` (a tensor, or a mapping, tuple or list of them, nested)."""
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, Mapping):
        x = list(x.values())
    if isinstance(x, (tuple, list)):
        return [t for v in x for t in _tensors(v)]
    return []


def floating_dtypes(x: Any) -> set[torch.dtype]:
    """The dtypes of the floating-point tensors in ``x`` (a tensor, or a tuple/list/mapping of
    them); metadata only, nothing is read from the device."""
    return {t.dtype for t in _tensors(x) if t.is_floating_point()}


def _integer_dtypes(x: Any) -> set[torch.dtype]:
    """The dtypes of the integer (and boolean) tensors in ``x``, like :func:`floating_dtypes`."""
    return {t.dtype for t in _tensors(x) if not (t.is_floating_point() or t.is_complex())}


def check_input_dtypes(x: Any, dtype: torch.dtype | None, argument: str,
                       model: str = "student", fix: str = "") -> None:
    """Refuse floating-point inputs ``x`` whose dtype is not the model's ``dtype`` (torch
    refuses ``float64`` inputs to ``float32`` weights deep inside the forward pass, and a silent
    cast would drop precision). ``dtype=None`` (a model mixing precisions) checks nothing;
    ``fix`` is appended to the advice.

    Raises
    ------
    PIDTypeError
        Naming ``argument``, the inputs' dtypes and the model's.
    """
    found = floating_dtypes(x)
    if dtype is None or not found or found == {dtype}:
        return
    got = sorted(str(d) for d in found)
    raise fail(argument, f"yields inputs of dtype {', '.join(got)} but the {model}'s "
               f"parameters are {dtype}", "Convert the inputs to the model's dtype "
               f"(e.g. TensorDataset(x.to({dtype}), y)), or the {model} to the inputs' "
               f"({model}.to({got[0]})){fix}", None, kind=PIDTypeError)


def first_forward(model: nn.Module, x: Any, name: str, argument: str) -> Any:
    """``model(x)``; when it fails with a ``RuntimeError`` (torch's errors for inputs a model
    cannot take; not ``NotImplementedError`` or CUDA's out-of-memory error, which propagate),
    a typed error naming ``argument``, with torch's error chained: a
    :class:`~pidkit.errors.PIDTypeError` naming the dtypes for inputs holding integer tensors
    (``uint8`` images given to a float network), else a
    :class:`~pidkit.errors.PIDValueError` with the inputs' shapes (e.g. rows of 10 features
    for a network that takes 64). Other exceptions propagate as they are. For set-up checks
    on a first batch."""
    try:
        return model(x)
    except (NotImplementedError, torch.cuda.OutOfMemoryError):
        raise                           # RuntimeErrors that say nothing about the inputs
    except RuntimeError as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        ints = sorted(str(d) for d in _integer_dtypes(x))
        if not ints:
            shapes = ", ".join(str(tuple(t.shape)) for t in _tensors(x)) or "no tensor"
            raise fail(argument, f"yields inputs the {name}'s forward pass fails on "
                       f"({reason})", f"Pass inputs of the shape the {name} takes (this "
                       f"batch: {shapes}), or check the input_key of the batch format",
                       None) from exc
        raise fail(argument, f"yields inputs of dtype {', '.join(ints)} and the {name}'s "
                   f"forward pass fails on them ({reason})", "Convert images to floats in the "
                   "data set or a collate_fn, e.g. x.float() / 255 (torchvision: "
                   "transforms.ToDtype(torch.float32, scale=True)); integer inputs suit models "
                   "that embed them (token ids)", None, kind=PIDTypeError) from exc


def class_labels(y: torch.Tensor, argument: str = "train_data") -> torch.Tensor:
    """The labels of a batch of ``argument`` as int64 class indices, by the rule of
    :mod:`pidkit_distill.labels` (:func:`~pidkit_distill.labels.as_class_labels`): any integer
    dtype (``uint8``, ``int16``, ``int32``, ``int64``) is converted to ``int64`` exactly, as
    :func:`torch.nn.functional.cross_entropy` requires, and so are float labels that are all
    whole numbers (their values are read once, before the batch moves to the device; integer
    labels cost no read); fractional float, boolean and one-hot labels are refused."""
    return as_class_labels(y, argument)


def check_label_values(y: torch.Tensor, num_classes: int, argument: str = "train_data") -> None:
    """Check that int64 labels ``y`` are class indices in ``[0, num_classes)`` or the
    unlabelled marker ``-1`` (:data:`~pidkit_distill.losses.UNLABELLED`). Reads ``y`` on the
    host: for set-up checks, not for a training step.

    Raises
    ------
    PIDValueError
        Some label is outside that set; the message gives the offending values.
    """
    bad = y[((y < 0) | (y >= num_classes)) & (y != UNLABELLED)]
    if bad.numel():
        shown = sorted(set(bad.tolist()))[:5]
        ignore = (f"; PyTorch's ignore_index -100 is not this package's marker: pass "
                  f"y.masked_fill(y == -100, {UNLABELLED})" if -100 in shown else "")
        raise fail(argument, f"yields labels {shown} outside the {num_classes} classes of the "
                   f"student's logits (valid: 0..{num_classes - 1}, or {UNLABELLED} for an "
                   "unlabelled sample)", "Relabel the data to 0..K-1, or give the student "
                   f"(and teacher) as many outputs as there are classes{ignore}", None)


def device_batches(loader: Iterable, batch_format: BatchFormat, device: torch.device, *,
                   argument: str = "train_data", drop_single_tail: bool = False,
                   num_classes: int | None = None):
    """Yield ``(x, y)`` of each batch of ``loader`` on ``device``, ``y`` as int64 class
    indices (:func:`class_labels`).

    With ``num_classes``, labels that the loader yields on the CPU (as PyTorch's loaders do)
    are checked to lie in ``[0, num_classes)`` or be :data:`UNLABELLED`
    (:func:`check_label_values`) before they move to ``device``: a read of host memory, no
    device synchronisation. Labels already on an accelerator are not read.

    With ``drop_single_tail`` a last batch of a single sample is left out with a warning (batch
    norm cannot train on one sample): the batches are yielded one step behind, so that the last
    one is known when it arrives; its size is read from the shape, not from the device.

    Iterating a loader does host-side work of PyTorch's data pipeline (the sampler's index
    permutation, the workers' base seed): it involves no device, and is kept here, apart from
    the training step, so that a host-synchronisation count of a step can tell them apart.
    """
    pending = None
    yielded = False
    for batch in loader:
        x, y = batch_format.split(batch, argument)
        y = class_labels(y, argument)
        if num_classes is not None and y.device.type == "cpu":
            check_label_values(y, num_classes, argument)
        current = (to_device(x, device), y.to(device, non_blocking=True))
        if not drop_single_tail:
            yield current
            continue
        if pending is not None:
            yield pending
            yielded = True
        pending = current
    if pending is None:
        return
    if pending[1].shape[0] != 1:
        yield pending
    elif not yielded:
        raise fail(argument, "yields a single sample, and batch norm cannot train on one "
                   "sample", "Pass at least 2 samples, or models without batch norm", None)
    else:
        warnings.warn("The last batch of this epoch holds one sample; batch norm cannot train "
                      "on it, so it is dropped. Choose another batch_size, or pass "
                      "drop_last=True, to keep every batch the same size.", UserWarning,
                      stacklevel=caller_stacklevel())


def has_batchnorm(*modules: nn.Module | None) -> bool:
    """Whether any of ``modules`` contains a batch-norm layer (which cannot train on one
    sample)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm)
               for module in modules if module is not None for m in module.modules())


def _is_array(value: Any) -> bool:
    return isinstance(value, torch.Tensor) or hasattr(value, "__array_interface__")


def as_dataset(data: Any, argument: str) -> Any:
    """``data``, with a tuple ``(inputs, labels)`` of arrays read as a data set of samples.

    A tuple holding a tensor or a numpy array is read as ``(inputs, labels)``: two arrays (or
    an array and a list) with one label per input row, wrapped as
    ``TensorDataset(inputs, labels)`` (numpy arrays through ``torch.as_tensor``, which keeps
    their dtype: pass ``float32`` inputs to a ``float32`` model). This is the one conversion
    the trainer (``train_data``, ``val_data``, :meth:`Trainer.evaluate`) and the audits
    (``data``, ``fit_data``) share. A tuple of arrays that cannot be such a pair (not two
    entries, entries of different lengths, a scalar entry) is a typed error naming
    ``argument``. Anything else (a Dataset, a DataLoader, a tuple or list of samples) is
    returned as it is.
    """
    if not (isinstance(data, tuple) and any(map(_is_array, data))):
        return data
    if len(data) != 2:
        entries = "1 entry" if len(data) == 1 else f"{len(data)} entries"
        raise fail(argument, f"is a tuple of {entries}; a tuple of arrays is read as "
                   "(inputs, labels)", "Pass (inputs, labels), or a data set such as "
                   "TensorDataset(x, y, ...) for more entries per sample (torch.as_tensor for "
                   "numpy arrays)", None, kind=PIDTypeError)
    converted = []
    for entry, value in zip(("inputs", "labels"), data, strict=True):
        names = False                   # class names (strings) given as labels
        try:
            if not isinstance(value, torch.Tensor):
                value = np.asarray(value)
                names = entry == "labels" and value.dtype.kind in "USO"
                value = torch.as_tensor(value)
            converted.append(value)
        except (TypeError, ValueError, RuntimeError) as error:
            fix = ("Map the class names to indices 0..K-1, e.g. classes, y = "
                   "np.unique(labels, return_inverse=True)" if names
                   else "Pass tensors or numeric numpy arrays")
            raise fail(argument, f"is a tuple (inputs, labels) whose {entry} are not a numeric "
                       f"array ({error})", fix, None, kind=PIDTypeError) from error
    x, y = converted
    if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0]:
        raise fail(argument, f"is a tuple (inputs, labels) holding inputs of shape "
                   f"{tuple(x.shape)} and labels of shape {tuple(y.shape)}", "Pass (X, y) with "
                   "one label per input row: X of shape (n, ...), y of shape (n,)")
    return TensorDataset(x, y)


def check_data(data: Any, argument: str) -> int | None:
    """Number of samples of a sized data set (``None`` for iterables); fails on empty data."""
    if isinstance(data, DataLoader):
        data = data.dataset
    if isinstance(data, (str, bytes)) or (not isinstance(data, (Dataset, Iterable))
                                          and not hasattr(data, "__getitem__")):
        raise fail(argument, f"is a {type(data).__name__}, not a data set", "Pass a torch "
                   "Dataset, IterableDataset or DataLoader", None, kind=PIDTypeError)
    if isinstance(data, Mapping):
        raise fail(argument, f"is a {type(data).__name__} (keys {sorted(map(str, data))[:5]}), "
                   "not a data set of samples", "Pass a Dataset whose items are (x, y) pairs or "
                   "mappings, e.g. TensorDataset(x, y)", None, kind=PIDTypeError)
    data = as_dataset(data, argument)
    if isinstance(data, IterableDataset) or not hasattr(data, "__len__"):
        return None
    n = len(data)
    if n == 0:
        raise fail(argument, "is empty", "Pass a data set with at least one sample", None)
    return n


def check_reiterable(data: Any, argument: str) -> None:
    """Refuse data the trainer cannot read once per epoch: an iterable that is neither a
    ``Dataset`` nor a ``DataLoader`` and has no ``len()`` (a generator, ``iter(list)``,
    ``map(...)``), which torch would batch as a map-style data set and fail on, and which a
    second epoch would find exhausted."""
    if isinstance(data, (Dataset, DataLoader)) or (hasattr(data, "__len__")
                                                   and hasattr(data, "__getitem__")):
        return
    raise fail(argument, f"is a {type(data).__name__}: an iterable without len() that is not "
               "a torch IterableDataset (a generator or iterator can be read only once, and "
               "training reads the data every epoch)", "Pass a list of samples (list(...)), a "
               "Dataset, or an IterableDataset whose __iter__ starts over each time", None,
               kind=PIDTypeError)


def train_loader(data: Any, batch_size: int, *, seed: int, rank: int, world: int,
                 drop_last: bool, num_workers: int, pin_memory: bool,
                 one_sample_breaks: bool) -> DataLoader:
    """The training loader of one process.

    A map-style data set is shuffled per epoch with a
    :class:`~torch.utils.data.distributed.DistributedSampler` (seeded with ``seed``, strided
    over ``world`` processes, so the processes' local batches of ``batch_size / world`` form
    the global batches of one process). When ``one_sample_breaks`` (a batch-norm layer trains)
    and the last local batch would hold a single sample, that batch is dropped each epoch
    (another sample each epoch) with a warning; a data set too small for that is refused. An
    iterable data set's length is unknown here: the trainer drops such a batch when it arrives
    (:func:`device_batches` with ``drop_single_tail=True``), with the same warning.
    Loaders built here draw their workers' seeds from their own generator, never from the
    global RNG.
    """
    data = as_dataset(data, "train_data")
    n = check_data(data, "train_data")
    local = batch_size // world
    if isinstance(data, DataLoader):
        if world > 1 and not isinstance(data.sampler, DistributedSampler) and \
                not isinstance(data.dataset, IterableDataset):
            raise fail("train_data", f"is a DataLoader without a DistributedSampler, so each "
                       f"of the {world} processes would see the whole data set", "Build it with "
                       "sampler=DistributedSampler(dataset), or pass the Dataset itself", None)
        if one_sample_breaks and n is not None and not data.drop_last and \
                data.batch_size is not None:
            per_process = -(-n // world)
            if per_process % data.batch_size == 1:
                raise fail("train_data", f"is a DataLoader whose last batch holds one sample "
                           f"({per_process} samples per process, batch size {data.batch_size}); "
                           "batch norm cannot train on one sample", "Build the DataLoader with "
                           "drop_last=True or another batch size", None)
        return data
    generator = torch.Generator().manual_seed(seed)  # workers' base seed: not the global RNG
    if n is None:
        return DataLoader(data, batch_size=local, drop_last=drop_last, num_workers=num_workers,
                          pin_memory=pin_memory, generator=generator)
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=seed)
    per_process = len(sampler)
    if drop_last and per_process < local:
        raise fail("batch_size", f"is {batch_size} with drop_last=True, but train_data holds "
                   f"{n} samples ({per_process} per process, local batch size {local}), so "
                   "every batch would be dropped and nothing trained", f"Pass a batch_size of "
                   f"at most {per_process * world}, or drop_last=False", batch_size)
    if one_sample_breaks and not drop_last and per_process % local == 1:
        if per_process == 1:
            raise fail("train_data", f"holds {n} sample(s): one per process, and batch norm "
                       "cannot train on one sample", "Pass at least 2 samples per process, or "
                       "models without batch norm", None)
        warnings.warn(f"The last batch of each epoch would hold one sample ({per_process} "
                      f"samples per process, local batch size {local}); batch norm cannot "
                      "train on it, so it is dropped (a different sample each epoch, since "
                      "the order is reshuffled). Choose another batch_size to keep it.",
                      UserWarning, stacklevel=caller_stacklevel())
        drop_last = True
    return DataLoader(data, batch_size=local, sampler=sampler, drop_last=drop_last,
                      num_workers=num_workers, pin_memory=pin_memory, generator=generator)


def loader_generators(loader: Any) -> list[torch.Generator]:
    """The random generators a :class:`~torch.utils.data.DataLoader` draws from, each once:
    its own (the workers' base seed, and the order of a ``shuffle=True`` loader), its
    sampler's and its batch sampler's sampler's. Their states fix the order of the batches
    and the workers' seeds, as the global RNG's do for a loader without generators; ``[]``
    for anything but a DataLoader."""
    if not isinstance(loader, DataLoader):
        return []
    batch_sampler = getattr(loader, "batch_sampler", None)
    owners = (loader, loader.sampler, getattr(batch_sampler, "sampler", None))
    found = {}
    for owner in owners:
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator):
            found.setdefault(id(generator), generator)
    return list(found.values())


def collate_samples(samples: Sequence, argument: str) -> Any:
    """``samples`` batched by :func:`torch.utils.data.default_collate`, as the loaders the
    trainer builds batch them; samples it cannot batch (inputs of different shapes, labels
    that are strings or None, a tuple of plain lists read as two samples) are a typed error
    naming ``argument``, with the collation error chained. For set-up checks on a first
    batch.

    Raises
    ------
    pidkit.errors.PIDTypeError
        The samples cannot be stacked into one batch.
    """
    try:
        return torch.utils.data.default_collate(list(samples))
    except (RuntimeError, TypeError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        raise fail(argument, f"holds samples that cannot be batched together ({reason})",
                   "Give every sample an input of one shape and a numeric label, e.g. "
                   "TensorDataset(torch.as_tensor(x), torch.as_tensor(y)) (plain lists "
                   "included), or pass a DataLoader with a collate_fn that pads or stacks "
                   "them", None, kind=PIDTypeError) from exc


def peek_batch(loader: DataLoader, argument: str = "train_data") -> Any:
    """The first batch of a user's ``loader`` (None if it yields none), read without changing
    anything the loader's first epoch depends on, so that it yields the batches a plain
    ``for x, y in loader`` would have (the same samples in the same order, the same workers'
    seeds):

    - the batch is read through a new :class:`~torch.utils.data.DataLoader` over the same
      data set, with the loader's options (workers, ``collate_fn``, ``worker_init_fn``, ...)
      but without persistent workers, and with copies (:func:`copy.deepcopy`, the data set
      itself shared) of its sampler, batch sampler and generator. Iterating ``loader``
      itself started the persistent workers of a ``persistent_workers=True`` loader, whose
      first epoch then reused them without drawing their seed, so that it drew its order
      from another generator state than a plain loop (another permutation, every epoch),
      and advanced a sampler that keeps state between iterations (an epoch counter);
    - the global RNGs of torch, ``random`` and numpy are restored (a loader without a
      generator draws its order and its workers' seed from torch's; a sampler or a data set
      read in this process may draw from any of them), and so are the loader's own
      generators (:func:`loader_generators`).

    A subclass of ``DataLoader`` (whose ``__iter__`` may do more) is iterated itself, with its
    generators and the global RNGs restored. A sampler that cannot be copied is used itself,
    with a ``RuntimeWarning`` naming ``argument`` (its state may then advance once).
    """
    generators = loader_generators(loader)
    states = [g.get_state() for g in generators]
    host_states = random.getstate(), np.random.get_state()  # noqa: NPY002 (the user's)
    with torch.random.fork_rng(devices=[]):
        try:
            source = _peek_loader(loader, argument) if type(loader) is DataLoader else loader
            return next(iter(source), None)
        finally:
            for generator, state in zip(generators, states, strict=True):
                generator.set_state(state)
            random.setstate(host_states[0])
            np.random.set_state(host_states[1])  # noqa: NPY002


#: What copying a user's sampler for :func:`peek_batch` may raise (an object that cannot be
#: pickled or copied: a lock, an open file, a non-leaf tensor).
_COPY_ERRORS = (TypeError, ValueError, RuntimeError, AttributeError, NotImplementedError,
                copy.Error, pickle.PicklingError)


def _peek_loader(loader: DataLoader, argument: str) -> DataLoader:
    """A one-use, non-persistent :class:`~torch.utils.data.DataLoader` that yields what
    ``loader``'s next epoch would, drawing from copies of its sampler, batch sampler and
    generator (:func:`peek_batch`)."""
    options = dict(num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                   pin_memory=False, timeout=loader.timeout,
                   worker_init_fn=loader.worker_init_fn,
                   multiprocessing_context=loader.multiprocessing_context,
                   persistent_workers=False)
    if loader.num_workers > 0:
        options["prefetch_factor"] = loader.prefetch_factor
    if hasattr(loader, "in_order"):          # torch >= 2.6
        options["in_order"] = loader.in_order
    if isinstance(loader.dataset, IterableDataset):
        return DataLoader(loader.dataset, batch_size=loader.batch_size,
                          drop_last=loader.drop_last,
                          generator=copy.deepcopy(loader.generator), **options)
    parts = (loader.sampler, loader.batch_sampler, loader.generator)
    try:    # one memo: the batch sampler's sampler stays the sampler; the data set is shared
        sampler, batch_sampler, generator = copy.deepcopy(parts,
                                                          {id(loader.dataset): loader.dataset})
    except _COPY_ERRORS as exc:
        warnings.warn(f"{argument}: its sampler cannot be copied ({type(exc).__name__}: "
                      f"{exc}), so the check of its first batch iterated the sampler itself: "
                      "a sampler that keeps state between iterations has advanced once. Give "
                      "the sampler a __deepcopy__ method, or check your first epoch's order",
                      RuntimeWarning, stacklevel=caller_stacklevel())
        sampler, batch_sampler, generator = parts
    if batch_sampler is None:                  # batch_size=None: the data set yields batches
        return DataLoader(loader.dataset, batch_size=None, sampler=sampler,
                          generator=generator, **options)
    return DataLoader(loader.dataset, batch_sampler=batch_sampler, generator=generator,
                      **options)


def eval_loader(data: Any, batch_size: int, *, rank: int = 0, world: int = 1,
                num_workers: int = 0, pin_memory: bool = False,
                argument: str = "val_data") -> Iterable:
    """The evaluation loader of one process: every sample exactly once over all processes
    (strided shards, no padding), in order. A DataLoader is used as it is. Loaders built here
    draw their workers' base seed from their own generator, never from the global torch RNG.
    ``argument``: the name errors give (the trainer's ``val_data``, an audit's ``data``)."""
    data = as_dataset(data, argument)
    n = check_data(data, argument)
    if isinstance(data, DataLoader):
        return data
    if n is not None and world > 1:
        data = Subset(data, range(rank, n, world))
    return DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      pin_memory=pin_memory, generator=torch.Generator().manual_seed(0))


def as_loader(data, batch_size: int, name: str = "data", batch_format=None) -> Iterable:
    """An iterable of batches from the data the trainer accepts, plus the audit's own forms.

    - a ``DataLoader``: used as it is;
    - a tuple ``(X, y)`` of tensors or arrays: batched in order (read by
      :func:`~pidkit_distill.batches.as_dataset`, as the trainer reads it);
    - a map-style ``Dataset`` or a list of samples ``(x, y)`` / ``{"input": x, "label": y}``,
      and an ``IterableDataset`` of samples: batched in order, as the trainer does
      (:mod:`pidkit_distill.batches`);
    - any other iterable, and a list or ``IterableDataset`` whose first item already holds a
      batch of labels (shape ``(batch,)``): used as an iterable of batches.

    Data sets of samples are batched by the trainer's evaluation loader
    (:func:`eval_loader`, one process), which draws its workers' base
    seed from its own generator, never from the global torch RNG (iterating a ``DataLoader``
    without ``generator=`` draws one). ``batch_format``
    (:class:`BatchFormat`) picks the input and the label of an item.
    """
    fmt = batch_format if batch_format is not None else BatchFormat()
    data = as_dataset(data, name)
    if isinstance(data, DataLoader):
        return data
    check_data(data, name)
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset) \
            and hasattr(data, "__len__"):
        samples = True
    elif isinstance(data, (IterableDataset, Sequence)) and not isinstance(data, (str, bytes)):
        first = data[0] if isinstance(data, Sequence) else next(iter(data), None)
        samples = first is not None and fmt.split(first, name)[1].dim() == 0
    else:
        return data
    if not samples:
        return data
    return eval_loader(data, batch_size, argument=name)
