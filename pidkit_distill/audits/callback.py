"""``AuditCallback``: audit the student every N epochs during :func:`pidkit_distill.distill`.

Each audit is appended to an :class:`~pidkit_distill.audits.curves.AuditHistory`; with
``out_dir`` the history is rewritten after every audit as ``<method>_curves.json``, ``.csv`` and
``.png`` (Red, Uni(Y:T\\S) and I(Y;S) against epochs), so an interrupted run keeps its curves;
a run resumed from a checkpoint continues the curves it finds there.
Compare methods with :func:`~pidkit_distill.audits.curves.plot_curves` on the histories of
several runs.

**Chance levels per epoch, by default.** Every audit draws :data:`CALLBACK_N_PERM` = 50 label
shuffles (the permutation null of :func:`~pidkit_distill.audit`, batched in one BROJA call per
layer pair), so each curve comes with its chance level (a dotted line in the figure; the
``chance`` and ``p_value`` series of the history; ``audit_<quantity>_chance`` in the epoch's
metrics) and the default ``"normal"`` intervals their boundary rule. Half the audit's
default of 100: the smallest p-value is 1/51, below 0.05, which is the level the curves are read
at, and the null costs about as much as the 50 bootstrap replicates (measured on digits, 450
test samples, layer3 pairs of ``digits_cnn`` 16 -> 4, one thread: about 1.1-1.5 s per audit
with ``n_perm=0``, 1.7-2.6 s with 50, 3.6-4.2 s with 100; docs/audit.md). ``n_perm=0`` turns it
off.

Example
-------
>>> import pidkit_distill as pd
>>> from pidkit_distill.audits.callback import AuditCallback
>>> train, test = pd.data.load_digits()                                       # doctest: +SKIP
>>> cb = AuditCallback(test, every=2, fit_data=train, out_dir="runs/audit")   # doctest: +SKIP
>>> pd.distill(teacher, student, train, method="rid", epochs=10, callbacks=[cb])  # doctest: +SKIP
>>> cb.history.series("redundancy")["value"]                                  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.utils.data import DataLoader, TensorDataset

from pidkit.errors import PIDTypeError
from pidkit.validation import check_flag, check_int, fail

from .curves import AuditHistory
from .report import check_pairs
from .run import AuditOptions, _global_rng_kept, audit

__all__ = ["AuditCallback", "CALLBACK_N_PERM", "CALLBACK_N_BOOT"]

#: Shuffle-null replicates per audited epoch (see the module notes).
CALLBACK_N_PERM = 50

#: Bootstrap replicates per audited epoch.
CALLBACK_N_BOOT = 50

#: Quantities of the first layer pair added to the epoch's metrics.
METRIC_QUANTITIES = ("redundancy", "unique_teacher", "mi_student")


class AuditCallback:
    """Run :func:`~pidkit_distill.audit` on the trainer's teacher and student every ``every``
    epochs (and after the last one).

    Parameters
    ----------
    data : data set accepted by :func:`~pidkit_distill.audit`, optional
        Samples to audit on. Default: the trainer's validation data.
    every : int, default 1
        Audit after epochs ``every - 1, 2 * every - 1, ...`` (0-based) and the final epoch.
    layers : list of (str, str), optional
        Layer pairs. Default: the trainer's distilled pairs (for methods without features, the
        innermost ``feature_layers`` of both models).
    method : str, optional
        Curve label. Default: the trainer's method name.
    out_dir : str or Path, optional
        Rewrite the curves (JSON, CSV, PNG) there after every audit (main process only).
    pair : int or str, default 0
        Layer pair drawn in the saved figure.
    add_metrics : bool, default True
        Add ``audit_redundancy``, ``audit_unique_teacher``, ``audit_mi_student`` (first pair) to
        the epoch's metrics, so they reach the trainer's metrics CSV/JSON, and their chance
        levels ``audit_redundancy_chance``, ... when a null was drawn; their unit (bits, or
        that of ``base``) is declared in ``trainer.metric_units``, so ``metrics.json`` and
        the CSV header name it. Under data parallelism they are added on the main process
        (which audits) only; a ``ReduceLROnPlateau`` may still watch one
        (``scheduler_monitor="audit_redundancy"``, with ``every=1``: it steps after every
        epoch, so ``every`` above 1 is refused before training): the trainer steps every
        process's scheduler with the main process's value.
    **audit_options
        Passed to :func:`~pidkit_distill.audit` (``estimator``, ``fit_data``, ``ci``, ``n_boot``,
        ``n_perm``, ``interval``, ``seed``, ``measure``, ...), and checked here, so that bad
        settings fail before training starts. Defaults here:
        ``n_boot=50`` (:data:`CALLBACK_N_BOOT`) and ``n_perm=50`` (:data:`CALLBACK_N_PERM`,
        chance levels on; the cost is in the module notes), ``input_key`` / ``label_key``
        those of the trainer, the rest as in ``audit``. An audit leaves the global torch RNG as
        it was, so training gives the same student with and without this callback.

    Attributes
    ----------
    history : AuditHistory
        Every audit so far.
    """

    def __init__(self, data: Any = None, *, every: int = 1,
                 layers: Sequence[tuple[str, str]] | None = None, method: str | None = None,
                 out_dir: str | Path | None = None, pair: int | str = 0,
                 add_metrics: bool = True, **audit_options: Any):
        every = check_int(every, "every", 1)
        add_metrics = check_flag(add_metrics, "add_metrics")
        if method is not None and not isinstance(method, str):
            raise fail("method", "must be the method's name (a label for the curves) or None",
                       "Pass e.g. method='rid'", method, kind=PIDTypeError)
        if out_dir is not None and not isinstance(out_dir, (str, os.PathLike)):
            raise fail("out_dir", "must be a folder path or None", "Pass a str or a "
                       "pathlib.Path", out_dir, kind=PIDTypeError)
        if layers is not None:
            check_pairs(layers)
        if data is not None:
            from ..batches import check_data

            check_data(data, "data")
        if isinstance(pair, bool) or not isinstance(pair, (int, str)) or (
                isinstance(pair, int) and pair < 0):
            raise fail("pair", "must be a layer pair's index (>= 0) or its name",
                       "Pass e.g. pair=0 (the first pair)", pair, kind=PIDTypeError)
        if isinstance(pair, int) and layers is not None and pair >= len(layers):
            raise fail("pair", f"is {pair} but layers has {len(layers)} pair(s)",
                       f"Pass an index below {len(layers)}", pair)
        if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
            raise fail("out_dir", f"{out_dir} is a file, not a folder", "Pass a folder path "
                       "(created if missing)")
        self.data = data
        self.every = every
        self.layers = layers
        self.method = method
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.pair = pair
        self.add_metrics = add_metrics
        self.audit_options: Mapping[str, Any] = {"n_boot": CALLBACK_N_BOOT,
                                                  "n_perm": CALLBACK_N_PERM, **audit_options}
        # refuse bad settings now, not after the first training epoch
        params = inspect.signature(audit).parameters
        own = {"teacher", "student", "data", "layers", "device", "metadata"}  # set by the callback
        unknown = sorted((set(audit_options) - set(params)) | (set(audit_options) & own))
        if unknown:
            raise fail("audit_options", f"{unknown} are not options the callback passes to "
                       "audit", "Pass audit's keyword options (n_boot, n_perm, ci, estimator, "
                       "fit_data, ...); data= and layers= are the callback's own arguments")
        AuditOptions(**{f.name: self.audit_options.get(f.name, params[f.name].default)
                        for f in fields(AuditOptions)})
        self.history: AuditHistory | None = None

    def on_train_begin(self, trainer) -> None:
        """Refuse, before the first epoch, what the first audit would refuse after it: no
        data (neither ``data`` nor the trainer's ``val_data``), and unlabelled samples (label
        -1) in data whose labels are held in memory (a ``(inputs, labels)`` pair or a
        ``TensorDataset``; other data sets are checked as the audit reads them), and, when
        the audited pairs are known (``layers``, or the pairs the trainer distils), layer paths
        that are not modules of the models and a ``pair`` that is none of them; pairs of its
        own (``layers``) are read once on the first batch of the data, as the audit reads
        them, so that an output it cannot audit (an item of a tuple that is not a tensor, a
        feature without the batch on its first axis) stops the run now."""
        data = self.data if self.data is not None else trainer.val_data
        if data is None:
            raise fail("data", "is not given and the trainer has no val_data",
                       "Pass AuditCallback(data=...) or distill(..., val_data=...)")
        self._check_pairs(trainer)
        self._probe_pairs(trainer, data)
        self._check_monitor(trainer)
        self._refuse_earlier_curves(trainer)
        self._continue_curves(trainer)
        from ..batches import as_dataset
        from .stream import _labels

        dataset = as_dataset(data, "data")
        key = getattr(trainer.config, "label_key", None)
        position = 1 if key is None else key
        if isinstance(dataset, TensorDataset) and isinstance(position, int) and \
                -len(dataset.tensors) <= position < len(dataset.tensors):
            _labels(dataset.tensors[position], "data", where="of them")

    def _check_monitor(self, trainer) -> None:
        """Refuse, before the first epoch, a ``ReduceLROnPlateau`` that watches one of this
        callback's metrics (``scheduler_monitor="audit_..."``) in epochs it will not have:
        with ``every`` above 1 (the first epoch not audited stopped the run after training
        it) or ``add_metrics=False``."""
        monitor = getattr(trainer.config, "scheduler_monitor", None)
        if not (isinstance(monitor, str) and monitor.startswith("audit_")):
            return
        plateau = [sched for sched in (getattr(trainer, "student_scheduler", None),
                                       getattr(trainer, "teacher_scheduler", None))
                   if isinstance(sched, ReduceLROnPlateau)]
        if not plateau:
            return
        if not self.add_metrics:
            raise fail("scheduler_monitor", f"is {monitor!r}, but this AuditCallback adds no "
                       "metrics (add_metrics=False)", "Pass add_metrics=True, or watch "
                       "another metric", monitor)
        if self.every != 1:
            raise fail("scheduler_monitor", f"is {monitor!r}, which this AuditCallback adds "
                       f"only every {self.every} epochs (every={self.every}), but "
                       "ReduceLROnPlateau steps after every epoch", "Pass every=1, or watch "
                       "a metric of every epoch (val_loss, train_loss)", monitor)

    def _audited_pairs(self, trainer) -> list[tuple[str, str]] | None:
        """The pairs the audits will read: ``layers``, else those the trainer distils (``None``:
        neither, the audit then takes the models' ``feature_layers``)."""
        distilled = list(zip(getattr(trainer, "teacher_layers", ()),
                             getattr(trainer, "student_layers", ()), strict=True))
        return list(self.layers or distilled) or None

    def _check_pairs(self, trainer) -> None:
        """Refuse, before training, the layer paths and ``pair`` the first audit would."""
        from ..features import check_module_paths

        layers = self._audited_pairs(trainer)
        if layers is None:
            return
        if self.layers and getattr(trainer, "teacher", None) is not None:
            check_module_paths(trainer.teacher, [t for t, _ in layers], name="teacher")
        if self.layers and getattr(trainer, "student", None) is not None:
            check_module_paths(trainer.student, [s for _, s in layers], name="student")
        names = [f"{t} -> {s}" for t, s in layers]
        if isinstance(self.pair, int) and self.pair >= len(layers):
            raise fail("pair", f"is {self.pair} but the audited layers hold {len(layers)} "
                       "pair(s)", f"Pass an index below {len(layers)}", self.pair)
        if isinstance(self.pair, str) and self.pair not in names:
            raise fail("pair", f"is not one of the audited pairs {names}", "Pass a position "
                       "(e.g. pair=0) or one of these names", self.pair)

    def _probe_pairs(self, trainer, data: Any) -> None:
        """Read the first batch of ``data`` through both models as the first audit will
        (:func:`~pidkit_distill.audits.stream.model_batches`: eval mode, no gradient, the
        global RNGs and a ``DataLoader``'s generators put back), when the callback audits
        ``layers`` of its own (the trainer has read the pairs it distils already)."""
        teacher = getattr(trainer, "teacher", None)
        if not self.layers or teacher is None:
            return
        from ..batches import BatchFormat, as_loader, peek_batch
        from .stream import model_batches

        config = trainer.config
        fmt = BatchFormat(getattr(config, "input_key", None), getattr(config, "label_key", None))
        size = self.audit_options.get("batch_size", inspect.signature(audit).parameters[
            "batch_size"].default)
        with _global_rng_kept(trainer.device):
            loader = as_loader(data, size, "data", fmt)
            first = (peek_batch(loader, "data") if isinstance(loader, DataLoader)
                     else next(iter(loader), None))
            if first is not None:
                stream = model_batches(teacher, trainer.student, check_pairs(self.layers),
                                       trainer.device, batch_format=fmt)
                next(stream([first]))

    def _curves_path(self, trainer) -> Path:
        """Where the curves of this run's method are written (``out_dir`` is set)."""
        from .curves import _safe

        name = self.method or str(getattr(trainer.config, "method", "run"))
        return self.out_dir / f"{_safe(name)}_curves.json"

    def _refuse_earlier_curves(self, trainer) -> None:
        """A new run (``trainer.epoch == 0``) refuses, before training, an ``out_dir`` holding
        curves of the same method from an earlier run, which its first audit would replace
        (as :func:`pidkit_distill.train.check_run_folder` does for the trainer's own files),
        unless the trainer was told ``overwrite=True``."""
        if (self.out_dir is None or int(getattr(trainer, "epoch", 0) or 0) > 0
                or getattr(trainer.config, "overwrite", False)):
            return
        path = self._curves_path(trainer)
        if path.is_file():
            raise fail("out_dir", f"{self.out_dir} holds the curves of an earlier run "
                       f"({path.name}), which this run's first audit would replace",
                       "Resume that run (resume=its checkpoint), pass overwrite=True to the run "
                       "to replace them, or give AuditCallback another out_dir (or another "
                       "method= name)")

    def _continue_curves(self, trainer) -> None:
        """A resumed run (``trainer.epoch > 0``) continues the curves its ``out_dir`` holds
        (the audits of the epochs before ``trainer.epoch``), so that the first audit after the
        resume does not rewrite them with its own epochs only."""
        start = int(getattr(trainer, "epoch", 0) or 0)
        if self.history is not None or self.out_dir is None or start == 0:
            return
        name = self.method or str(getattr(trainer.config, "method", "run"))
        path = self._curves_path(trainer)
        if path.is_file():
            old = AuditHistory.load(path)
            kept = [(e, r) for e, r in zip(old.epochs, old.reports, strict=True) if e < start]
            self.history = AuditHistory(name, [e for e, _ in kept], [r for _, r in kept])

    def _due(self, trainer, epoch: int) -> bool:
        last = epoch + 1 >= getattr(trainer.config, "epochs", epoch + 1)
        return (epoch + 1) % self.every == 0 or last

    def on_epoch_end(self, trainer, epoch: int, metrics: dict[str, Any]) -> None:
        """Audit when due (on the main process only); record the report, the metrics and the
        files."""
        if not self._due(trainer, epoch) or not getattr(trainer, "is_main", True):
            return
        if self.history is None:
            name = self.method or str(getattr(trainer.config, "method", "run"))
            self.history = AuditHistory(name)
        data = self.data if self.data is not None else trainer.val_data
        if data is None:
            raise fail("data", "is not given and the trainer has no val_data",
                       "Pass AuditCallback(data=...) or distill(..., val_data=...)")
        layers = self._audited_pairs(trainer)
        if isinstance(self.pair, int) and layers and self.pair >= len(layers):
            raise fail("pair", f"is {self.pair} but the audited layers hold {len(layers)} "
                       "pair(s)", f"Pass an index below {len(layers)}", self.pair)
        config = trainer.config
        keys = {"input_key": getattr(config, "input_key", None),
                "label_key": getattr(config, "label_key", None)}
        report = audit(trainer.teacher, trainer.student, data, layers,
                       device=trainer.device, metadata={"epoch": epoch,
                                                        "method": self.history.method},
                       **{**keys, **self.audit_options})
        self.history.append(epoch, report)
        if self.add_metrics:
            first = report[0]
            units = getattr(trainer, "metric_units", None)
            for key in METRIC_QUANTITIES:
                metrics[f"audit_{key}"] = first.values[key]
                if first.chance is not None:
                    metrics[f"audit_{key}_chance"] = first.chance[key]
                if isinstance(units, dict):     # bits (or the unit of the audit's base)
                    units.update({f"audit_{key}": report.unit,
                                  f"audit_{key}_chance": report.unit})
        if self.out_dir is not None:
            self.history.save(self.out_dir, pair=self.pair)
