r"""A PID regularizer: maximise the Gaussian redundancy :math:`\mathrm{Red}(Y; f_t(T), f_s(S))`
estimated on each mini-batch with :func:`pidkit.gaussian_pid` (torch backend, autograd).

What it optimises. For each layer pair the features are average-pooled over space to vectors;
the teacher side is projected to ``dim`` coordinates by a fixed (seeded, orthonormal) random
projection :math:`P_t`, the student side by a *learned* linear map :math:`A_s`. With the label
one-hot encoded (last column dropped, so the block is non-singular), the batch correlation
matrix :math:`\hat R` of :math:`(Y, P_t\bar T, A_s\bar S)` over the labelled samples (and
the unlabelled ones with Y imputed, below; plus ``ridge`` times the identity) is treated as
the covariance of a jointly Gaussian triple and

.. math::

    L = \mathrm{CE}(Y, \hat Y) - \beta \sum_{\text{pairs}}
        \mathrm{Red}_{\mathrm{Gauss}}\big(Y; P_t \bar T, A_s \bar S\big)\ \text{(nats)}.

Since the teacher side is frozen, :math:`I(Y; P_t\bar T)` is fixed and raising Red lowers
:math:`\mathrm{Uni}(Y: T \setminus S)`: the student is pushed to carry the teacher's
label-relevant (linear-Gaussian) information, and nothing else. This differs from RID, which
maximises a lower bound on the redundancy through learned filters and a regression residual;
here the PID measure itself (``measure="broja"`` or ``"mmi"``) is the objective, under a
Gaussian approximation of the pooled features.

How it is computed, with no host synchronisation. The covariance comes from weighted
sufficient statistics of the joint vectors :math:`x_n`, with weight :math:`w_n = 1` for a
labelled sample and 0 for an unlabelled one (no boolean gather, whose output size the host
would have to read):

.. math::

    n = \sum_n w_n,\quad s = \sum_n w_n x_n,\quad S = \sum_n w_n x_n x_n^\top,\qquad
    \hat\Sigma = \frac{S - s s^\top / n}{n - 1},\qquad
    \hat R = D^{-1/2}\hat\Sigma D^{-1/2} + rI,\quad D = \mathrm{diag}(\hat\Sigma),

a batch with fewer than 3 labelled samples contributes 0 (chosen by ``torch.where`` on the
device), and the redundancy is computed on the device by
``pidkit.gaussian_pid(..., validate=False)``, which is safe here because :math:`\hat R` is
positive definite by construction (``ridge > 0``: every eigenvalue is at least ``ridge``).
Under data parallelism the statistics are summed over the processes
(:func:`~pidkit_distill.losses.base.sum_across_processes`, in float64), so every process
evaluates the redundancy of the *global* batch (standardised by the global batch's standard
deviations), and the averaged gradients equal those of one process holding the global batch.

Running moments (``momentum``). One batch is a small sample for a correlation matrix of
:math:`(K-1) + 2\,\mathrm{dim}` columns (digits, 10 classes, ``dim=4``: 17 columns), and with
scarce labels it is smaller still (the nuisance benchmark's digits batches hold about 26
labelled samples). Maximising the redundancy of such a matrix fits its sampling noise: at
``beta = 1`` the digits student fell to 62-63% against 86.6% without distillation, under the
trained and the untrained teacher alike (3 seeds). So, as the discrete regulariser does with its
soft counts, the moments are a moving average over batches with the gradient through the
current batch only,

.. math::

    (n, s, S) = m\,\bar E + (n, s, S)_{\text{batch}},\qquad
    E \leftarrow m E + (n, s, S)_{\text{batch}}\ \text{(after the step, training mode only)},

:math:`\bar E` detached (earlier batches' features came from earlier parameters), i.e. the
correlation matrix of all rows seen so far, a row of age :math:`a` batches weighted by
:math:`m^a`: about :math:`1/(1-m)` batches (``momentum=0.9``: ten) enter each estimate. The
gradient is then about :math:`(1-m)` times that of one batch's estimate, which ``beta`` is
read against. Measured on digits (3 seeds, trained / untrained teacher): ``momentum=0.9``
lifted the student from 62 / 63% to 84 / 86% at ``beta=1`` and to 88 / 88% at ``beta=0.3``
(docs/nuisance_benchmark.md). ``momentum=0`` uses the batch alone. The running moments are
buffers (saved in checkpoints) and, like the batch statistics, summed over data-parallel
processes before they enter the average, so every process holds the same ones. A batch whose
statistics are not finite (a NaN or inf feature, an overflow under mixed precision) gives a
non-finite loss for its own step, which a ``GradScaler`` skips, and leaves the running moments
of every pair as they were (:func:`~pidkit_distill.losses.base.running_sum`, chosen on the
device), so one bad batch does not poison the following steps or a checkpoint.

Unlabelled samples (``unlabelled="impute"``, the default). The target needs Y. With
``"ignore"`` the unlabelled samples get weight 0 above, and the regulariser sees no more data
than the student's cross-entropy. With ``"impute"`` their moments enter too, their target
completed by the Gaussian regression of Y on the teacher's block fitted on the labelled
(running) moments, :math:`Y \mid t \sim \mathcal N(a + Bt, R)`: the expected sufficient
statistics of EM's E-step for a Gaussian with a missing block (:func:`imputed_moments`; the
unlabelled rows' moments of :math:`(P_t\bar T, A_s\bar S)` are summed over processes and
kept as running moments like the labelled ones, and the completion is linear in them, so it
is the same on every process). For these rows :math:`Y - P_t\bar T - A_s\bar S` is a Markov
chain: raising Red makes the student carry the part of the teacher's block that predicts Y,
which a teacher block uncorrelated with Y (an untrained or relabelled teacher, a nuisance
direction) does not have. The regression depends on the teacher and the labels only and is
detached. Nothing changes when every sample is labelled. Measured (digits, 10 labels and 40
unlabelled inputs per class, 5 seeds, *validation split*,
``benchmarks/results/nuisance_sweep_digits_pid.md``): at ``beta=0.3`` the imputation moved
the student from 87.5 / 85.6 / 86.9 / 84.2% (trained / untrained / nuisance-channel /
relabelled teacher) to 89.1 / 87.7 / 87.3 / 85.3% (85.1% without distillation); ``beta=1``
and ``3`` were worse under the untrained teacher (84.4, 76.3%). Hence ``"impute"`` with the
same ``beta``.

Bias. The batch (or running) estimate is biased upwards: with features independent of the
label its expectation is positive, and since BROJA's redundancy is at most
:math:`\min(I(Y;A), I(Y;B))`, whose Gaussian plug-in bias is about :math:`d_Y d/(2n)` nats to
first order, it is bounded by :math:`(K-1)\,\mathrm{dim}/(2n)` for :math:`n` labelled rows.
Measured (10 classes, ``dim=4``, 200 draws): 0.150 nats at :math:`n=32`, 0.031 at 128, 0.003 at
1,280 (bound 0.56, 0.14, 0.014). The bias depends on :math:`n` and the block sizes only, not on
the features, so subtracting it would shift the loss without changing its gradient; it is left
in the value and shrinks with the effective sample size of the running moments (about
:math:`n_\text{batch}/(1-m)`, ten batches at ``momentum=0.9``).

Why standardise (units). The Gaussian PID of a covariance does not depend on the units of any
variable, and neither should the regulariser: the student's features have no natural scale (a
learned map, a normalisation layer, a weight decay all rescale them). A ridge :math:`rI` added
to the raw covariance is *absolute*: it is noise of variance ``r`` in every unit system, which
drowns a feature of standard deviation 0.01 and is invisible next to one of standard deviation
100 (scaling the student's features by 0.01 took the redundancy from 0.35 to 0.07 nats). Here
each column is standardised by its own weighted batch standard deviation *before* the ridge, so
``ridge`` is relative to each variable's variance (noise of variance ``r`` times that
variable's variance, the same relative noise in every column) and the value is invariant, up to
rounding, to any positive rescaling of any feature. A ridge :math:`r\,\mathrm{diag}(\hat\Sigma)`
on the raw covariance would give the same value (the Gaussian PID standardises internally), but
not the same guarantee: standardising explicitly also handles, without a host read, the columns
whose variance is zero (a class absent from the batch in the one-hot target, a dead feature),
for which a relative ridge is still zero and the matrix singular.

Constant columns. A column counts as constant when its batch variance is at most
:data:`CONSTANT_RTOL` times its mean square :math:`S_{ii}/n` (its own magnitude: a relative, unit-
free test; a column of zeros is constant too). That is below what the data can resolve: float32
features carry about 7 digits, so a column varying by less than :math:`10^{-6}` of its magnitude
is rounding noise, and the one-pass variance above loses about :math:`n\varepsilon` of
:math:`S_{ii}/n` to cancellation (its computed variance can even be negative). A constant column
carries no information, and its row and column of :math:`\hat R` are set to zero (chosen by
``torch.where`` on the device): it becomes an independent variable of variance ``ridge``, which
adds nothing to any atom, and it gets a zero gradient rather than one of size
:math:`1/\sigma`. Columns whose mean is within :math:`10^{6}` standard deviations of 0 are never
affected, so the value is also invariant to shifting a feature by less than that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

import pidkit
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

__all__ = ["batch_covariance", "weighted_moments", "covariance_from_moments",
           "correlation_from_moments", "redundancy_from_moments", "gaussian_redundancy",
           "imputed_moments", "PIDLoss", "MIN_SAMPLES", "CONSTANT_RTOL"]

#: Fewest labelled samples (over the global batch) for which a batch redundancy is computed.
MIN_SAMPLES = 3
#: A column whose batch variance is at most this times its mean square counts as constant (see
#: the module notes): above float32 rounding noise (:math:`(2^{-24})^2 \approx 4\cdot10^{-15}`)
#: and the cancellation of the one-pass float64 variance for any practical batch.
CONSTANT_RTOL = 1e-12


def weighted_moments(x: torch.Tensor, weights: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Weighted sufficient statistics of the rows of ``x``, in float64:
    :math:`n = \sum_i w_i`, :math:`s = \sum_i w_i x_i`, :math:`S = \sum_i w_i x_i x_i^\top`.

    They add up over batches and processes; :func:`covariance_from_moments` turns them into a
    covariance.

    Parameters
    ----------
    x : Tensor ``(N, D)``
    weights : Tensor ``(N,)``, non-negative (bool or float)

    Returns
    -------
    n : Tensor, 0-d
    s : Tensor ``(D,)``
    S : Tensor ``(D, D)``
    """
    x, w = x.double(), weights.double()
    wx = w[:, None] * x
    return w.sum(), wx.sum(0), x.T @ wx


