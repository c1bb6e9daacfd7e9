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

Precomputed features have no inputs to hash, so each layer's fitting rows are chosen and
ordered by the keys of that layer's features alone (:attr:`Batch.side_keys`,
:class:`SideFitSets`): the teacher's codebook, and so I(Y;T), does not depend on which student
it is audited against (with the joint keys it did: 0.81 against 0.86 bits for one teacher
audited against a copy of itself and against noise).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pidkit.errors import PIDTypeError
from pidkit.validation import check_finite, fail, host_numpy, reject_masked

from ..batches import as_loader

__all__ = ["Batch", "sample_keys", "pair_keys", "FitSet", "SideFitSets", "model_batches",
           "array_batches", "as_loader"]

@dataclass
class Batch:
    """One batch of an audit: labels ``(n,)`` int64, per layer pair the flattened teacher and
    student features ``(n, D)`` as floating numpy arrays in their own dtype (float32 for network
    features; float16 and integers widened, see :func:`floating`), and the samples' keys
    ``(n,)`` uint64
    (:func:`sample_keys` of the inputs, or of the features when no inputs exist); without
    inputs, ``side_keys``: per layer pair the keys of the teacher's and of the student's
    features alone, ``([teacher pair 0, ...], [student pair 0, ...])``, which choose each
    layer's fitting rows (:class:`SideFitSets`)."""

    labels: np.ndarray
    teacher: list[np.ndarray]
    student: list[np.ndarray]
    keys: np.ndarray
    side_keys: tuple[list[np.ndarray], list[np.ndarray]] | None = None

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


def pair_keys(batch: Batch, index: int) -> np.ndarray:
    """The keys that seed the per-sample draws (Poisson bootstrap weights, the order of the
    shuffle null's rows) of layer pair ``index``: the batch's keys, of the inputs, or for
    precomputed features a mix of the keys of that pair's two layers, so that a pair's draws
    depend neither on the other pairs nor on their order."""
    if batch.side_keys is None:
        return batch.keys
    return _fold([batch.side_keys[0][index], batch.side_keys[1][index]])


def _fold(keys: list[np.ndarray]) -> np.ndarray:
    """One key per sample from several (uint64 arrays, in order), each folded in by a
    multiplication by the 64-bit golden ratio and an exclusive or: the key of precomputed
    features' samples, built from their layers' keys instead of hashing every byte again."""
    out = np.zeros_like(keys[0])
    with np.errstate(over="ignore"):      # multiplication modulo 2**64
        for k in keys:
            out = out * np.uint64(0x9E3779B97F4A7C15) ^ k
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

        def take_each(lists: list[list[np.ndarray]]) -> list[np.ndarray]:
            return [take([arrays[i] for arrays in lists]) for i in range(len(lists[0]))]

        side = parts[0].side_keys
        merged = Batch(take([b.labels for b in parts]), take_each([b.teacher for b in parts]),
                       take_each([b.student for b in parts]), keys[order],
                       None if side is None else
                       (take_each([b.side_keys[0] for b in parts]),
                        take_each([b.side_keys[1] for b in parts])))
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


