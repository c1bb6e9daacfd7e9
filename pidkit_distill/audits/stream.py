r"""Streaming the data of an audit: features of layer pairs batch by batch, order-free sample
keys, and the order-free choice of the samples a discretiser is fitted on.

Every sample gets a 64-bit key, a BLAKE2b hash of the bytes of its input (or, for precomputed
features, of its features) in a canonical dtype (float32 when it holds the values exactly, else
float64); labels are not hashed. It depends on the sample's values
alone, not on its position in the data, its label or its dtype, so choosing the fitting rows as
the ``k`` smallest keys and sorting them by key makes the fit, and hence the whole audit,
independent of the order of the data, of the names of the classes, and of float32 vs float64
or numpy vs torch inputs. The keys also
seed the per-sample Poisson bootstrap weights of the Gaussian route
(:func:`pidkit.estimate.uncertainty.poisson_weights`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from pidkit.errors import PIDTypeError
from pidkit.validation import fail, host_numpy

__all__ = ["Batch", "sample_keys", "FitSet", "model_batches",
           "array_batches", "as_loader"]

@dataclass
class Batch:
    """One batch of an audit: labels ``(n,)`` int64, per layer pair the flattened teacher and
    student features ``(n, D)`` as floating numpy arrays in their own dtype (float32 for network
    features; float16 and integers widened, see :func:`floating`), and the samples' keys
    ``(n,)`` uint64
    (:func:`sample_keys` of the inputs, or of the features when no inputs exist)."""

    labels: np.ndarray
    teacher: list[np.ndarray]
    student: list[np.ndarray]
    keys: np.ndarray

    def __len__(self) -> int:
        return self.labels.shape[0]


def sample_keys(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """The exact, order-free 64-bit key of every sample: BLAKE2b (8-byte digest) of the bytes of
    its row in every block ``(n, ...)`` (inputs, or features).

    The key depends on the sample's values alone: not on its position in the data, not on its
    label (so renaming the classes changes nothing), and not on the dtype the values were
    passed in: a floating row is hashed as float32 bytes when float32 holds its values exactly
    (always the case for float32 data), else as float64 bytes, so float32 and float64 copies of
    the same features, numpy or torch, get the same keys (at float32's hashing cost).
    ``-0.0`` counts as ``0.0``.
    """
    rows = []
    for b in blocks:
        flat = b.reshape(b.shape[0], -1)
        if flat.dtype.kind != "f":
            rows.append((np.ascontiguousarray(flat), None, None))
            continue
        narrow = np.ascontiguousarray(flat.astype(np.float32) + np.float32(0))  # -0.0 -> 0.0
        if flat.dtype == np.float32:
            rows.append((narrow, None, None))
            continue
        exact = (narrow == flat).all(axis=1)
        rows.append((narrow, exact, np.ascontiguousarray(flat.astype(np.float64) + 0.0)))
    n = blocks[0].shape[0] if blocks else 0
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        digest = hashlib.blake2b(digest_size=8)
        for narrow, exact, wide in rows:
            digest.update(narrow[i] if exact is None or exact[i] else wide[i])
        out[i] = int.from_bytes(digest.digest(), "little")
    return out


class FitSet:
    """The ``capacity`` samples with the smallest keys seen in a stream, kept in key order.

    Order-free: the kept set, and its order, depend only on which samples were streamed.
    Batches are buffered and compacted once the buffer holds twice the capacity, so each sample
    is copied a bounded number of times. ``complete`` tells whether every streamed sample was
    kept.
    """

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self._pending: list[Batch] = []
        self._rows = 0
        self.seen = 0

    def add(self, batch: Batch) -> None:
        self.seen += len(batch)
        self._pending.append(batch)
        self._rows += len(batch)
        if self._rows >= 2 * self.capacity:
            self._compact()

    def _compact(self) -> None:
        parts = self._pending
        keys = np.concatenate([b.keys for b in parts])
        order = np.argsort(keys, kind="stable")[: self.capacity]
        # (part, row) of every kept sample, so each block is gathered with one copy
        part_of = np.repeat(np.arange(len(parts)), [len(b) for b in parts])[order]
        starts = np.cumsum([0] + [len(b) for b in parts])
        row_of = order - starts[part_of]

        def take(blocks: list[np.ndarray]) -> np.ndarray:
            if len(blocks) == 1:
                return blocks[0][row_of]
            out = np.empty((len(order), *blocks[0].shape[1:]),
                           dtype=np.result_type(*blocks))
            for j, block in enumerate(blocks):
                where = np.flatnonzero(part_of == j)
                out[where] = block[row_of[where]]
            return out

        n_pairs = len(parts[0].teacher)
        merged = Batch(take([b.labels for b in parts]),
                       [take([b.teacher[i] for b in parts]) for i in range(n_pairs)],
                       [take([b.student[i] for b in parts]) for i in range(n_pairs)],
                       keys[order])
        self._pending, self._rows = [merged], len(merged)

    @property
    def batch(self) -> Batch | None:
        """The kept samples, sorted by key (``None`` before any sample)."""
        if not self._pending:
            return None
        if len(self._pending) > 1 or self._rows > self.capacity:
            self._compact()
        elif not np.all(self._pending[0].keys[:-1] <= self._pending[0].keys[1:]):
            self._compact()
        return self._pending[0]

    @property
    def complete(self) -> bool:
        return self.seen > 0 and self.seen == len(self.batch)


def as_loader(data, batch_size: int, name: str = "data") -> Iterable:
    """An iterable of ``(x, y)`` batches from a ``DataLoader`` / iterable of batches, a map-style
    ``Dataset`` of ``(x, y)`` pairs, or a tuple ``(X, y)`` of tensors or arrays."""
    import torch
    from torch.utils.data import DataLoader, Dataset, TensorDataset

    if isinstance(data, tuple) and len(data) == 2:
        x, y = (torch.as_tensor(np.asarray(v)) if not torch.is_tensor(v) else v for v in data)
        if x.shape[0] != y.shape[0]:
            raise fail(name, f"holds {x.shape[0]} inputs but {y.shape[0]} labels",
                       "Pass (X, y) with one label per input")
        data = TensorDataset(x, y)
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        return DataLoader(data, batch_size=batch_size, shuffle=False)
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        return data
    raise fail(name, "must be a Dataset of (x, y), a DataLoader / iterable of (x, y) batches, "
               "or a tuple (X, y)", "Wrap your data in torch.utils.data.TensorDataset(X, y)",
               type(data).__name__, kind=PIDTypeError)


def _labels(y, name: str) -> np.ndarray:
    arr = host_numpy(y) if hasattr(y, "detach") else np.asarray(y)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise fail(name, f"labels must be integers of shape (batch,), got dtype {arr.dtype} and "
                   f"shape {arr.shape}", "Yield (inputs, integer class labels) batches",
                   kind=PIDTypeError)
    if arr.size and arr.min() < 0:
        raise fail(name, "holds negative labels", "Encode classes as 0, ..., K-1", int(arr.min()))
    return arr.astype(np.int64)


def model_batches(teacher, student, pairs: Sequence[tuple[str, str]], device,
                  name: str = "data") -> Callable[[Iterable], Iterator[Batch]]:
    """A function streaming a loader through both models (eval mode, no gradients) and
    yielding :class:`Batch` objects with the flattened features of every pair."""
    import torch

    from ..features import FeatureHooks, eval_mode

    t_layers = list(dict.fromkeys(t for t, _ in pairs))
    s_layers = list(dict.fromkeys(s for _, s in pairs))

    def stream(loader: Iterable) -> Iterator[Batch]:
        with eval_mode(*{id(teacher): teacher, id(student): student}.values()), \
                torch.no_grad(), FeatureHooks(teacher, t_layers, detach=True) as th, \
                FeatureHooks(student, s_layers, detach=True) as sh:
            for item in loader:
                if not isinstance(item, (tuple, list)) or len(item) < 2:
                    raise fail(name, "must yield (inputs, labels) batches",
                               "Use a DataLoader over a data set of (x, y) pairs",
                               type(item).__name__, kind=PIDTypeError)
                x, y = item[0], item[1]
                labels = _labels(y, name)
                xd = x.to(device)
                teacher(xd)
                if student is not teacher:
                    student(xd)
                t_feats = dict(zip(t_layers, th.collect(), strict=True))
                s_feats = dict(zip(s_layers, sh.collect(), strict=True))
                yield Batch(labels, [_flat(t_feats[t], f"teacher layer {t!r}") for t, _ in pairs],
                            [_flat(s_feats[s], f"student layer {s!r}") for _, s in pairs],
                            sample_keys([host_numpy(x)]))

    return stream


def floating(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself when float32 or float64, else widened to float32 (float16, integers):
    features keep their own precision, no copy is made of float arrays."""
    return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float32)


