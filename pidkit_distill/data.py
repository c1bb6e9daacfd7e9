"""Data sets, all offline: scikit-learn's digits, MNIST-1D (generated locally), CIFAR-10/100
from files the user already has, and per-class subsets.

CIFAR is read **without executing code from the files**. Two on-disk formats are accepted:

- the official *binary* format (``cifar-10-batches-bin/`` with ``data_batch_{1..5}.bin`` and
  ``test_batch.bin``; ``cifar-100-binary/`` with ``train.bin`` and ``test.bin``): raw bytes,
  one record per image (CIFAR-10: 1 label byte + 3072 pixel bytes; CIFAR-100: coarse and fine
  label bytes + 3072 pixel bytes), parsed with ``numpy.frombuffer``. Preferred.
- the *python* format (``cifar-10-batches-py/``, ``cifar-100-python/``: pickled dicts) through a
  restricted unpickler that only reconstructs numpy arrays, dtypes, plain containers (and
  ``_codecs.encode``, a pure function some pickles use for bytes) and refuses every other
  global (so a malicious file cannot run code).

Nothing is ever downloaded. Inputs are float32 tensors: digits ``(1, 8, 8)`` in [0, 1],
MNIST-1D ``(1, 40)`` standardised, CIFAR ``(3, 32, 32)`` normalised per channel.
"""

from __future__ import annotations

import io
import os
import pickle
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from pidkit.errors import PIDTypeError
from pidkit.validation import check_int, check_seed, fail

__all__ = [
    "load_digits",
    "load_mnist1d",
    "CIFAR",
    "load_cifar",
    "subset_per_class",
    "get_dataset",
    "dataset_targets",
    "semi_supervised",
    "split_per_class",
    "CIFAR_MEAN",
    "CIFAR_STD",
    "num_classes_of",
]

#: Per-channel mean and standard deviation of the CIFAR-10 training images (in [0, 1]).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def _split(x: np.ndarray, y: np.ndarray, test_size: float, seed: int):
    from sklearn.model_selection import train_test_split

    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) or not (
            0.0 < test_size < 1.0):
        raise fail("test_size", "must be a fraction strictly between 0 and 1",
                   "Pass e.g. test_size=0.25", test_size)
    seed = _seed(seed)

    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_size, random_state=seed,
                                          stratify=y)
    return (TensorDataset(torch.as_tensor(xtr, dtype=torch.float32),
                          torch.as_tensor(ytr, dtype=torch.int64)),
            TensorDataset(torch.as_tensor(xte, dtype=torch.float32),
                          torch.as_tensor(yte, dtype=torch.int64)))