class SideFitSets:
    """Per layer pair and side, a :class:`FitSet` keyed by that layer's own features
    (:attr:`Batch.side_keys`): the fitting rows of audits of precomputed features."""

    def __init__(self, capacity: int, n_pairs: int):
        self.sets = [(FitSet(capacity), FitSet(capacity)) for _ in range(n_pairs)]

    def add(self, batch: Batch) -> None:
        teacher_keys, student_keys = batch.side_keys
        for i, (teacher_set, student_set) in enumerate(self.sets):
            teacher_set.add(Batch(batch.labels, [batch.teacher[i]], [], teacher_keys[i]))
            student_set.add(Batch(batch.labels, [], [batch.student[i]], student_keys[i]))

    def rows(self, index: int, whole: Batch | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The teacher's and the student's fitting rows of layer pair ``index``; from
        ``whole``, every sample in one batch when the fitting set kept them all, by one sort
        of its side keys (the sets themselves are then never compacted: their batches are
        only referenced, and gathering them again would copy every feature twice)."""
        if whole is not None:
            teacher = np.argsort(whole.side_keys[0][index], kind="stable")
            student = np.argsort(whole.side_keys[1][index], kind="stable")
            return whole.teacher[index][teacher], whole.student[index][student]
        teacher_set, student_set = self.sets[index]
        return teacher_set.batch.teacher[0], student_set.batch.student[0]


def _labels(y, name: str, where: str = "in this batch") -> np.ndarray:
    """A batch's labels as int64 class indices (the rule of :mod:`pidkit_distill.labels`), on
    the host; an audit also refuses negative labels, the unlabelled marker
    :data:`~pidkit_distill.labels.UNLABELLED` of training data included (it has no unlabelled
    samples), with a message saying how to keep the labelled ones."""
    from ..labels import UNLABELLED, as_class_labels

    if y is None:
        raise fail(name, "is None", "Pass the class labels, one per sample (shape (N,))",
                   kind=PIDTypeError)
    reject_masked(y, name)
    arr = host_numpy(y) if hasattr(y, "detach") else np.asarray(y)
    if arr.ndim == 0:
        raise fail(name, "yields single samples (a label of shape ()), not batches",
                   "Pass a Dataset, a list of samples or an IterableDataset (the audit batches "
                   "them), or wrap the samples in torch.utils.data.DataLoader(data, "
                   "batch_size=256)", kind=PIDTypeError)
    arr = as_class_labels(arr, name)
    if arr.size and arr.min() < 0:
        if arr.min() == UNLABELLED:
            raise fail(name, f"holds unlabelled samples (label {UNLABELLED}, "
                       f"{int((arr == UNLABELLED).sum())} {where}); an audit measures "
                       "what the layers say about the label, so every audited sample needs one",
                       "Audit the labelled samples only: e.g. Subset(data, indices of the "
                       "samples whose label is >= 0), or labels[keep], features[keep] with "
                       "keep = labels >= 0 in audit_features")
        raise fail(name, "holds negative labels", "Encode classes as 0, ..., K-1", int(arr.min()))
    return arr


def model_batches(teacher, student, pairs: Sequence[tuple[str, str]], device,
                  name: str = "data", batch_format=None) -> Callable[[Iterable], Iterator[Batch]]:
    """A function streaming a loader through both models (eval mode, no gradients) and
    yielding :class:`Batch` objects with the flattened features of every pair.

    Items are split into inputs and labels by ``batch_format``
    (:class:`~pidkit_distill.batches.BatchFormat`: tuples by position, mappings by key);
    inputs may be a tensor or a tuple/list/mapping of tensors (moved to ``device`` as by the
    trainer, all of them hashed into the sample keys). Non-finite features are refused with the
    sample's position in the order the loader yields them, and so are features without the
    batch on their first axis (:func:`~pidkit_distill.features.check_feature_batch`: a sequence
    module built with ``batch_first=False``). Floating-point inputs must have the
    student's dtype (:func:`~pidkit_distill.batches.check_input_dtypes`); a teacher in another
    precision gets them cast to its own, as in training."""
    import torch

    from ..batches import BatchFormat, check_input_dtypes, first_forward, to_device
    from ..features import FeatureHooks, check_feature_batch, eval_mode
    from ..models import module_dtype

    fmt = batch_format if batch_format is not None else BatchFormat()
    s_dtype, t_dtype = module_dtype(student), module_dtype(teacher)
    checked, checked_name = (s_dtype, "student") if s_dtype is not None else (t_dtype, "teacher")
    dev = torch.device(device)
    t_layers = list(dict.fromkeys(t for t, _ in pairs))
    s_layers = list(dict.fromkeys(s for _, s in pairs))

    def stream(loader: Iterable, which: str = name) -> Iterator[Batch]:
        seen = 0
        with eval_mode(*{id(teacher): teacher, id(student): student}.values()), \
                torch.no_grad(), FeatureHooks(teacher, t_layers, detach=True) as th, \
                FeatureHooks(student, s_layers, detach=True) as sh:
            for item in loader:
                x, y = fmt.split(item, which)
                labels = _labels(y, which)
                check_input_dtypes(x, checked, which, checked_name)
                xd = to_device(x, dev)
                first_forward(teacher, to_device(xd, dev, t_dtype), "teacher", which)
                if student is not teacher:
                    first_forward(student, xd, "student", which)
                t_feats = dict(zip(t_layers, th.collect(), strict=True))
                s_feats = dict(zip(s_layers, sh.collect(), strict=True))
                check_feature_batch(torch.as_tensor(labels), [t_feats[t] for t, _ in pairs],
                                    [s_feats[s] for _, s in pairs], pairs)
                teacher_rows = [_flat(t_feats[t], f"teacher layer {t!r}") for t, _ in pairs]
                student_rows = [_flat(s_feats[s], f"student layer {s!r}") for _, s in pairs]
                for (t, s), tr, sr in zip(pairs, teacher_rows, student_rows, strict=True):
                    check_finite(tr, which, what=f"teacher layer {t!r}", offset=seen,
                                 task="auditing")
                    check_finite(sr, which, what=f"student layer {s!r}", offset=seen,
                                 task="auditing")
                seen += labels.shape[0]
                yield Batch(labels, teacher_rows, student_rows, sample_keys(_input_blocks(x)))

    return stream


def _input_blocks(x) -> list[np.ndarray]:
    """The arrays of an input (a tensor or array, or a tuple/list/mapping of them, mappings in
    key order) whose bytes key the samples (:func:`sample_keys`)."""
    if hasattr(x, "detach"):
        return [host_numpy(x)]
    if isinstance(x, Mapping):
        return [b for k in sorted(x, key=str) for b in _input_blocks(x[k])]
    if isinstance(x, (tuple, list)):
        return [b for v in x for b in _input_blocks(v)]
    return [np.asarray(x)]


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


def array_batches(labels, teacher: Sequence, student: Sequence, batch_size: int,
                  names: tuple[str, str, str] = ("labels", "teacher_features",
                                                 "student_features"), *,
                  check: bool = True) -> Iterator[Batch]:
    """Batches of in-memory labels and per-pair feature arrays (numpy or torch); ``names``: the
    arguments the labels, teacher and student arrays came from, named in errors.

    Non-finite features are refused with the sample's row in the arrays
    (:func:`pidkit.validation.check_finite`), unless ``check=False``: for a second pass over
    the same arrays, whose first pass checked every row."""
    label_name, teacher_name, student_name = names

    def rows(a, name: str) -> np.ndarray:
        reject_masked(a, name)
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

    y = _labels(labels, label_name)
    if y.shape[0] == 0:
        raise fail(label_name, "hold no samples", "Pass at least one labelled sample per class "
                   "(an audit needs many)", "an empty array")
    t = [rows(a, teacher_name) for a in teacher]
    s = [rows(a, student_name) for a in student]
    for i, arr in enumerate(t + s):
        if arr.shape[0] != y.shape[0]:
            side = teacher_name if i < len(t) else student_name
            raise fail(side, f"has {arr.shape[0]} samples, {label_name} have "
                       f"{y.shape[0]}", "Pass one feature row per label")
    for start in range(0, y.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        tb = [floating(a[sl]) for a in t]
        sb = [floating(a[sl]) for a in s]
        if check:
            for arr, name in [(a, teacher_name) for a in tb] + [(a, student_name) for a in sb]:
                check_finite(arr, name, offset=start, task="auditing")
        side = ([sample_keys([a]) for a in tb], [sample_keys([a]) for a in sb])
        yield Batch(y[sl], tb, sb, _fold(side[0] + side[1]), side)
