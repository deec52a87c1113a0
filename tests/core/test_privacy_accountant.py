"""The core's RDP accountant is Opacus' analysis: the same orders, the same epsilons, loaded without torch."""

from __future__ import annotations

import math

from opacus.accountants import RDPAccountant

from fedchain.privacy import RDP_ORDERS, central_epsilon, merge_history, rdp_epsilon


def test_orders_and_epsilons_equal_opacus() -> None:
    assert list(RDP_ORDERS) == list(RDPAccountant.DEFAULT_ALPHAS)
    history = [(1.1, 0.01, 300), (1.1, 0.01, 200), (0.8, 0.02, 150)]
    acct = RDPAccountant()
    acct.history = merge_history(history)
    assert rdp_epsilon(history, 1e-5) == acct.get_epsilon(delta=1e-5)
    assert merge_history(history) == [(1.1, 0.01, 500), (0.8, 0.02, 150)]
    assert rdp_epsilon([], 1e-5) == 0.0 and rdp_epsilon([(0.0, 0.1, 5)], 1e-5) == math.inf
    assert central_epsilon(2.0, 4, 1e-5) == rdp_epsilon([(2.0, 1.0, 4)], 1e-5)
