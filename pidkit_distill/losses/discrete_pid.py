r"""An exact discrete PID regulariser: maximise the BROJA redundancy
:math:`\mathrm{Red}(Y: C_T, C_S)` of the label and *soft codes* of the teacher's and the
student's features, solved exactly by :func:`pidkit.broja` (torch, envelope theorem).

What it optimises. For each layer pair the features are average-pooled over space to vectors
(as the ``pid`` regulariser does) and L2-normalised (as the paper does before its KMeans), so
every squared distance below lies in :math:`[0, 4]` and the temperature does not depend on the
features' units. The teacher vector :math:`t` is softly assigned to a *fixed* codebook
:math:`c_1, \dots, c_K` (unit-norm KMeans centroids of teacher features, see
:meth:`DiscretePIDLoss.fit_codebook`), the student vector :math:`s` through a *learned* linear
adapter :math:`A` into the teacher's space and the same (tied) codebook, or a learned one
(``student_codebook="learned"``):

.. math::

    q_t(k) = \mathrm{softmax}_k\big(-\lVert \hat t - c_k \rVert^2 / \tau\big),\qquad
    q_s(k) = \mathrm{softmax}_k\big(-\lVert \widehat{A s} - c_k \rVert^2 / \tau\big),

with :math:`\hat x = x / \lVert x \rVert`. The soft joint table of the labelled samples of a
batch is :math:`b(y, i, j) = \sum_n [y_n = y]\, q_t^{(n)}(i)\, q_s^{(n)}(j)` (summed over the
data-parallel processes with :func:`~pidkit_distill.losses.sum_across_processes`), and the pmf
handed to BROJA is a moving average of these soft counts,

.. math::

    p = \frac{m\, \bar E + b}{m\, \lVert \bar E \rVert_1 + \lVert b \rVert_1},
    \qquad E \leftarrow m E + b \ \text{(after the step, training mode only)},

where :math:`\bar E` is the stored table *detached*: the gradient flows through the current
batch only (earlier batches' features came from earlier parameters and are gone). Why: a
``10 x 10 x 10`` table has 1,000 cells and one batch of 128 samples cannot fill it; the
plug-in redundancy of one batch is then mostly small-sample bias (every code pair looks
predictive of Y), while the average over about :math:`1/(1-m)` batches (``momentum=0.9``: the
last ~10 batches) is a far steadier estimate. The price: the gradient is that of the smoothed
table, about :math:`(1 - m)` times the gradient a table of this batch alone would give, so
``beta`` is read on that scale. The student's loss is the paper's objective,

.. math::

    L = \mathrm{CE}(Y, \hat Y) - \beta \sum_{\text{pairs}} \mathrm{Red}(Y: C_T, C_S)
    \ \text{(nats)},

raising :math:`\mathrm{Red}` being the same as lowering :math:`\mathrm{Uni}(Y: C_T \setminus
C_S)`, since the teacher is frozen and :math:`I(Y; C_T)` does not depend on the student.

Unlabelled samples (``unlabelled="impute"``, the default). Semi-supervised distillation has
inputs without labels (:data:`~pidkit_distill.losses.UNLABELLED`), and the table needs Y.
``"ignore"`` counts labelled samples only, so the regulariser sees no more data than the
student's cross-entropy. ``"impute"`` completes the missing labels through the teacher's
code: an unlabelled sample adds

.. math::

    b(y, i, j) \mathrel{+}= \hat p(y \mid i)\, q_t^{(n)}(i)\, q_s^{(n)}(j),\qquad
    \hat p(y \mid i) = \frac{c(y, i) + \pi(y)}{c(i) + 1},

with :math:`c(y, i)` the running soft counts of labelled samples per label and teacher code
(same ``momentum``, summed over processes) and :math:`\pi` their label marginal
(:func:`label_posterior`): the model is that, given the teacher's code, the label of an
unlabelled input is distributed as that of the labelled inputs with the same code (Y
depends on the input only through :math:`C_T`; labels missing at random). For these samples
:math:`Y - C_T - C_S` is a Markov chain, so raising Red raises the information the student's
code carries about the teacher's *label-relevant* code: a code whose labelled samples have
mixed labels (a nuisance direction, an untrained or relabelled teacher) has a flat posterior
and adds almost nothing, while a trained teacher's pure codes act as soft pseudo-labels.
Nothing changes when every sample is labelled. Measured (``benchmarks/nuisance_teacher.py``,
digits, 10 labels and 40 unlabelled inputs per class, 5 seeds, *validation split*): trained
teacher 86.7% (``"ignore"``, ``beta=1``), 88.1% (``"impute"``, ``beta=1``), 90.7%
(``beta=3``), 88.0% (``beta=10``) against 85.1% without distillation; under the untrained,
nuisance-channel and relabelled teachers ``beta=3`` gave 86.1, 89.1 and 85.4%, at or above
the baseline (``benchmarks/results/nuisance_sweep_digits_broja.md``). Hence the defaults
``"impute"`` and ``beta=3``; the test-split results are in ``docs/nuisance_benchmark.md``.

The solve. :math:`\mathrm{Red}` comes from :func:`pidkit.broja` on the torch pmf (float64,
``base=e``), with a training budget: certified gap ``tol=1e-4`` bits and at most
``max_iter=20`` interior-point iterations. Why not tighter (measured on a CPU): well-spread
tables certify ``1e-6`` bits in about 7 iterations (30-40 ms), but the tables training drives
toward are nearly deterministic (cells down to :math:`10^{-9}`-:math:`10^{-16}`), where the
solver slows down: on a copy-the-teacher table its gap stalled near :math:`3\cdot10^{-6}` bits
(``tol=1e-6``: all 200 iterations, 0.8 s), and on a ``3 x 4 x 4`` table met in the
hand-written-loop test it needed 204 iterations (3.4 s) to certify ``1e-5`` bits, while after
10 iterations the value was already within :math:`3\cdot10^{-4}` nats and the gradient (the
dual) unchanged to four digits. A solve that stops at ``max_iter`` still returns atoms within
its certified gap (about :math:`10^{-3}` nats there, far below the batch-to-batch noise of the
estimate). Such stops are expected in training, so the loss does not let the solver warn at
every step: the first stop raises one :class:`~pidkit.errors.ConvergenceWarning` per loss
(naming the gap, ``max_iter`` and what to change), and every step logs the largest certified
gap of its last solve as the part ``"certified_gap"`` (nats), so the metrics show how exact
each epoch's values were. Raise ``max_iter`` for exact values.
Its gradient with respect to the pmf is the (best) dual point (envelope theorem), so
backpropagation does not go through the solver's iterations. Pairs with
the same table shape share one batched solve (``batch=True``); others get one call each.

Warm starts (added with issue 15). Consecutive tables differ little, so each solve starts
from the previous one (``pidkit.broja(..., warm_start=)``; the state is kept per loss for its
batch of tables, and saved in the trainer's checkpoints with the lagged duals
(:meth:`DiscretePIDLoss.run_state`), so that a resumed run makes the solves of an uninterrupted
one; the first solve after loading a bare state dict, a codebook fit or a move to another
device is cold). When the previous solution, refitted to the new table,
already certifies ``tol`` no iteration runs (about 2 ms with backward for one ``10 x 10 x 10``
table on a CPU, against 11-15 ms cold); otherwise the interior-point iteration starts from it,
re-centred (``docs/broja.md``, "Warm starts"). Values are those of a cold solve within the
certified gaps; the gradient is the dual point of the best lower bound (the previous solve's
when no iteration ran, equal to the new one to first order in the table's step).

Fewer solves (``solve_every=k``). The solve is the costly, host-reading part. Since
:math:`f^*(P) = \max_{(\lambda,\mu)\ \text{feasible}} \sum_{y,t,s} P(y,t,s)(\lambda_{yt} +
\mu_{ys})` (its feasible set depends on the support only, and soft tables have full support),
the dual of the last solve gives :math:`f^*(p) \ge \langle \lambda + \mu, p \rangle` for later
tables, and

.. math::

    \widetilde{\mathrm{Red}}(p) = I_p(Y;T) - H_p(Y \mid S) - \langle \lambda + \mu, p\rangle
    + c \ \ge\ \mathrm{Red}(p) - c,

with :math:`c` the constant that makes it equal to the solved value at the solved table, where
its gradient is the exact envelope gradient. With ``solve_every=k > 1`` training steps solve
every k-th step (refreshing :math:`\lambda + \mu` and :math:`c`) and use
:math:`\widetilde{\mathrm{Red}}` in between: no solve and no host read in those steps, an
optimistic (upper-bound) value that is exact to first order near the last solve. The
default ``k = 1`` solves on every step. The lagged duals are not saved in checkpoints (the
first step after loading solves).

Zero-probability cells. Soft assignments are positive, but a class absent from the batch and
from the running table, or codes whose weight underflows (a small ``tau``), leave empty cells.
The solver masks its duals there and entropies use ``0 log 0 = 0``, so gradients stay finite;
a table with no mass at all (no labelled sample yet) is replaced by the uniform table, whose
redundancy is 0 (chosen on the device with ``torch.where``).

Non-finite batches. A NaN or inf feature (an overflow under mixed precision) makes the batch's
soft counts non-finite. The running tables then keep their old values
(:func:`~pidkit_distill.losses.base.running_sum`, one device-side flag for all pairs), the
solver is handed the uniform table in place of the non-finite one (so it raises nothing and
its warm start stays usable), and the step's redundancy is made NaN again by adding
:math:`0 \cdot \sum p` of the non-finite table, which also gives NaN gradients: the step's
loss and gradients are non-finite, as they are for the other losses, so a ``GradScaler``
skips the step, and the next batches see the state of before. With ``solve_every=k`` the
lagged duals of such a solve are replaced by the previous ones (when there are none yet, the
steps up to the next solve are non-finite too).

Host synchronisation (honest accounting). Everything this module does in a step stays on the
device, *but the default BROJA solve does not*: :func:`pidkit.broja` validates the pmf on the
host and its interior-point driver checks convergence, picks the items still open with boolean
masks and runs a line search with a host-side stopping rule, every iteration (the first count,
on the ``10 x 10 x 10`` table of a digits student with ``codes=10`` and 5 iterations, was 684
events, all in :mod:`pidkit.discrete.broja`; a warm-started step whose previous solution
already certifies makes a handful). Two ways out: ``solve_every=k`` solves in one step out of
k, and ``iterations=N`` runs the solver's fixed-iteration mode (``pidkit.broja(...,
iterations=N)``: N predictor-corrector iterations on the whole batch, convergence decided per
table on the device, no crossover), which makes **no** host read in a step (tested with
:func:`pidkit_distill.sync_check.count_host_syncs`); its certified gap is logged on the device
as ``certified_gap`` and nothing warns when a solve ends above ``tol``. With warm starts a
few iterations per step keep the gap near :math:`10^{-8}` bits on slowly moving tables; on
the CPU the default warm path is faster (a fixed iteration costs about 1.3 default ones, and
frozen tables still pay for it), so the mode is for GPUs, where every read stalls the device.
The one-time codebook fit (:meth:`DiscretePIDLoss.fit_codebook`, or the lazy fit on the first
batch) also reads the host, once.

References
----------
P. Dissanayake, F. Hamman, B. Halder, I. Sucholutsky, Q. Zhang, S. Dutta, "Quantifying
Knowledge Distillation Using Partial Information Decomposition", AISTATS 2025.
N. Bertschinger, J. Rauh, E. Olbrich, J. Jost, N. Ay, "Quantifying unique information",
Entropy 16, 2161 (2014).

Examples
--------
>>> import torch
>>> loss = DiscretePIDLoss([(6,)], [(4,)], num_classes=3, codes=3, seed=0)
>>> y = torch.arange(30) % 3
>>> t = torch.randn(30, 6) + 3 * torch.nn.functional.one_hot(y, 6)
>>> batch = Batch(y=y, student_logits=torch.zeros(30, 3), teacher_features=[t],
...               student_features=[torch.randn(30, 4)])
>>> value, parts = loss.student_loss(batch)     # fits the codebook on this first batch
>>> sorted(parts)
['ce', 'certified_gap', 'redundancy']
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import distributed as dist
from torch import nn
from torch.nn import functional as F

import pidkit
from pidkit.discrete.broja import WarmStart
from pidkit.errors import ConvergenceWarning, caller_stacklevel
from pidkit.validation import check_choice, check_int, check_positive, fail

from .base import (
    Batch,
    DistillLoss,
    Parts,
    Shape,
    _returned,
    check_batch,
    check_labels,
    check_momentum,
    cross_entropy,
    labelled_mask,
    note_state_without_imputation,
    register_method,
    running_sum,
    sum_across_processes,
)
from .filters import SpatialAlign

__all__ = ["DiscretePIDLoss", "kmeans_codebook", "soft_assign", "soft_joint_counts",
           "label_posterior", "discrete_redundancy", "DEFAULT_TOL_BITS", "DEFAULT_MAX_ITER"]

#: Certified gap of the BROJA solve in training, in bits (module notes).
DEFAULT_TOL_BITS = 1e-4
#: Interior-point iterations per solve in training (module notes).
DEFAULT_MAX_ITER = 20


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm (a zero row stays zero; no division by 0)."""
    return F.normalize(x, dim=-1, eps=1e-12)