def load_digits(test_size: float = 0.25, seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """scikit-learn's handwritten digits (1797 images, 10 classes), stratified train/test split.

    Returns ``(train, test)`` ``TensorDataset`` of images ``(N, 1, 8, 8)`` in [0, 1] and labels.
    """
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    return _split(x, bunch.target.astype(np.int64), test_size, seed)


def load_mnist1d(num_samples: int = 5000, seed: int = 42,
                 **overrides) -> tuple[TensorDataset, TensorDataset]:
    """MNIST-1D (Greydanus 2020) generated locally with ``mnist1d.data.make_dataset``.

    Never uses the package's download path. ``overrides`` set fields of the generator's
    arguments (e.g. ``iid_noise_scale=``). The global numpy / ``random`` states are restored
    after generation. Returns ``(train, test)`` with inputs ``(N, 1, 40)``.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    # the generator splits 80/20 and needs a sample of every one of the 10 classes in both
    args.num_samples, args.seed = check_int(num_samples, "num_samples", 50), _seed(seed)
    for key, value in overrides.items():
        if not hasattr(args, key):
            raise fail(key, "is not an MNIST-1D generator argument",
                       f"Use one of {sorted(vars(args))}")
        setattr(args, key, value)
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)  # noqa: NPY002  (make_dataset seeds the global RNG)
        random.setstate(py_state)

    def ds(x, y):
        return TensorDataset(torch.as_tensor(np.asarray(x), dtype=torch.float32)[:, None],
                             torch.as_tensor(np.asarray(y), dtype=torch.int64))
    return ds(d["x"], d["y"]), ds(d["x_test"], d["y_test"])


# ----------------------------------------------------------------------------- CIFAR
class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that reconstructs numpy arrays and nothing else that is callable."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # protocol-2 pickles written by Python 3 store bytes this way
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: only numpy arrays are allowed")


def _load_python_batch(path: Path) -> dict:
    data = path.read_bytes()
    try:
        obj = _ArrayOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError) as exc:
        raise fail("root", f"{path} is not a plain CIFAR pickle ({exc or 'empty'})",
                   "Use the official CIFAR files (or the binary version)") from exc
    if not isinstance(obj, dict):
        raise fail("root", f"{path} does not hold a dict", "Use the official CIFAR files")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


_LAYOUT = {
    # variant: (binary dir, train files, test files, label bytes, python dir, train, test, key)
    10: ("cifar-10-batches-bin", [f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"],
         1, "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
         "labels"),
    100: ("cifar-100-binary", ["train.bin"], ["test.bin"], 2,
          "cifar-100-python", ["train"], ["test"], "fine_labels"),
}


def _read_cifar(root: Path, variant: int, train: bool, fmt: str) -> tuple[np.ndarray, np.ndarray]:
    bdir, btrain, btest, nlabel, pdir, ptrain, ptest, key = _LAYOUT[variant]
    if fmt == "auto":
        fmt = "binary" if (root / bdir).is_dir() else "python" if (root / pdir).is_dir() else ""
    if fmt == "binary":
        images, labels = [], []
        for name in btrain if train else btest:
            path = root / bdir / name
            if not path.is_file():
                raise fail("root", f"missing CIFAR file {path}", "Point root at the folder "
                           f"holding {bdir}/ (never downloaded by pidkit_distill)")
            raw = np.frombuffer(path.read_bytes(), dtype=np.uint8)
            record = nlabel + 3072
            if raw.size % record:
                raise fail("root", f"{path} has {raw.size} bytes, not a multiple of {record}",
                           "The file is truncated or not CIFAR-{variant} binary")
            raw = raw.reshape(-1, record)
            labels.append(_checked_labels(raw[:, nlabel - 1].astype(np.int64), len(raw),
                                          variant, path))      # fine label is the last byte
            images.append(raw[:, nlabel:].reshape(-1, 3, 32, 32))
        return np.concatenate(images), np.concatenate(labels)
    if fmt == "python":
        images, labels = [], []
        for name in ptrain if train else ptest:
            path = root / pdir / name
            if not path.is_file():
                raise fail("root", f"missing CIFAR file {path}", f"Point root at the folder "
                           f"holding {pdir}/ (never downloaded by pidkit_distill)")
            batch = _load_python_batch(path)
            if not isinstance(batch, dict) or "data" not in batch or key not in batch:
                raise fail("root", f"{path} is not a CIFAR-{variant} python batch (a dict with "
                           f"'data' and {key!r})", "Use the files of the CIFAR python archive")
            data = np.asarray(batch["data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3072:
                raise fail("root", f"{path} holds data of shape {data.shape}, not (N, 3072)",
                           "The file is damaged or not a CIFAR batch")
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(_checked_labels(np.asarray(batch[key], dtype=np.int64).reshape(-1),
                                          len(data), variant, path))
        return np.concatenate(images), np.concatenate(labels)
    raise fail("root", f"no CIFAR-{variant} data under {root}",
               f"Put {bdir}/ (binary) or {pdir}/ (python) there; pidkit_distill never downloads")


def _checked_labels(labels: np.ndarray, n_images: int, variant: int, path: Path) -> np.ndarray:
    """The labels of one CIFAR file, checked: one per image, at least one image, each in
    ``[0, variant)`` (a damaged file otherwise gives a wrong class count or an index error
    later)."""
    if n_images == 0:
        raise fail("root", f"{path} holds no images", "The file is empty or damaged")
    if len(labels) != n_images:
        raise fail("root", f"{path} holds {len(labels)} labels for {n_images} images",
                   "The file is damaged or not a CIFAR batch")
    bad = labels[(labels < 0) | (labels >= variant)]
    if bad.size:
        raise fail("root", f"{path} holds labels outside [0, {variant}) (e.g. {int(bad[0])})",
                   f"The file is damaged or not CIFAR-{variant}")
    return labels


class CIFAR(Dataset):
    """CIFAR-10 or CIFAR-100 from ``root`` (see the module docstring for formats).

    Parameters
    ----------
    root : str or Path
        Folder containing ``cifar-10-batches-bin/`` (or ``-py``) / ``cifar-100-binary/``.
    variant : {10, 100}
    train : bool
    augment : bool
        Random crop (padding 4) and horizontal flip, drawn from the global torch RNG.
    fmt : {"auto", "binary", "python"}
    normalize : bool
        Subtract :data:`CIFAR_MEAN` and divide by :data:`CIFAR_STD`.

    Attributes
    ----------
    data : Tensor uint8 ``(N, 3, 32, 32)``; targets : Tensor int64 ``(N,)``
    """

    def __init__(self, root: str | Path, variant: int = 10, train: bool = True,
                 augment: bool = False, fmt: str = "auto", normalize: bool = True):
        if variant not in (10, 100):
            raise fail("variant", "must be 10 or 100", "Use 10 for CIFAR-10, 100 for CIFAR-100",
                       variant)
        if fmt not in ("auto", "binary", "python"):
            raise fail("fmt", "is not a known format", "Use 'auto', 'binary' or 'python'", fmt)
        if not isinstance(root, (str, os.PathLike)):
            raise fail("root", "must be the folder holding the CIFAR files", "Pass a str or "
                       "pathlib.Path (nothing is downloaded)", root, kind=PIDTypeError)
        images, labels = _read_cifar(Path(root), variant, train, fmt)
        self.data = torch.from_numpy(np.ascontiguousarray(images))
        self.targets = torch.from_numpy(labels)
        self.augment, self.normalize = augment, normalize
        self._mean = torch.tensor(CIFAR_MEAN).view(3, 1, 1)
        self._std = torch.tensor(CIFAR_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.data[i].float() / 255.0
        if self.augment:
            padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
            dy, dx = (int(v) for v in torch.randint(0, 9, (2,)))
            x = padded[:, dy:dy + 32, dx:dx + 32]
            if torch.rand(()) < 0.5:
                x = x.flip(-1)
        if self.normalize:
            x = (x - self._mean) / self._std
        return x, self.targets[i]


def load_cifar(root: str | Path, variant: int = 10, augment: bool = False,
               fmt: str = "auto") -> tuple[CIFAR, CIFAR]:
    """``(train, test)`` CIFAR data sets from ``root``; ``augment`` applies to train only."""
    return (CIFAR(root, variant, True, augment, fmt), CIFAR(root, variant, False, False, fmt))


# ----------------------------------------------------------------------------- helpers
def _seed(seed: object) -> int:
    """A seed for torch, numpy and scikit-learn alike (:func:`pidkit.validation.check_seed`:
    an integer in ``[0, 2**32)``; ``None`` is refused, since these splits must repeat)."""
    if seed is None:
        raise fail("seed", "must be an integer", "Pass e.g. seed=0", kind=PIDTypeError)
    return check_seed(seed, maximum=2**32 - 1)


def dataset_targets(dataset: Dataset) -> torch.Tensor:
    """Labels of a data set as an int64 tensor (``targets`` attribute, TensorDataset, Subset,
    or by iterating), by the labels rule of :mod:`pidkit_distill.labels` (whole-number floats
    are converted exactly; fractional ones are refused, never truncated)."""
    from .labels import as_class_labels

    if isinstance(dataset, Subset):
        return dataset_targets(dataset.dataset)[torch.as_tensor(dataset.indices)]
    if hasattr(dataset, "targets"):
        raw = dataset.targets
    elif isinstance(dataset, TensorDataset):
        raw = dataset.tensors[1]
    else:
        raw = [dataset[i][1] for i in range(len(dataset))]
        raw = torch.stack([torch.as_tensor(v) for v in raw]) if raw else torch.zeros(0)
    raw = raw.detach().cpu() if torch.is_tensor(raw) else torch.as_tensor(np.asarray(raw))
    return as_class_labels(raw, "dataset labels")


def subset_per_class(dataset: Dataset, n_per_class: int, seed: int = 0) -> Subset:
    """A subset with ``n_per_class`` samples of every class, drawn without replacement with a
    seeded generator (the paper's CIFAR-100 setting uses 100 per class)."""
    n_per_class = check_int(n_per_class, "n_per_class", 1)
    targets = dataset_targets(dataset)
    g = torch.Generator().manual_seed(_seed(seed))
    chosen = []
    for c in torch.unique(targets).tolist():
        idx = torch.nonzero(targets == c).flatten()
        if len(idx) < n_per_class:
            raise fail("n_per_class", f"class {c} has only {len(idx)} samples",
                       "Lower n_per_class", n_per_class)
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:n_per_class]])
    return Subset(dataset, torch.sort(torch.cat(chosen)).values.tolist())


