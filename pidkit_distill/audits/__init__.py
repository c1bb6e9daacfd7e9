r"""Knowledge audits of a teacher-student pair: how much of the teacher's task knowledge a
student holds, per layer pair, once or over training.

One module per job:

- :mod:`~pidkit_distill.audits.run`: :func:`audit` and :func:`audit_features`, the entry points;
- :mod:`~pidkit_distill.audits.stream`: features streamed batch by batch, order-free sample keys;
- :mod:`~pidkit_distill.audits.estimators`: the estimators of one layer pair (discrete, Gaussian);
- :mod:`~pidkit_distill.audits.report`: :class:`AuditReport` and :class:`LayerAudit`, the result;
- :mod:`~pidkit_distill.audits.curves`: :class:`AuditHistory` and :func:`plot_curves`, audits
  over training;
- :mod:`~pidkit_distill.audits.callback`: :class:`AuditCallback`, audits during training;
- :mod:`~pidkit_distill.audits.known_answer`: teacher/student/label data whose true audit
  values are known exactly, to measure an estimator's bias and spread;
- :mod:`~pidkit_distill.audits.nuisance`: :func:`nuisance_teacher_example`, why audits use
  :math:`\mathrm{Red}(Y{:}T,S)` and not :math:`I(T;S)` (Theorem 3.1 of Dissanayake et al.).
"""

from .callback import AuditCallback
from .curves import AuditHistory, plot_curves
from .nuisance import NuisanceExample, nuisance_teacher_example
from .report import AuditReport, LayerAudit
from .run import audit, audit_features

__all__ = [
    "AuditCallback",
    "AuditHistory",
    "AuditReport",
    "LayerAudit",
    "NuisanceExample",
    "audit",
    "audit_features",
    "nuisance_teacher_example",
    "plot_curves",
]
