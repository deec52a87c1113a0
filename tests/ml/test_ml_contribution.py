"""Free-rider rejection and contribution scores on small hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.contribution import combine, contributions
from aggregator.freeriders import FreeRiderCheck, KnownUpdate
from aggregator.scoring import PPM
from aggregator.strategies import ClientUpdate
from aggregator.strategies.ops import flatten
from aggregator.validation import RejectedUpdate
from fedchain.architectures import initial_tensors

ARCH = "logreg:2-2"


def _model(w: list[list[float]], b: list[float]) -> dict[str, np.ndarray]:
    return {"0.weight": np.array(w, np.float32), "0.bias": np.array(b, np.float32)}


GLOBAL = _model([[1, 0], [0, 1]], [0, 0])


def _code(check: FreeRiderCheck, tensors, trainer="0xa", round_=2) -> str | None:
    try:
        check.check(trainer, round_, tensors)
    except RejectedUpdate as exc:
        return exc.code
    return None


def test_free_riders_are_rejected_with_reasons() -> None:
    honest = _model([[1.5, 0], [0, 1.2]], [0.1, -0.1])
    earlier = KnownUpdate("0xold", 1, flatten(_model([[3, 1], [1, 3]], [1, 1])))
    check = FreeRiderCheck(GLOBAL, [earlier])
    assert _code(check, _model([[0, 0], [0, 0]], [0, 0])) == "zero_update"
    assert _code(check, GLOBAL) == "global_replay"
    assert _code(check, _model([[1, 1e-7], [0, 1]], [0, 0])) == "global_replay"  # nearly the global model
    assert _code(check, honest, "0xfirst") is None
    assert _code(check, honest, "0xcopy") == "replayed_update"  # same round, later in commit order
    nudged = {k: v + np.float32(1e-6) for k, v in honest.items()}
    assert _code(check, nudged, "0xnudge") == "replayed_update"  # nearly equal still counts
    assert _code(check, _model([[3, 1], [1, 3]], [1, 1]), "0xb") == "replayed_update"  # an earlier round's update
    assert _code(check, _model([[1.4, 0.1], [0, 1.3]], [0.0, 0.2]), "0xc") is None


def test_contribution_scores_reward_agreement_and_punish_attacks() -> None:
    x = np.array([[1, 0], [0, 1], [2, 1], [0, 3], [3, 0], [1, 4]], dtype=np.float32)
    y = np.array([0, 1, 0, 1, 0, 1])
    glob = initial_tensors(ARCH, 0)
    step = _model([[0.5, -0.5], [-0.5, 0.5]], [0, 0])  # the direction that fits the data
    def moved(scale: float, trainer: str, jitter: float = 0.0) -> ClientUpdate:
        t = {k: (glob[k] + scale * step[k] + jitter).astype(np.float32) for k in glob}
        return ClientUpdate(trainer, t, 10)
    updates = [moved(1.0, "0x1"), moved(1.1, "0x2", 0.01), moved(0.9, "0x3", -0.01),
               moved(-1.0, "0x4"),  # sign flip
               moved(20.0, "0x5")]  # boosted
    result = contributions(ARCH, glob, updates, x, y)
    honest = [result[t].score for t in ("0x1", "0x2", "0x3")]
    assert min(honest) > 100_000
    assert result["0x4"].alignment == 0 and result["0x4"].score == 1  # the floor: accepted but worthless
    assert result["0x5"].norm < 250_000 and result["0x5"].score < min(honest) / 3
    for c in result.values():
        assert c.score == combine(c.accuracy, c.loss, c.alignment, c.norm) >= 1
    assert contributions(ARCH, glob, list(reversed(updates)), x, y) == result  # order-free


def test_combine_is_integer_and_floored() -> None:
    assert combine(PPM, PPM, PPM, PPM) == PPM
    assert combine(500_000, PPM, 500_000, PPM) == 250_000
    assert combine(0, PPM, PPM, PPM) == 1
    with pytest.raises(TypeError):
        combine(PPM, PPM, PPM)  # type: ignore[call-arg]
