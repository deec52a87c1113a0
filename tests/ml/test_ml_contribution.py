"""Free-rider rejection and contribution scores on small hand-made inputs."""

from __future__ import annotations

import numpy as np

from aggregator.contribution import PROBES, contributions, probe_direction, score_of
from aggregator.fingerprints import sketch_key
from aggregator.freeriders import FreeRiderCheck, KnownUpdate
from aggregator.scoring import PPM
from aggregator.strategies import ClientUpdate
from aggregator.validation import RejectedUpdate
from fedchain.architectures import initial_tensors

ARCH = "logreg:2-2"


def _model(w: list[list[float]], b: list[float]) -> dict[str, np.ndarray]:
    return {"0.weight": np.array(w, np.float32), "0.bias": np.array(b, np.float32)}


GLOBAL = _model([[1, 0], [0, 1]], [0, 0])
KEY = sketch_key(b"round seed")


def _code(check: FreeRiderCheck, tensors, trainer="0xa", round_=2) -> str | None:
    try:
        check.check(trainer, round_, tensors)
    except RejectedUpdate as exc:
        return exc.code
    return None


def test_free_riders_are_rejected_with_reasons() -> None:
    honest = _model([[1.5, 0], [0, 1.2]], [0.1, -0.1])
    earlier = KnownUpdate.of("0xold", 1, _model([[3, 1], [1, 3]], [1, 1]), KEY)
    check = FreeRiderCheck(GLOBAL, [earlier], key=KEY)
    assert _code(check, _model([[0, 0], [0, 0]], [0, 0])) == "zero_update"
    assert _code(check, GLOBAL) == "global_replay"
    assert _code(check, _model([[1, 1e-7], [0, 1]], [0, 0])) == "global_replay"  # nearly the global model
    assert _code(check, honest, "0xfirst") is None
    assert _code(check, honest, "0xcopy") == "replayed_update"  # same round, later in commit order
    nudged = {k: v + np.float32(1e-6) for k, v in honest.items()}
    assert _code(check, nudged, "0xnudge") == "replayed_update"  # nearly equal still counts
    assert _code(check, _model([[3, 1], [1, 3]], [1, 1]), "0xb") == "replayed_update"  # an earlier round's update
    assert _code(check, _model([[1.4, 0.1], [0, 1.3]], [0.0, 0.2]), "0xc") is None


def test_a_trainers_own_last_update_is_not_a_near_copy_of_itself() -> None:
    """A converged honest trainer's update resembles its previous one: only another identity's near copy of it is
    rejected; an exact replay of one's own earlier update still is."""
    earlier_update = _model([[1.5, 0], [0, 1.2]], [0.1, -0.1])
    earlier = [KnownUpdate.of("0xa", 1, earlier_update, KEY)]
    similar = {k: v + np.float32(0.004) for k, v in earlier_update.items()}  # cosine > 0.995, not an exact copy
    assert _code(FreeRiderCheck(GLOBAL, earlier, key=KEY), similar, "0xa") is None
    assert _code(FreeRiderCheck(GLOBAL, earlier, key=KEY), similar, "0xb") == "near_duplicate"
    assert _code(FreeRiderCheck(GLOBAL, earlier, key=KEY), earlier_update, "0xa") == "replayed_update"


def test_near_copies_and_public_extrapolations_are_rejected() -> None:
    previous = _model([[0.8, 0.1], [0.1, 0.9]], [0.1, 0.0])  # the global model before GLOBAL
    check = FreeRiderCheck(GLOBAL, previous_global=previous, key=KEY)
    honest = _model([[1.5, 0], [0, 1.2]], [0.1, -0.1])
    assert _code(check, honest, "0xfirst") is None
    jittered = {k: v + np.float32(0.004) for k, v in honest.items()}  # beyond the replay tolerance, still a copy
    assert _code(check, jittered, "0xsybil") == "near_duplicate"
    shrunk = {k: GLOBAL[k] + 0.5 * (honest[k] - GLOBAL[k]) for k in GLOBAL}  # same direction, half the change
    assert _code(check, shrunk, "0xhalf") is None  # not a copy: a different length is a different update
    momentum = {k: GLOBAL[k] + 0.7 * (GLOBAL[k] - previous[k]) for k in GLOBAL}  # the last global step again
    assert _code(check, momentum, "0xfree") == "public_direction"
    scaled = {k: 1.3 * GLOBAL[k] - 0.2 * previous[k] for k in GLOBAL}  # any mix of the public models
    assert _code(check, scaled, "0xmix") == "public_direction"
    assert _code(check, _model([[1.4, 0.1], [0, 1.3]], [0.0, 0.2]), "0xc") is None