def split_per_class(dataset: Dataset, fraction: float, seed: int = 0) -> tuple[Subset, Subset]:
    """Stratified split ``(rest, held_out)``: ``round(fraction * n_c)`` samples of every class
    ``c`` (seeded) go to ``held_out`` (e.g. a validation split carved out of a training split).
    """
    if not 0.0 < float(fraction) < 1.0:
        raise fail("fraction", "must lie strictly between 0 and 1",
                   "Pass the share of every class to hold out, e.g. 0.2", fraction)
    targets = dataset_targets(dataset)
    g = torch.Generator().manual_seed(seed)
    held = []
    for c in torch.unique(targets).tolist():
        idx = torch.nonzero(targets == c).flatten()
        held.append(idx[torch.randperm(len(idx), generator=g)[:round(fraction * len(idx))]])
    mask = torch.zeros(len(targets), dtype=torch.bool)
    mask[torch.cat(held)] = True
    return (Subset(dataset, torch.nonzero(~mask).flatten().tolist()),
            Subset(dataset, torch.nonzero(mask).flatten().tolist()))


def semi_supervised(dataset: Dataset, labels_per_class: int,
                    unlabelled_per_class: int | None = None, seed: int = 0) -> TensorDataset:
    """Few labels, more inputs: the ``labels_per_class`` samples per class of
    :func:`subset_per_class` (same seed, so the same labelled samples), plus
    ``unlabelled_per_class`` further samples of every class (``None``: all the others) whose
    label is replaced by :data:`~pidkit_distill.losses.UNLABELLED`.

    The losses use unlabelled samples in their teacher-matching terms only (no
    cross-entropy), the classic semi-supervised distillation setting: the teacher can be
    queried on any input, labels are the scarce part. Returns a materialised
    ``TensorDataset`` (labelled samples first).

    Examples
    --------
    >>> train, _ = load_digits()
    >>> ds = semi_supervised(train, 2, 3)
    >>> len(ds), int((ds.tensors[1] == -1).sum())
    (50, 30)
    """
    from .losses.base import UNLABELLED

    unlabelled = (None if unlabelled_per_class is None
                  else check_int(unlabelled_per_class, "unlabelled_per_class", 0))
    labelled = subset_per_class(dataset, labels_per_class, seed)
    targets = dataset_targets(dataset)
    taken = torch.zeros(len(targets), dtype=torch.bool)
    taken[torch.as_tensor(labelled.indices, dtype=torch.long)] = True
    g = torch.Generator().manual_seed(seed + 7919)
    extra = []
    for c in torch.unique(targets).tolist():
        idx = torch.nonzero((targets == c) & ~taken).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        extra.append(idx if unlabelled is None else idx[:unlabelled])
    order = [*labelled.indices, *torch.sort(torch.cat(extra)).values.tolist()]
    xs = torch.stack([torch.as_tensor(dataset[i][0]) for i in order])
    ys = targets[torch.as_tensor(order, dtype=torch.long)].clone()
    ys[len(labelled.indices):] = UNLABELLED
    return TensorDataset(xs, ys)


