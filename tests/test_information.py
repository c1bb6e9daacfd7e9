"""The public information module (``pidkit.information``) and ``pidkit.result.to_plain``,
against closed forms: entropies of fair and biased bits, the mutual information of copies,
independent and XOR-related variables, and JSON round trips."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pidkit.information import entropy, marginal, mutual_information
from pidkit.result import to_plain


def _h(p: float) -> float:
    """Binary entropy in nats, written out."""
    return -p * math.log(p) - (1 - p) * math.log(1 - p)


def test_entropy_and_marginal_of_a_biased_bit_and_its_copy():
    p = np.array([[0.75, 0.0], [0.0, 0.25]])          # X0 ~ Bern(1/4), X1 = X0
    assert entropy(marginal(p, (0,))) == pytest.approx(_h(0.25), abs=1e-12)
    assert entropy(p) == pytest.approx(_h(0.25), abs=1e-12)   # zero cells count as 0 log 0
    assert mutual_information(p, (0,), (1,)) == pytest.approx(_h(0.25), abs=1e-12)


def test_mutual_information_of_groups_of_axes():
    # Y = X0 xor X1 with fair independent bits: no single source informs Y, the pair does.
    p = np.zeros((2, 2, 2))
    for a in (0, 1):
        for b in (0, 1):
            p[a ^ b, a, b] = 0.25
    assert mutual_information(p, (0,), (1,)) == 0.0
    assert mutual_information(p, (1,), (2,)) == 0.0
    assert mutual_information(p, (0,), (1, 2)) == pytest.approx(math.log(2), abs=1e-12)
    assert mutual_information(p, (2, 1), (0,)) == pytest.approx(math.log(2), abs=1e-12)


def test_to_plain_makes_json_data():
    value = {"a": np.float32(0.5), 3: (np.arange(3), [np.int64(2)]), "s": "x", "n": None}
    plain = to_plain(value)
    assert plain == {"a": 0.5, "3": [[0, 1, 2], [2]], "s": "x", "n": None}
    assert json.loads(json.dumps(plain)) == plain
    torch = pytest.importorskip("torch")
    assert to_plain(torch.tensor([1.5, 2.0], requires_grad=True)) == [1.5, 2.0]


@pytest.mark.parametrize("p", [np.array([1.0]), np.array([[1.0]]), np.array([[1.0, 0.0],
                                                                              [0.0, 0.0]]),
                               np.array([[[0.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])])
def test_degenerate_pmfs_give_positive_zero(p):
    from pidkit.information import specific_information, subset_mutual_information

    values = [entropy(p)]
    if p.ndim >= 2:
        values += [mutual_information(p, [0], [1]), *marginal(p, [0]).ravel(),
                   *subset_mutual_information(p), *specific_information(p).ravel()]
    zeros = [v for v in values if v == 0]
    assert zeros and not any(math.copysign(1.0, v) < 0 for v in zeros)
    assert entropy(p) == 0.0 and math.copysign(1.0, entropy(p)) == 1.0
