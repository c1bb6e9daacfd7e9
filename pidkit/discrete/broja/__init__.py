r"""BROJA: exact, certified, batched and differentiable for two sources; three sources by
maximum entropy.

Bertschinger, Rauh, Olbrich, Jost and Ay (2014) define the unique information of a source
:math:`T` about a target :math:`Y` with respect to another source :math:`S` as

.. math::

    \mathrm{Uni}(Y{:}T \setminus S) = \min_{Q \in \Delta_P} I_Q(Y; T \mid S),
    \qquad \Delta_P = \{Q : Q(y,t) = P(y,t),\ Q(y,s) = P(y,s)\},

and the other atoms from it: :math:`\mathrm{Red} = I(Y;T) - \mathrm{Uni}(Y{:}T\setminus S)`,
:math:`\mathrm{Uni}(Y{:}S\setminus T) = I(Y;S) - \mathrm{Red}`, and
:math:`\mathrm{Syn} = I(Y;T,S) - \mathrm{Red} - \mathrm{Uni}_T - \mathrm{Uni}_S`.

Modules, from the public entry points down:

- :mod:`._api`: the registered measure ``"broja"`` (:func:`compute`), :func:`broja` for
  batches and torch tensors, the torch path of :func:`pidkit.pid` (:func:`pid_tensor`);
- :mod:`._core`: certified atoms from the solver's bracket on :math:`f^*`;
- :mod:`._ipm`: the interior-point driver on the dual (iterations, predictor-corrector steps,
  line search, batch bookkeeping);
- :mod:`._warm`: warm starts (:class:`WarmStart`): the solution of a nearby pmf certified on
  a new one before any iteration;
- :mod:`._polish`: the crossover for items the interior-point iteration cannot finish (a
  primal barrier method, then a semismooth Newton method, certified the same way);
- :mod:`._bounds`: the certificate of one iterate (a feasible dual point, a repaired primal
  point);
- :mod:`._newton`: the Newton system (eliminate :math:`\mu`, factorise the Schur complement,
  refine by conjugate gradients);
- :mod:`._schur`: assembly of the Schur complement in reused buffers;
- :mod:`._three`, :mod:`._three_maxent`: three sources (``pidkit.pid(p, measure="broja")`` on
  a pmf with three sources): the maximum-entropy decomposition of Chicharro (2017) and Makkeh
  et al. (2019), all 18 atoms from 9 bivariate and 2 trivariate certified programs;
- :mod:`._small`: the lean driver for ONE numpy pmf with ``|Y|(|T| + |S|) <= 1024`` (and
  small batches of them, item by item), warm starts included: the same steps without a batch
  axis or namespace dispatch, one dense Newton matrix, the same certificate; it hands over to
  :mod:`._ipm` only where its linear algebra fails;
- :mod:`._host`: torch tensors in host memory, solved by the numpy code behind one autograd
  node with a closed-form vector-Jacobian product.

Everything but :mod:`._small` and :mod:`._host` is written once against an array backend
(:mod:`pidkit._backend`): numpy or torch, batched, on any device. See ``docs/broja.md`` for
the algorithm, the certificate and benchmarks.

References
----------
N. Bertschinger, J. Rauh, E. Olbrich, J. Jost, N. Ay, "Quantifying unique information",
Entropy 16, 2161 (2014).
"""

from ._api import DEFAULT_MAX_ITER, DEFAULT_TOL, FixedIterationInfo, broja, compute, pid_tensor
from ._warm import WarmStart

__all__ = ["DEFAULT_MAX_ITER", "DEFAULT_TOL", "FixedIterationInfo", "WarmStart", "broja", "compute",
           "pid_tensor"]