def get_dataset(name: str, root: str | Path | None = None, *, seed: int = 0,
                samples_per_class: int | None = None, augment: bool = False,
                **kwargs) -> tuple[Dataset, Dataset]:
    """``(train, test)`` by name: ``"digits"``, ``"mnist1d"``, ``"cifar10"``, ``"cifar100"``.

    ``samples_per_class`` subsamples the training set per class (drawn with ``seed``); ``root``
    is required for CIFAR. ``seed`` also draws the digits train/test split; MNIST-1D (the
    canonical generator seed 42; pass ``seed=`` through ``load_mnist1d`` for another data
    set) and CIFAR have fixed splits, which ``seed`` does not change.
    """
    if not isinstance(name, str):
        raise fail("name", "must be a data set name", "Use 'digits', 'mnist1d', 'cifar10' or "
                   "'cifar100'", name, kind=PIDTypeError)
    key = name.lower().replace("-", "")
    if key == "digits":
        train, test = load_digits(seed=seed, **kwargs)
    elif key == "mnist1d":
        train, test = load_mnist1d(**kwargs)
    elif key in ("cifar10", "cifar100"):
        if root is None:
            raise fail("root", f"{name} needs a data folder", "Pass root=<folder with the CIFAR "
                       "files>; nothing is downloaded")
        train, test = load_cifar(root, int(key[5:]), augment=augment, **kwargs)
    else:
        raise fail("name", "is not a known data set",
                   "Use 'digits', 'mnist1d', 'cifar10' or 'cifar100'", name)
    if samples_per_class is not None:
        train = subset_per_class(train, samples_per_class, seed)
    return train, test


def num_classes_of(datasets: Sequence[Dataset]) -> int:
    """Number of classes (max label + 1) over the given data sets."""
    labels = [dataset_targets(d) for d in datasets]
    if not any(len(t) for t in labels):
        raise fail("datasets", "hold no labelled sample", "Pass data sets with samples")
    return int(max(int(t.max()) for t in labels if len(t))) + 1