def _check_real(arr, name: str) -> None:
    """Refuse complex features: casting them to real would drop the imaginary part."""
    if hasattr(arr, "is_complex"):  # a torch tensor
        is_complex = bool(arr.is_complex())
    else:
        is_complex = np.asarray(arr).dtype.kind == "c"
    if is_complex:
        raise fail(name, "holds complex values, whose imaginary part would be dropped",
                   "Pass real features: e.g. stack the real and imaginary parts "
                   "(np.concatenate([x.real, x.imag], axis=1)) or take np.abs(x)",
                   f"dtype {arr.dtype}", kind=PIDTypeError)


def _flat(feature, name: str = "features") -> np.ndarray:
    """A hooked feature as a numpy matrix; float32/float64 kept, half precisions widened."""
    _check_real(feature, name)
    flat = feature.reshape(feature.shape[0], -1)
    if not flat.is_floating_point() or flat.dtype.itemsize < 4:
        flat = flat.float()
    return flat.cpu().numpy()


def array_batches(labels, teacher: Sequence, student: Sequence,
                  batch_size: int) -> Iterator[Batch]:
    """Batches of in-memory labels and per-pair feature arrays (numpy or torch)."""
    def rows(a, name: str) -> np.ndarray:
        arr = host_numpy(a) if hasattr(a, "detach") else np.asarray(a)
        if arr.ndim == 0:
            raise fail(name, "must be an array of shape (n, ...), one row per sample",
                       "Pass one feature row per label", arr, kind=PIDTypeError)
        _check_real(arr, name)
        width = math.prod(arr.shape[1:])
        if width == 0:
            raise fail(name, "has no features per sample", "Pass at least one feature per "
                       "sample", f"shape {arr.shape}")
        return arr.reshape(arr.shape[0], width)

    y = _labels(labels, "labels")
    if y.shape[0] == 0:
        raise fail("labels", "hold no samples", "Pass at least one labelled sample per class "
                   "(an audit needs many)", "an empty array")
    t = [rows(a, "teacher_features") for a in teacher]
    s = [rows(a, "student_features") for a in student]
    for i, arr in enumerate(t + s):
        if arr.shape[0] != y.shape[0]:
            side = "teacher" if i < len(t) else "student"
            raise fail(f"{side}_features", f"has {arr.shape[0]} samples, labels have "
                       f"{y.shape[0]}", "Pass one feature row per label")
    for start in range(0, y.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        tb = [floating(a[sl]) for a in t]
        sb = [floating(a[sl]) for a in s]
        yield Batch(y[sl], tb, sb, sample_keys(tb + sb))