def kmeans_codebook(x: torch.Tensor, k: int, *, seed: int = 0, iters: int = 50) -> torch.Tensor:
    r"""``k`` unit-norm centroids of the L2-normalised rows of ``x`` ``(N, D)``: spherical
    KMeans, seeded k-means++ start and at most ``iters`` Lloyd steps, in float64 on the CPU.

    One-time fit, run outside training steps: it reads the host (the sampling of the start and
    the stopping test). The rows are sorted lexicographically first, so the codebook depends on
    the set of rows, not on their order (shuffled loaders, data-parallel shards gathered in
    rank order). With fewer distinct rows than ``k`` some centroids repeat (the soft
    assignment then splits their mass evenly, which adds nothing to any information). Returns a
    float64 CPU tensor ``(k, D)``.
    """
    x = _unit(x.detach().double().cpu().reshape(x.shape[0], -1))
    n = x.shape[0]
    if n == 0:
        raise fail("teacher_features", "has no sample", "Fit the codebook on at least one "
                   "batch of teacher features")
    x = x[torch.from_numpy(np.lexsort(x.numpy().T[::-1]))]
    g = torch.Generator().manual_seed(int(seed))
    centroids = [x[int(torch.randint(n, (1,), generator=g))]]
    for _ in range(1, k):
        d2 = torch.cdist(x, torch.stack(centroids)).pow(2).min(dim=1).values
        weights = d2 if float(d2.sum()) > 0 else torch.ones(n, dtype=x.dtype)
        centroids.append(x[int(torch.multinomial(weights, 1, generator=g))])
    c = torch.stack(centroids)
    for _ in range(iters):
        assign = torch.cdist(x, c).argmin(dim=1)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)
        new = torch.where(counts[:, None] > 0, _unit(sums), c)  # empty cluster: kept
        if torch.equal(new, c):
            break
        c = new
    return c