def covariance_from_moments(n: torch.Tensor, s: torch.Tensor, S: torch.Tensor,
                            ridge: float = 1e-3) -> torch.Tensor:
    r"""Unbiased covariance from :func:`weighted_moments`, plus ``ridge`` times the identity:
    :math:`\hat\Sigma = \frac{1}{n-1}\big(S - s s^\top / n\big) + rI`, symmetrised exactly
    (``(C + C^T) / 2``). Leading axes of ``n``, ``s[..., :]``, ``S[..., :, :]`` are a batch.

    With 0/1 weights this is the usual covariance of the selected rows. The one-pass form loses
    about :math:`(\lVert\bar x\rVert / \sigma)^2` ulps to cancellation (negligible in float64
    for features of moderate mean); it needs :math:`n > 1`. The ridge here is absolute (in the
    features' units); the regulariser uses :func:`correlation_from_moments`, whose ridge is
    relative to each variable's variance.
    """
    n = n[..., None, None]
    cov = (S - s[..., :, None] * s[..., None, :] / n) / (n - 1)
    cov = 0.5 * (cov + cov.mT)
    return cov + ridge * torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)


def correlation_from_moments(n: torch.Tensor, s: torch.Tensor, S: torch.Tensor,
                             ridge: float = 1e-3) -> torch.Tensor:
    r"""Batch correlation matrix from :func:`weighted_moments`, plus ``ridge`` times the
    identity: :math:`\hat R = D^{-1/2}\hat\Sigma D^{-1/2} + rI` with :math:`\hat\Sigma` from
    :func:`covariance_from_moments` (no ridge) and :math:`D` its diagonal, so the result does not
    depend on the units of any column, and ``ridge`` is relative to each variable's variance.

    Differentiable and branch-free (nothing is read on the host). A constant column (variance at
    most :data:`CONSTANT_RTOL` times its mean square :math:`S_{ii}/n`, zeros included) gets a
    zero row and column, so the result stays finite, with finite gradients, and positive
    definite (eigenvalues at least ``ridge``; see the module notes). Leading axes are a batch,
    as for :func:`covariance_from_moments`.
    """
    cov = covariance_from_moments(n, s, S, ridge=0.0)
    var = cov.diagonal(dim1=-2, dim2=-1)
    mean_square = S.diagonal(dim1=-2, dim2=-1) / n[..., None]
    constant = var <= CONSTANT_RTOL * mean_square  # relative to the column itself
    # rsqrt of 1 (not of var) on constant columns, then 0: no inf * 0 in the backward pass
    inv_std = torch.where(constant, 0.0, torch.rsqrt(torch.where(constant, 1.0, var)))
    corr = cov * inv_std[..., :, None] * inv_std[..., None, :]
    corr = 0.5 * (corr + corr.mT)
    return corr + ridge * torch.eye(corr.shape[-1], dtype=corr.dtype, device=corr.device)


