r"""The nuisance-teacher benchmark (Dissanayake et al., AISTATS 2025, Sec. 5 and Fig. 5) on data
that ships offline: scikit-learn's digits and MNIST-1D.

A small student learns from few labels with one of seven objectives (no distillation, KD,
FitNets, VID, TED-style, RID, the Gaussian PID regularizer) and one of four frozen teachers:

- ``trained``: the teacher architecture trained on the full training split;
- ``untrained``: the same architecture, randomly initialised and never trained (the paper's
  nuisance teacher);
- ``nuisance``: the trained teacher with extra channels :math:`G` appended to every distilled
  layer, :math:`T = (Z, G)`, where :math:`G = s \tanh(W x)` are fixed random features of the
  input at a large amplitude :math:`s` (:class:`pidkit_distill.models.NuisanceTeacher`);
- ``relabelled``: the architecture trained on a *different labelling* of the same inputs, the
  deciles of a random projection :math:`u^\top x` with :math:`u` orthogonal to every class mean
  (so :math:`\mathbb E[u^\top x \mid Y]` does not depend on :math:`Y`;
  :func:`nuisance.teachers.unrelated_labels`).

The student sees ``labels_per_class`` labelled inputs per class and, by default, a further
pool of training inputs *without labels* (:func:`pidkit_distill.data.semi_supervised`): the
teacher can be queried on any input, labels are the scarce part. Unlabelled inputs enter the
teacher-matching terms only (KD, FitNets, VID, TED, RID; the PID regularizer needs labels).

Every student run uses the package's trainer (:func:`pidkit_distill.distill`) and losses; the
audits use :func:`pidkit_distill.audit` (the paper's estimator: L2-normalise, PCA 10,
KMeans 10, exact BROJA, in nats) through :class:`pidkit_distill.AuditCallback`.
Outputs: a table of test accuracy (mean, standard deviation, 95% t-interval over seeds) per
method and teacher, the teachers' accuracies and audits, the over-training curves (Red, Uni,
I(Y;S) per method) as JSON and PNG, with machine, date, versions and the exact command.

Run it with ``python benchmarks/nuisance_teacher.py`` (``--quick`` for a smoke run; the
CIFAR-10 run for a GPU is ``python benchmarks/gpu_cifar10.py``). The experiment is not part of
the installed packages: it uses only their public API (the reusable pieces, the nuisance
teacher :class:`pidkit_distill.NuisanceTeacher`, the replaying
:class:`pidkit_distill.CachedTeacher` and the semi-supervised data helpers of
:mod:`pidkit_distill.data`, live there).

Modules, one job each:

- :mod:`~nuisance.setups`: the :class:`~nuisance.setups.Setup` of each data set, the method
  names and options;
- :mod:`~nuisance.teachers`: students and the four kinds of teacher;
- :mod:`~nuisance.probes`: accuracy, linear probes and feature scale of a model;
- :mod:`~nuisance.jobs`: one teacher or student job, and the worker processes that run them;
- :mod:`~nuisance.runner`: :func:`~nuisance.runner.run_benchmark`, the whole run;
- :mod:`~nuisance.sweeps`: the sweep and the diagnosis that chose the recorded setups;
- :mod:`~nuisance.summary`: mean, standard deviation and t-interval over seeds;
- :mod:`~nuisance.report`: the JSON, Markdown and PNG result files.

Scripts import it as ``nuisance`` with ``benchmarks/`` on ``sys.path`` (Python puts a script's
folder there), like ``_common``.
"""