def _gathered(x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N_r, D)`` of every data-parallel process, concatenated in rank order (``x``
    itself in one process); the row counts may differ between processes."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return x
    parts: list[torch.Tensor | None] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, x.detach().cpu())
    return torch.cat(parts)


def soft_assign(z: torch.Tensor, codebook: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Soft codes :math:`q(k) = \mathrm{softmax}_k(-\lVert \hat z - \hat c_k\rVert^2/\tau)` of
    the rows of ``z`` ``(N, D)`` for a codebook ``(K, D)`` (both L2-normalised first), in
    float64: ``(N, K)``. Squared distances of unit vectors lie in ``[0, 4]``."""
    z, c = _unit(z.double()), _unit(codebook.double())
    d2 = (2.0 - 2.0 * z @ c.T).clamp(min=0.0)
    return torch.softmax(-d2 / tau, dim=1)


def soft_joint_counts(y: torch.Tensor, q_t: torch.Tensor, q_s: torch.Tensor,
                      num_classes: int) -> torch.Tensor:
    r"""Soft counts :math:`b(y, i, j) = \sum_n [y_n = y]\, q_t^{(n)}(i)\, q_s^{(n)}(j)`
    ``(num_classes, K_t, K_s)`` over the labelled samples (an ``UNLABELLED`` label matches no
    class: weight 0, no gather). Sums to the number of labelled samples."""
    onehot = (y[:, None] == torch.arange(num_classes, device=y.device)).to(q_t.dtype)
    return torch.einsum("ny,ni,nj->yij", onehot, q_t, q_s)


def label_posterior(label_codes: torch.Tensor) -> torch.Tensor:
    r"""The label posterior :math:`\hat p(y \mid i)` ``(num_classes, K)`` of the teacher's codes
    from soft counts :math:`c(y, i)` of labelled samples, with one pseudo-sample per code
    spread over the labels by their marginal :math:`\pi(y) = c(y) / c`:

    .. math::

        \hat p(y \mid i) = \frac{c(y, i) + \pi(y)}{c(i) + 1},

    so a code no labelled sample has reached predicts the label marginal, and with no labelled
    sample at all :math:`\pi` is uniform. Detached (the counts depend on the frozen teacher and
    the labels only); branch-free, no host read."""
    c = label_codes.detach()
    c_y = c.sum(1)
    total = c_y.sum()
    prior = torch.where(total > 0, c_y / torch.where(total > 0, total, 1.0),
                        torch.full_like(c_y, 1.0 / c_y.numel()))
    return (c + prior[:, None]) / (c.sum(0) + 1.0)


def discrete_redundancy(p: torch.Tensor, *, tol: float = DEFAULT_TOL_BITS,
                        max_iter: int = DEFAULT_MAX_ITER) -> torch.Tensor:
    r"""BROJA :math:`\mathrm{Red}(Y: T, S)` in nats of a batch of non-negative tables
    ``p[b, y, t, s]`` (normalised here; differentiable through :func:`pidkit.broja`'s envelope
    gradient). An all-zero table is replaced by the uniform one (redundancy 0), branch-free.
    ``tol``: certified gap in bits. Returns ``(B,)`` in ``p``'s dtype."""
    return _broja(p, tol, max_iter).redundancy


def _broja(p: torch.Tensor, tol: float, max_iter: int, warm_start=None,
           iterations: int | None = None) -> pidkit.PIDResult:
    """The :func:`pidkit.broja` result of :func:`discrete_redundancy` (nats), started from
    ``warm_start`` (a previous solve's ``solver.state`` for tables of the same shape), with
    ``iterations`` fixed iterations if given."""
    p = p.double()
    total = p.sum(dim=(1, 2, 3), keepdim=True)
    empty = total <= 0
    p = torch.where(empty, torch.ones_like(p), p) / torch.where(empty, p[0].numel(), total)
    return pidkit.broja(p, base=math.e, tol=tol, max_iter=max_iter, batch=True,
                        normalize=True, warm_start=warm_start, iterations=iterations)


def _entropy(p: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """:math:`-\\sum p \\ln p` over ``dims`` (nats), ``0 log 0 = 0`` with finite gradients."""
    pos = p > 0
    return -torch.where(pos, p * torch.log(torch.where(pos, p, 1.0)), 0.0).sum(dims)


def _info_part(p: torch.Tensor) -> torch.Tensor:
    r""":math:`\Phi(p) = I(Y;T) - H(Y \mid S)` in nats of a normalised table ``p[y, t, s]``:
    the part of :math:`\mathrm{Red} = \Phi - f^*(p)` that needs no solve."""
    p_yt, p_ys = p.sum(2), p.sum(1)
    i_t = _entropy(p_yt.sum(1), (0,)) + _entropy(p_yt.sum(0), (0,)) - _entropy(p_yt, (0, 1))
    return i_t - (_entropy(p_ys, (0, 1)) - _entropy(p_ys.sum(0), (0,)))


def _lagged_duals(tables: Sequence[torch.Tensor], reds: Sequence[torch.Tensor]
                  ) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    r"""``(g, c)`` per pair with :math:`\Phi(p) - \langle g, p\rangle + c` equal to the solved
    redundancy at the solved table and with its gradient there (module notes): ``g`` is the
    solve's dual :math:`\lambda_{yt} + \mu_{ys}` up to a constant (which only shifts ``c`` on
    tables that sum to 1). None when the tables carry no gradient."""
    if not all(p.requires_grad for p in tables):
        return None
    grads = torch.autograd.grad(sum(reds), list(tables), retain_graph=True)
    out = []
    for p, red, grad in zip(tables, reds, grads, strict=True):
        with torch.enable_grad():
            leaf = p.detach().requires_grad_(True)
            (d_phi,) = torch.autograd.grad(_info_part(leaf), leaf)
        g = (d_phi - grad).detach()
        c = (red - _info_part(p) + (g * p).sum()).detach()
        out.append((g, c))
    return out


class DiscretePIDLoss(DistillLoss):
    """CE minus ``beta`` times the exact BROJA redundancy of soft codes, per layer pair (module
    docstring).

    Parameters
    ----------
    teacher_shapes, student_shapes : sequence of tuple
    num_classes : int
    beta : float, default 3
        Weight of the redundancy term (nats); the default was chosen on a validation split
        (module notes, "Unlabelled samples").
    codes : int, default 10
        Codebook size :math:`K` (both sides); the table has ``num_classes * K * K`` cells and the
        solve's cost grows with it.
    tau : float, default 0.1
        Temperature of the soft assignments, on squared distances of unit vectors (in
        ``[0, 4]``): ``0.1`` puts most of a sample's mass on its nearest one or two codes.
    momentum : float in [0, 1), default 0.9
        Weight :math:`m` of the running table (module notes); 0 uses the batch alone.
    student_codebook : {"tied", "learned"}
        ``"tied"``: the student's adapter maps into the teacher's space and uses the teacher's
        fixed codebook; ``"learned"``: a trainable codebook, initialised from the teacher's.
    tol : float, default 1e-4
        Certified gap of each BROJA solve, in bits (module notes).
    max_iter : int, default 20
        Interior-point iterations per solve.
    seed : int
        Seed of the KMeans start.
    kmeans_iters : int
        Lloyd steps of the codebook fit.
    solve_every : int, default 1
        Solve BROJA on every training step (1), or on every k-th one and use the lagged-dual
        surrogate in between (module notes).
    iterations : int, optional
        Solve with exactly this many interior-point iterations and no host read
        (``pidkit.broja(..., iterations=)``, for GPU training; module notes, "Host
        synchronisation"). ``max_iter`` is then unused; the logged ``certified_gap`` stays on
        the device, and nothing warns when a solve ends above ``tol``.
    unlabelled : {"impute", "ignore"}, default "impute"
        How samples labelled :data:`~pidkit_distill.losses.UNLABELLED` enter the table:
        with their label imputed from the teacher's code (:func:`label_posterior`), or not at
        all (module notes, "Unlabelled samples"). Identical when every sample is labelled.
    """

    def __init__(self, teacher_shapes: Sequence[Shape], student_shapes: Sequence[Shape],
                 num_classes: int, beta: float = 3.0, codes: int = 10, tau: float = 0.1,
                 momentum: float = 0.9, student_codebook: str = "tied",
                 tol: float = DEFAULT_TOL_BITS, max_iter: int = DEFAULT_MAX_ITER,
                 seed: int = 0, kmeans_iters: int = 50, solve_every: int = 1,
                 iterations: int | None = None, unlabelled: str = "impute"):
        super().__init__()
        self.record_shapes(teacher_shapes, student_shapes)
        self.num_classes = check_int(num_classes, "num_classes", 2)
        self.beta = check_positive(beta, "beta", allow_zero=True)
        self.codes = check_int(codes, "codes", 2)
        self.tau = check_positive(tau, "tau")  # on squared unit distances
        self.momentum = check_momentum(momentum)
        self.student_codebook = check_choice(student_codebook, "student_codebook",
                                             ("tied", "learned"))
        self.unlabelled = check_choice(unlabelled, "unlabelled", ("ignore", "impute"))
        self.tol = check_positive(tol, "tol")
        self.max_iter = check_int(max_iter, "max_iter", 1)
        self.seed = check_int(seed, "seed", 0)
        self.kmeans_iters = check_int(kmeans_iters, "kmeans_iters", 1)
        self.aligns = nn.ModuleList(SpatialAlign(t[:1], s[:1])
                                    for t, s in zip(teacher_shapes, student_shapes, strict=True))
        self.adapters = nn.ModuleList(nn.Linear(s[0], t[0])
                                      for t, s in zip(teacher_shapes, student_shapes,
                                                      strict=True))
        self.student_codebooks = nn.ParameterList(
            nn.Parameter(torch.zeros(self.codes, t[0]))
            for t in (teacher_shapes if self.student_codebook == "learned" else []))
        for i, t in enumerate(teacher_shapes):
            self.register_buffer(f"codebook_{i}", torch.zeros(self.codes, t[0]))
            self.register_buffer(f"ema_counts_{i}", torch.zeros(
                self.num_classes, self.codes, self.codes, dtype=torch.float64))
            if self.unlabelled == "impute":
                self.register_buffer(f"ema_label_codes_{i}", torch.zeros(
                    self.num_classes, self.codes, dtype=torch.float64))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self._fitted_cache: bool | None = None  # host copy of ``fitted`` (read once)
        self.num_pairs = len(teacher_shapes)
        self.solve_every = check_int(solve_every, "solve_every", 1)
        self.iterations = None if iterations is None else check_int(iterations, "iterations", 1)
        # lagged duals and the last solve's state (warm start): not in the state dict (a
        # loaded state dict starts cold), in the trainer's checkpoints (run_state)
        self._calls, self._duals = 0, None
        self._warm = None
        self._warned_stop = False  # whether a solver stop was warned (once per loss)
        self._gap = torch.zeros(())  # largest certified gap of the last solve (nats)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        self._fitted_cache = None  # a loaded checkpoint says itself whether it was fitted
        self._calls, self._duals, self._warm = 0, None, None
        if self.unlabelled == "impute":
            note_state_without_imputation(state_dict, prefix, "label_codes", error_msgs)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def run_state(self) -> dict[str, Any]:
        """The last solve's warm start, the lagged duals and the step count of
        ``solve_every``, so that a resumed run makes the solves of an uninterrupted one."""
        warm = None if self._warm is None else [self._warm.lam, self._warm.mu, self._warm.q]
        duals = None if self._duals is None else [list(d) for d in self._duals]
        return {"warm": warm, "duals": duals, "calls": self._calls}

    def load_run_state(self, state: dict[str, Any] | None) -> None:
        """Restore a :meth:`run_state`, on this loss's device (``None``: start cold)."""
        if state is None:
            return
        device = self.codebook(0).device
        if state["warm"] is not None:
            self._warm = WarmStart(*(x.to(device) for x in state["warm"]))
        if state["duals"] is not None:
            self._duals = [tuple(x.to(device) for x in d) for d in state["duals"]]
        self._calls = int(state["calls"])

    def codebook(self, i: int) -> torch.Tensor:
        """The teacher's codebook of pair ``i`` ``(K, C_T)`` (unit rows once fitted)."""
        return getattr(self, f"codebook_{i}")

    @torch.no_grad()
    def fit_codebook(self, teacher_features: Sequence[torch.Tensor]) -> None:
        """Fit the teacher codebooks: spherical KMeans (:func:`kmeans_codebook`, seeded) on
        the pooled teacher features of each pair, e.g. a few batches concatenated; resets the
        running tables. Reads the host (a one-time fit, not a training step). Without this
        call the first batch the loss sees is used. Under data parallelism every process
        gathers the features of all processes and fits on them (the fit does not depend on
        row order), so each holds the codebooks one process would fit on the global batch."""
        if len(teacher_features) != self.num_pairs:
            raise fail("teacher_features", f"has {len(teacher_features)} entries for "
                       f"{self.num_pairs} layer pairs", "Give one tensor per layer pair")
        for i, t in enumerate(teacher_features):
            book = self.codebook(i)
            c = kmeans_codebook(_gathered(self.aligns[i](t)), self.codes, seed=self.seed + i,
                                iters=self.kmeans_iters)
            book.copy_(c.to(book.dtype))
            if self.student_codebook == "learned":
                self.student_codebooks[i].copy_(book)
            getattr(self, f"ema_counts_{i}").zero_()
            if self.unlabelled == "impute":
                getattr(self, f"ema_label_codes_{i}").zero_()
        self._calls, self._duals, self._warm = 0, None, None
        self.fitted.fill_(True)
        self._fitted_cache = True

    def _ensure_fitted(self, batch: Batch) -> None:
        if self._fitted_cache is None:
            self._fitted_cache = bool(self.fitted)  # one host read, the first time only
        if not self._fitted_cache:
            self.fit_codebook(batch.teacher_features)

    def tables(self, batch: Batch) -> list[torch.Tensor]:
        """The pmf ``(num_classes, K, K)`` handed to BROJA for each pair (running average of
        soft counts, gradient through this batch only; module notes), unnormalised when there
        is no mass yet. In training mode with grad enabled the running tables are updated."""
        self._ensure_fitted(batch)
        check_labels(batch.y, "batch.y")
        impute = self.unlabelled == "impute"
        counts = []
        for i, (t, s) in enumerate(zip(batch.teacher_features, batch.student_features,
                                       strict=True)):
            q_t = soft_assign(self.aligns[i](t), self.codebook(i), self.tau)
            book = (self.student_codebooks[i] if self.student_codebook == "learned"
                    else self.codebook(i))
            q_s = soft_assign(self.adapters[i](self.aligns[i](s)), book, self.tau)
            pair = soft_joint_counts(batch.y, q_t, q_s, self.num_classes)
            if impute:  # row num_classes: code-pair counts of the unlabelled samples
                missing = (~labelled_mask(batch.y)).to(q_t.dtype)
                pair = torch.cat([pair, torch.einsum("n,ni,nj->ij", missing, q_t, q_s)[None]])
            counts.append(pair)
        # one collective for all pairs
        joint = sum_across_processes(torch.stack(counts))
        valid = torch.isfinite(joint).all()  # one device-side flag for every pair
        out = []
        update = self.training and torch.is_grad_enabled()
        for i, b in enumerate(joint.unbind()):
            if impute:
                label_codes = running_sum(getattr(self, f"ema_label_codes_{i}"),
                                          b[:-1].sum(2).detach(), self.momentum, update, valid)
                b = b[:-1] + label_posterior(label_codes)[:, :, None] * b[-1]
            counts = running_sum(getattr(self, f"ema_counts_{i}"), b, self.momentum, update,
                                 valid)
            total = counts.sum()
            out.append(counts / torch.where(total > 0, total, 1.0))
        return out

    def redundancies(self, batch: Batch) -> list[torch.Tensor]:
        """:math:`\\mathrm{Red}(Y: C_T, C_S)` in nats per layer pair (float64), differentiable
        in the student's features and this loss's parameters. Every pair's table has the same
        shape ``(num_classes, codes, codes)``, so all pairs share one batched solve. With
        ``solve_every = k > 1``, in training steps only every k-th step solves; the others use
        the lagged-dual surrogate of the last solve (module notes), with no host read."""
        tables = self.tables(batch)
        lagged = self.solve_every > 1 and self.training and torch.is_grad_enabled()
        if lagged and self._duals is not None and self._calls % self.solve_every != 0:
            self._calls += 1
            return [_info_part(p) - (g * p).sum() + c
                    for p, (g, c) in zip(tables, self._duals, strict=True)]
        warm = self._warm if self._warm is not None and (
            self._warm.q.device == tables[0].device) else None
        stacked = torch.stack(tables)
        # a non-finite table is solved as the uniform one (an all-zero table, in _broja)
        finite = torch.isfinite(stacked).flatten(1).all(1)[:, None, None, None]
        stacked = torch.where(finite, stacked, 0.0)
        if self.iterations is not None:  # device-resident: no warning, gap kept on device
            solved = _broja(stacked, self.tol, self.max_iter, warm, iterations=self.iterations)
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                solved = _broja(stacked, self.tol, self.max_iter, warm)
            self._report_stops(caught)
        cert = solved.solver.certificate                       # nats (base e), on the device
        self._gap = (cert.upper - cert.lower).max().detach().float()
        self._warm = solved.solver.state
        # + 0 * sum(p): nothing on a finite table; NaN value and gradients on a non-finite one
        reds = [r + 0.0 * p.sum() for r, p in zip(solved.redundancy.unbind(), tables,
                                                   strict=True)]
        if lagged:
            self._calls += 1
            self._duals = self._keep_finite_duals(_lagged_duals(tables, reds))
        return reds

    def _keep_finite_duals(self, duals: list[tuple[torch.Tensor, torch.Tensor]] | None
                           ) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """``duals``, with the previous lagged duals of a pair in place of non-finite new ones
        (a non-finite batch; chosen on the device, module notes)."""
        if duals is None or self._duals is None:
            return duals
        out = []
        for (g, c), (g_old, c_old) in zip(duals, self._duals, strict=True):
            ok = torch.isfinite(c) & torch.isfinite(g).all()
            out.append((torch.where(ok, g, g_old), torch.where(ok, c, c_old)))
        return out

    def _report_stops(self, caught: list[warnings.WarningMessage]) -> None:
        """Re-raise the solver's warnings other than convergence ones; turn its convergence
        warnings into one warning per loss (module notes)."""
        stops = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
        for w in caught:
            if w not in stops:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if stops and not self._warned_stop:
            self._warned_stop = True
            warnings.warn(f"{type(self).__name__}: a BROJA solve stopped early "
                          f"({stops[0].message}). At the training budget this is expected "
                          "on nearly deterministic tables and is not warned again for this "
                          "loss; the largest certified "
                          "gap of each step is logged as 'certified_gap' (nats). Raise max_iter "
                          "for exact values", ConvergenceWarning,
                          stacklevel=caller_stacklevel())

    def student_loss(self, batch: Batch) -> tuple[torch.Tensor, Parts]:
        check_batch(self, batch)
        ce = cross_entropy(batch.student_logits, batch.y)
        red = sum(self.redundancies(batch))
        return _returned(batch, ce - self.beta * red.to(ce.dtype),
                         {"ce": ce, "redundancy": red, "certified_gap": self._gap})


@register_method("broja")
def _make_broja(teacher_shapes, student_shapes, num_classes, **kwargs) -> DiscretePIDLoss:
    return DiscretePIDLoss(teacher_shapes, student_shapes, num_classes, **kwargs)