def batch_covariance(*blocks: torch.Tensor, ridge: float = 1e-3) -> torch.Tensor:
    r"""Unbiased covariance of the concatenated columns of ``blocks`` (each ``(N, d_i)``), plus
    ``ridge`` times the identity: :math:`\hat\Sigma = \frac{1}{N-1} X_c^\top X_c + rI`, in
    float64 (:func:`covariance_from_moments` with unit weights)."""
    x = torch.cat([b.double() for b in blocks], dim=1)
    return covariance_from_moments(*weighted_moments(x, x.new_ones(x.shape[0])), ridge=ridge)


def one_hot_reduced(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """One-hot labels without the last column ``(N, K-1)`` (the dropped column is implied);
    an ``UNLABELLED`` sample gets a zero row (give it weight 0)."""
    classes = torch.arange(num_classes - 1, device=y.device)
    return (y[:, None] == classes).double()


def imputed_moments(labelled: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                    unlabelled: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                    d_y: int, d_t: int, ridge: float = 1e-3
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Moments :math:`(n, s, S)` of the rows :math:`x = (y, t, u)` of the unlabelled samples,
    their target :math:`y` (``d_y`` columns) imputed from their teacher block :math:`t` (the
    next ``d_t`` columns) by the Gaussian regression fitted on the labelled moments:

    .. math::

        y \mid t \sim \mathcal N(a + B t,\ R),\quad B = C_{yt} (C_{tt} + r\,
        \mathrm{diag}\, C_{tt})^{-1},\quad a = \mu_y - B \mu_t,\quad
        R = C_{yy} - B C_{ty},

        \textstyle\sum \hat y = n_u a + B \sum t,\quad \sum \hat y z^\top = a \sum z^\top
        + B \sum t z^\top,\quad \sum (\hat y \hat y^\top + R) = n_u (a a^\top + R)
        + a (B \textstyle\sum t)^\top + (B \sum t) a^\top + B (\sum t t^\top) B^\top,

    with :math:`C, \mu` the labelled covariance and means and :math:`z = (t, u)` (the expected
    sufficient statistics of the E-step of EM for a Gaussian with a missing block). The
    regression depends on the teacher and the labels only and is detached; the gradient flows
    through the unlabelled rows' student block :math:`u`. With fewer than :data:`MIN_SAMPLES`
    labelled rows the imputed target is independent of the features (:math:`B = 0`,
    :math:`\mu_y` uniform over the classes, :math:`R` its multinomial covariance), so it adds
    nothing to any redundancy. Branch-free; leading axes are not supported (one pair).

    Parameters
    ----------
    labelled : tuple
        :func:`weighted_moments` of the labelled rows ``(y, t, u)``.
    unlabelled : tuple
        :func:`weighted_moments` of the unlabelled rows' ``(t, u)``.
    d_y, d_t : int
        Sizes of the target and teacher blocks.
    ridge : float
        Relative ridge on :math:`C_{tt}`.
    """
    n, s, S = (v.detach() for v in labelled)
    n_u, s_z, S_z = unlabelled
    enough = n >= MIN_SAMPLES
    n_safe = torch.where(enough, n, 1.0)
    mu = s / n_safe
    cov = S / n_safe - mu[:, None] * mu[None, :]
    t_block = slice(d_y, d_y + d_t)
    c_tt = cov[t_block, t_block]
    c_tt = c_tt + ridge * torch.diag(c_tt.diagonal()) + 1e-12 * torch.eye(
        d_t, dtype=cov.dtype, device=cov.device)
    # solve_ex: no error check, so no host read on a GPU (c_tt is positive definite anyway)
    b = torch.linalg.solve_ex(c_tt, cov[t_block, :d_y]).result.mT   # (d_y, d_t)
    r = cov[:d_y, :d_y] - b @ cov[t_block, :d_y]
    uniform = torch.full((d_y,), 1.0 / (d_y + 1), dtype=cov.dtype, device=cov.device)
    mu_y = torch.where(enough, mu[:d_y], uniform)
    b = torch.where(enough, b, 0.0)
    r = torch.where(enough, r, torch.diag(uniform) - uniform[:, None] * uniform[None, :])
    a = mu_y - b @ mu[t_block]
    bt = b @ s_z[:d_t]                                               # B sum t
    y_sum = n_u * a + bt
    yz = a[:, None] * s_z[None, :] + b @ S_z[:d_t]
    yy = n_u * (a[:, None] * a[None, :] + r) + a[:, None] * bt[None, :] + bt[:, None] * a[None, :]
    yy = yy + b @ S_z[:d_t, :d_t] @ b.mT
    total = torch.cat([y_sum, s_z])
    outer = torch.cat([torch.cat([yy, yz], dim=1), torch.cat([yz.mT, S_z], dim=1)], dim=0)
    return n_u, total, outer


def _packed(n: torch.Tensor, s: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """Moments as one flat vector ``[n, s, S]`` (the layout of the running buffers)."""
    return torch.cat([n.reshape(1), s, S.reshape(-1)])


def _unpacked(v: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inverse of :func:`_packed` for ``d`` columns; leading axes of ``v`` are a batch."""
    return v[..., 0], v[..., 1:d + 1], v[..., d + 1:].reshape(*v.shape[:-1], d, d)


def redundancy_from_moments(n: torch.Tensor, s: torch.Tensor, S: torch.Tensor,
                            dims: tuple[int, int, int], measure: str = "broja",
                            ridge: float = 1e-3) -> torch.Tensor:
    r"""Gaussian redundancy :math:`\mathrm{Red}(M; X, Y)` in nats of the ridged correlation
    matrix (:func:`correlation_from_moments`) of :func:`weighted_moments` (columns ordered
    target, source 1, source 2 with sizes ``dims``); 0 when :math:`n <` :data:`MIN_SAMPLES`.
    Invariant to the units of every column. Differentiable, computed on the device with nothing
    read on the host; leading axes of the moments are a batch (one Gaussian PID call for all).

    The guard is branch-free: below :data:`MIN_SAMPLES` the covariance is formed with
    :math:`n` replaced by :data:`MIN_SAMPLES`, which keeps the covariance positive
    semi-definite (:math:`S - ss^\top/m \succeq S - ss^\top/n \succeq 0` for :math:`m \ge n`),
    the correlation matrix positive definite (the ridge) and every gradient finite, and the
    result is replaced by 0 with ``torch.where``.

    Parameters
    ----------
    n, s, S : Tensor ``(...)``, ``(..., D)``, ``(..., D, D)``
        From :func:`weighted_moments` (possibly summed over batches or processes).
    dims : tuple of int
    measure : {"broja", "mmi"}
    ridge : float, > 0
        Added to the diagonal of the correlation matrix (relative to each variable's variance).
    """
    cov = correlation_from_moments(n.clamp(min=MIN_SAMPLES), s, S, ridge)
    red = pidkit.gaussian_pid(cov, dims=dims, measure=measure, base=math.e,
                              validate=False).redundancy
    return torch.where(n >= MIN_SAMPLES, red, torch.zeros_like(red))


def _check_ridge(ridge: float) -> float:
    ridge = check_positive(ridge, "ridge", allow_zero=True)
    if not ridge > 0:
        raise fail("ridge", "must be positive", "It keeps the batch correlation matrix "
                   "positive definite, which the unvalidated Gaussian PID relies on; use e.g. "
                   "1e-3 (relative to each variable's variance)", ridge)
    return ridge


def gaussian_redundancy(y: torch.Tensor, a: torch.Tensor, b: torch.Tensor, num_classes: int,
                        measure: str = "broja", ridge: float = 1e-3) -> torch.Tensor:
    r"""Batch estimate of :math:`\mathrm{Red}(Y; A, B)` in nats over the labelled samples of
    this batch (this process only), differentiable in ``a``, ``b``; 0 with fewer than
    :data:`MIN_SAMPLES` labelled samples.

    Parameters
    ----------
    y : Tensor ``(N,)`` int64 labels in ``[0, num_classes)`` (``UNLABELLED`` samples are left
        out; the values are not checked: :func:`~pidkit_distill.losses.base.check_labels`).
    a, b : Tensor ``(N, d_a)``, ``(N, d_b)``
    num_classes : int
    measure : {"broja", "mmi"}
    ridge : float, > 0
        Added to the diagonal of the batch correlation matrix (relative to each variable's
        variance); the value does not depend on the units of ``a`` or ``b``.
    """
    measure = check_choice(measure, "measure", ("broja", "mmi"))
    x = torch.cat([one_hot_reduced(check_labels(y), num_classes), a.double(), b.double()], dim=1)
    dims = (num_classes - 1, a.shape[1], b.shape[1])
    return redundancy_from_moments(*weighted_moments(x, labelled_mask(y)), dims, measure,
                                   _check_ridge(ridge))


class PIDLoss(DistillLoss):
    """CE minus ``beta`` times the batch Gaussian redundancy per layer pair (module docstring).

    Parameters
    ----------
    teacher_shapes, student_shapes : sequence of tuple
    num_classes : int
    beta : float, default 0.3
        Weight of the redundancy term (nats; read with ``momentum``, module notes).
    dim : int
        Coordinates kept on each side (teacher: random orthonormal projection; student:
        learned linear map).
    measure : {"broja", "mmi"}
    ridge : float, > 0
        Relative ridge on the batch correlation matrix (module notes).
    seed : int
        Seed of the teacher-side projection.
    momentum : float in [0, 1), default 0.9
        Weight :math:`m` of the running moments (module notes); 0 uses each batch alone.
    unlabelled : {"impute", "ignore"}, default "impute"
        Samples labelled :data:`~pidkit_distill.losses.UNLABELLED`: left out, or entered with
        their target imputed from the teacher's block by the Gaussian regression of the
        labelled moments (:func:`imputed_moments`; module notes, "Unlabelled samples").
        Identical when every sample is labelled.
    """

    def __init__(self, teacher_shapes: Sequence[Shape], student_shapes: Sequence[Shape],
                 num_classes: int, beta: float = 0.3, dim: int = 4, measure: str = "broja",
                 ridge: float = 1e-3, seed: int = 0, momentum: float = 0.9,
                 unlabelled: str = "impute"):
        super().__init__()
        self.record_shapes(teacher_shapes, student_shapes)
        self.num_classes = check_int(num_classes, "num_classes", 2)
        self.beta = check_positive(beta, "beta", allow_zero=True)
        dim, seed = check_int(dim, "dim", 1), check_int(seed, "seed", 0)
        self.ridge = _check_ridge(ridge)
        self.measure = check_choice(measure, "measure", ("broja", "mmi"))
        self.aligns = nn.ModuleList(SpatialAlign(t[:1], s[:1])
                                    for t, s in zip(teacher_shapes, student_shapes, strict=True))
        g = torch.Generator().manual_seed(seed)
        for i, t in enumerate(teacher_shapes):
            q, _ = torch.linalg.qr(torch.randn(t[0], max(dim, t[0]), generator=g))
            self.register_buffer(f"teacher_projection_{i}", q[:, :min(dim, t[0])].contiguous())
        self.adapters = nn.ModuleList(nn.Linear(s[0], min(dim, t[0]))
                                      for t, s in zip(teacher_shapes, student_shapes,
                                                      strict=True))
        self.momentum = check_momentum(momentum)
        self.unlabelled = check_choice(unlabelled, "unlabelled", ("ignore", "impute"))
        for i, t in enumerate(teacher_shapes):
            e = 2 * min(dim, t[0])
            d = num_classes - 1 + e
            self.register_buffer(f"ema_moments_{i}", torch.zeros(1 + d + d * d,
                                                                 dtype=torch.float64))
            if self.unlabelled == "impute":
                self.register_buffer(f"ema_unlabelled_{i}", torch.zeros(
                    1 + e + e * e, dtype=torch.float64))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        if self.unlabelled == "impute":
            note_state_without_imputation(state_dict, prefix, "unlabelled", error_msgs)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def redundancies(self, batch: Batch) -> list[torch.Tensor]:
        """Batch redundancy (nats) per layer pair over the labelled samples (it needs Y), and the
        unlabelled ones with Y imputed (``unlabelled="impute"``); 0 with fewer than
        :data:`MIN_SAMPLES` labelled samples. Under data parallelism (grad mode) the
        statistics of all processes are summed first (one collective for all pairs), so the
        value is the global batch's on every process. Pairs with the same block sizes share
        one batched Gaussian PID call.

        ``batch.y`` must be 1-D integer labels in ``[0, num_classes)`` or ``UNLABELLED``; the
        dtype and shape are checked, the values are not (no host read in a step: see
        :func:`~pidkit_distill.losses.base.check_labels`)."""
        target = one_hot_reduced(check_labels(batch.y, "batch.y"), self.num_classes)
        weights = labelled_mask(batch.y)
        impute = self.unlabelled == "impute"
        stats, dims = [], []
        for i, (t, s) in enumerate(zip(batch.teacher_features, batch.student_features,
                                       strict=True)):
            t_vec = self.aligns[i](t) @ getattr(self, f"teacher_projection_{i}")
            s_vec = self.adapters[i](self.aligns[i](s))
            z = torch.cat([t_vec.double(), s_vec.double()], dim=1)
            stats.append(_packed(*weighted_moments(torch.cat([target, z], dim=1), weights)))
            if impute:  # the unlabelled rows' (t, u) moments
                stats.append(_packed(*weighted_moments(z, ~weights)))
            dims.append((target.shape[1], t_vec.shape[1], s_vec.shape[1]))
        joint = sum_across_processes(torch.cat(stats))
        valid = torch.isfinite(joint).all()  # one flag for every pair (on the device)
        update = self.training and torch.is_grad_enabled()
        parts = joint.split([len(v) for v in stats])
        per_pair = 2 if impute else 1
        stats = []
        for i, pair_dims in enumerate(dims):
            moments = running_sum(getattr(self, f"ema_moments_{i}"), parts[per_pair * i],
                                  self.momentum, update, valid)
            if impute:
                missing = running_sum(getattr(self, f"ema_unlabelled_{i}"),
                                      parts[per_pair * i + 1], self.momentum, update, valid)
                moments = moments + _packed(*imputed_moments(
                    _unpacked(moments, sum(pair_dims)), _unpacked(missing, sum(pair_dims[1:])),
                    pair_dims[0], pair_dims[1], self.ridge))
            stats.append(moments)
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i, pair_dims in enumerate(dims):
            groups.setdefault(pair_dims, []).append(i)
        out: dict[int, torch.Tensor] = {}
        for pair_dims, members in groups.items():
            packed = torch.stack([stats[i] for i in members])
            reds = redundancy_from_moments(*_unpacked(packed, sum(pair_dims)), pair_dims,
                                           self.measure, self.ridge)
            out.update(zip(members, reds.unbind(), strict=True))
        return [out[i] for i in range(len(dims))]

    def student_loss(self, batch: Batch) -> tuple[torch.Tensor, Parts]:
        check_batch(self, batch)
        ce = cross_entropy(batch.student_logits, batch.y)
        red = sum(self.redundancies(batch))
        return _returned(batch, ce - self.beta * red.to(ce.dtype), {"ce": ce, "redundancy": red})


@register_method("pid")
def _make_pid(teacher_shapes, student_shapes, num_classes, **kwargs) -> PIDLoss:
    return PIDLoss(teacher_shapes, student_shapes, num_classes, **kwargs)