def _scores_setup():
    x = np.array([[1, 0], [0, 1], [2, 1], [0, 3], [3, 0], [1, 4]], dtype=np.float32)
    y = np.array([0, 1, 0, 1, 0, 1])
    glob = initial_tensors(ARCH, 0)
    step = _model([[0.5, -0.5], [-0.5, 0.5]], [0, 0])  # the direction that fits the data
    return x, y, glob, step


def test_scores_are_marginal_values_to_the_aggregate() -> None:
    x, y, glob, step = _scores_setup()
    rng = np.random.default_rng(0)

    def moved(scale: float, trainer: str, jitter: float = 0.0) -> ClientUpdate:
        t = {k: (glob[k] + scale * step[k] + jitter * rng.normal(size=glob[k].shape)).astype(np.float32)
             for k in glob}
        return ClientUpdate(trainer, t, 10)
    public = {k: (1.5 * glob[k]).astype(np.float32) for k in glob}  # no data: the global model scaled
    updates = [moved(1.0, "0x1", 0.02), moved(1.1, "0x2", 0.02), moved(0.9, "0x3", 0.02),
               moved(-1.0, "0x4"),  # sign flip
               moved(20.0, "0x5"),  # boosted
               ClientUpdate("0x7", public, 10)]
    result = contributions(ARCH, glob, updates, x, y)
    honest = [result[t].score for t in ("0x1", "0x2", "0x3")]
    assert min(honest) > 1_000 and all(result[t].marginal_micro > 0 for t in ("0x1", "0x2", "0x3"))
    assert result["0x4"].score == 1 and result["0x4"].marginal_micro < 0  # it made the aggregate worse
    assert result["0x7"].public_ppm > 999_000 and result["0x7"].score == 1  # nothing of its own
    assert result["0x5"].clipped and result["0x5"].score <= 2 * max(honest)  # boosting buys at most one share
    assert contributions(ARCH, glob, list(reversed(updates)), x, y) == result  # order-free


def test_scaling_an_update_buys_nothing_up_or_down() -> None:
    """Only an update's direction is scored. A short honest update boosted past the median (or shrunk) earns
    exactly what it earned unscaled; under a clip-only rule the boost up to the median paid."""
    x, y, _, _ = _scores_setup()
    glob = _model([[0, 0], [0, 0]], [0, 0])  # powers of two below: every norm and rescaling is exact

    def update(trainer: str, w: list[list[float]], b: list[float], scale: float = 1.0) -> ClientUpdate:
        return ClientUpdate(trainer, {k: (scale * v).astype(np.float32) for k, v in _model(w, b).items()}, 10)

    step = [[0.5, -0.5], [-0.5, 0.5]]
    others = [update("0x2", step, [0.25, 0]), update("0x3", step, [0, 0.25]),  # three of the median's length
              update("0x4", step, [0, -0.25]), update("0x5", [[1, -0.5], [-1, 1]], [0, 0])]
    short = [[0.25, -0.125], [-0.25, 0.25]]  # its own direction, shorter than the median
    plain = contributions(ARCH, glob, [update("0x1", short, [0.125, 0]), *others], x, y)
    assert plain["0x1"].score > 1 and not plain["0x1"].clipped
    for scale in (0.5, 4.0, 64.0):
        scaled = contributions(ARCH, glob, [update("0x1", short, [0.125, 0], scale), *others], x, y)
        assert scaled["0x1"].clipped == (scale > 1)
        assert {t: (c.score, c.marginal_micro) for t, c in scaled.items()} == \
            {t: (c.score, c.marginal_micro) for t, c in plain.items()}, scale


def _wide_task(rng: np.random.Generator):
    """40 features, of which two decide the label: random directions carry almost nothing."""
    x = rng.normal(size=(400, 40)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    arch = "logreg:40-2"
    glob = {k: v.astype(np.float32) for k, v in initial_tensors(arch, 1).items()}
    fit = {"0.weight": np.zeros((2, 40), np.float32), "0.bias": np.zeros(2, np.float32)}
    fit["0.weight"][1, :2], fit["0.weight"][0, :2] = 0.3, -0.3  # the direction that fits the data
    return arch, x, y, glob, fit


def test_noise_must_beat_chance_to_be_paid() -> None:
    """Noise of an honest update's length saves loss by luck about half the time (``marginal > 0``); the chance
    margin (the best of ``2 * PROBES`` random directions of that length) leaves it the floor nearly always, while
    honest updates beat it. The margin is a function of the round alone: the same in any order, and drawn from
    the global model, so a trainer cannot choose it."""
    rng = np.random.default_rng(7)
    arch, x, y, glob, fit = _wide_task(rng)
    lucky = paid = 0
    for trial in range(40):
        honest = [ClientUpdate(f"0x{i}", {k: (glob[k] + fit[k] + 0.05 * rng.normal(size=fit[k].shape))
                                          .astype(np.float32) for k in glob}, 10) for i in range(1, 5)]
        noise = {k: (glob[k] + rng.normal(size=glob[k].shape)).astype(np.float32) for k in glob}
        updates = [*honest, ClientUpdate("0x9", noise, 10)]
        result = contributions(arch, glob, updates, x, y)
        assert len({c.chance_micro for c in result.values()}) == 1  # equal weights: one margin for all
        assert all(result[u.trainer].score > 1 for u in honest), trial
        lucky += result["0x9"].marginal_micro > 0
        paid += result["0x9"].score > 1
        if trial == 0:
            assert contributions(arch, glob, list(reversed(updates)), x, y) == result
    assert lucky >= 10 and 3 * paid <= lucky, (lucky, paid)  # the margin stops most lucky noise


def test_probe_directions_are_drawn_from_the_global_model() -> None:
    g = np.arange(20, dtype=np.float64)
    first = probe_direction(g, 0)
    assert first.shape == (20,) and np.all(first == np.round(first)) and np.all(np.abs(first) <= 2 * 65535)
    assert np.array_equal(first, probe_direction(g.copy(), 0))  # a function of the bytes alone
    assert not np.array_equal(first, probe_direction(g, 1))
    moved = g.copy()
    moved[3] += 1e-9
    assert not np.array_equal(first, probe_direction(moved, 0))
    assert PROBES >= 1


def test_score_of_is_integer_clamped_and_floored() -> None:
    assert score_of(500_000, 1_000_000) == 500_000
    assert score_of(3, 7) == 428_571
    assert score_of(0, 10) == score_of(-5, 10) == 1
    assert score_of(10**9, 10) == PPM
    assert score_of(1, 0) == PPM  # L(g) is floored at 1 micro-unit


def test_attested_weights_make_claims_worthless() -> None:
    from aggregator.weights import attested_weights

    honest = {"0xa": 120, "0xb": 80, "0xc": 200}
    assert attested_weights(honest) == {"0xa": 80, "0xb": 80, "0xc": 80}
    inflated = attested_weights({**honest, "0xc": 10**15})  # a lie above the smallest claim changes nothing
    assert inflated == attested_weights(honest)
    deflated = attested_weights({**honest, "0xa": 1})  # one below it lowers every weight alike: no share moves
    assert set(deflated.values()) == {1}
    assert attested_weights(honest, max_samples=50) == dict.fromkeys(honest, 50)  # the task's maximum caps it
    assert attested_weights({}) == {} and attested_weights({"0xa": 0}) == {"0xa": 1}
