"""The sponsor's task file: every key checked by name, type and range; the example parses; the spec it
resolves to is the TaskParams the contract takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedchain.protocol import ONE_TOKEN
from fedchain.retention import RetentionPolicy
from fedchain.taskspec import TaskSpec
from sponsor.taskfile import TaskFileError, load_task_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "task.toml"
MINIMAL = """
[task]
architecture = "logreg:4-3"
rounds = 3
budget = "12.5"
max_trainers = 5
[model]
file = "init.safetensors"
[validation]
file = "val.npz"
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "task.toml"
    path.write_text(text)
    return load_task_file(path)


def test_the_example_parses_with_its_documented_defaults() -> None:
    task = load_task_file(EXAMPLE)
    assert (task.architecture, task.rounds, task.budget) == ("mlp:30-16-2", 3, 300 * ONE_TOKEN)
    assert task.model.seed == 7 and task.model.file is None
    assert task.validation == EXAMPLE.parent / "data" / "validation.npz"  # relative to the task file
    assert task.durations == (120, 120, 120, 120) and (task.committee_size, task.quorum) == (1, 1)


def test_defaults_and_the_resolved_spec(tmp_path) -> None:
    task = _load(tmp_path, MINIMAL + "[privacy]\nepsilon = 3\n[retention]\nmodels = 2\nupdate_rounds = 'all'\n")
    assert task.min_trainers == 3 and task.budget == 12 * ONE_TOKEN + ONE_TOKEN // 2
    assert task.durations == (300,) * 4 and task.trainer_bond == 10 * ONE_TOKEN
    assert task.epsilon == 3 and task.delta == 1e-5
    assert task.retention == RetentionPolicy(model_rounds=2, update_rounds=None)
    assert task.model.file == tmp_path / "init.safetensors"
    spec = task.spec("bafkcid1", b"\x01" * 32, "bafkcid2", b"\x02" * 32)
    assert spec.dp_epsilon_milli == 3000 and spec.dp_delta_e18 == 10**13
    assert TaskSpec.from_chain(spec.to_chain()) == spec
    assert (spec.aggregator_quorum, spec.max_aggregators, spec.min_trainers) == (1, 1, 3)


@pytest.mark.parametrize(("change", "message"), [
    (("rounds = 3", "rounds = 0"), "[task] rounds: must be between 1 and"),
    (("rounds = 3", "rounds = true"), "[task] rounds: expected an integer"),
    (('budget = "12.5"', 'budget = "-1"'), "[task] budget"),
    (('budget = "12.5"', 'budget = "0.0000000000000000001"'), "[task] budget"),
    (("max_trainers = 5", "max_trainers = 5\nmin_trainers = 6"), "[task] min_trainers"),
    (("max_trainers = 5", "max_trainers = 5\nspeed = 1"), "unknown key(s) speed"),
    (('file = "init.safetensors"', "init_seed = 1\nfile = 'x'"), "exactly one of"),
    (('[validation]\nfile = "val.npz"', ""), "[top level] validation: missing"),
    (("[model]", "[committee]\nsize = 4\nquorum = 2\n[model]"), "strict majority"),
    (("[model]", "[committee]\nsize = 3\nquorum = 3\n[model]"), "strict majority"),
    (("[model]", "[stakes]\ntrainer_bond = '0'\n[model]"), "[stakes] trainer_bond"),
    (("[model]", "[durations]\nreveal = 999999999\n[model]"), "[durations] reveal"),
    (("[model]", "[privacy]\ndelta = 1\n[model]"), "[privacy] delta"),
    (("[model]", "[retention]\nmodels = 0\n[model]"), "[retention] models"),
    (("[model]", "[retention]\nupdate_rounds = 'some'\n[model]"), "[retention] update_rounds"),
    (("[task]", "task = 1\n[task]"), "task.toml: not a TOML file"),
    (("rounds = 3", "rounds = 3\nstrategy_params = { a = " + "[" * 33 + "1" + "]" * 33 + " }"),
     "[task] strategy_params: nested more than"),
    (("rounds = 3", "rounds = 3\nstrategy_params = { a = '" + "x" * 5000 + "' }"), "[task] strategy_params"),
])
def test_a_bad_key_is_one_error_naming_it(tmp_path, change, message) -> None:
    old, new = change
    assert old in MINIMAL
    with pytest.raises(TaskFileError) as err:
        _load(tmp_path, MINIMAL.replace(old, new, 1))
    assert message in str(err.value)
    assert str(tmp_path / "task.toml") in str(err.value)


def test_unreadable_and_oversized_files(tmp_path) -> None:
    with pytest.raises(TaskFileError, match="cannot read the task file"):
        load_task_file(tmp_path / "absent.toml")
    big = tmp_path / "big.toml"
    big.write_text(MINIMAL + "#" * 70_000)
    with pytest.raises(TaskFileError, match="a task file is at most"):
        load_task_file(big)
    deep = tmp_path / "deep.toml"
    deep.write_text(MINIMAL.replace("rounds = 3", "rounds = 3\nstrategy_params = { x = " + "[" * 20_000 + "]" * 20_000
                                    + " }"))
    with pytest.raises(TaskFileError, match="nested"):  # by the TOML parser, or by the parameters' bound
        load_task_file(deep)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TaskFileError, match="not a TOML file"):
        load_task_file(binary)


def test_resolving_a_task_file_checks_its_files_against_the_architecture(tmp_path) -> None:
    import numpy as np
    import safetensors.numpy

    from fedchain.architectures import initial_tensors
    from fedchain.cid import cid_for_bytes
    from fedchain.codec import ModelManifest, decode_model, encode_model, sha256
    from fedchain.errors import FedchainError
    from fedchain.sealed import is_sealed, read_sealed
    from sponsor.tasks import resolve_task

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "val.npz", x=rng.normal(size=(12, 4)), y=np.arange(12) % 3)
    plain = initial_tensors("logreg:4-3", 5)
    safetensors.numpy.save_file(plain, str(tmp_path / "init.safetensors"))
    spec, model, validation, keys = resolve_task(_load(tmp_path, MINIMAL))
    assert spec.initial_model_cid == cid_for_bytes(model) and spec.initial_model_digest == sha256(model)
    assert spec.validation_cid == cid_for_bytes(validation) and keys == []
    sealed_task = MINIMAL.replace('file = "val.npz"', 'file = "val.npz"\nsealed_sections = 1')
    assert sealed_task != MINIMAL
    sealed_spec, _, sealed, keys = resolve_task(_load(tmp_path, sealed_task))
    assert len(keys) == 1 and sealed_spec.validation_digest == sha256(sealed) and is_sealed(sealed)
    assert np.array_equal(read_sealed(sealed).open(1, keys[0])[1], np.arange(12) % 3)
    tensors, manifest = decode_model(model)
    assert manifest.kind == "initial" and all(np.array_equal(tensors[k], plain[k]) for k in plain)

    safetensors.numpy.save_file({"0.weight": np.zeros((3, 5), np.float32), "0.bias": np.zeros(3, np.float32)},
                                str(tmp_path / "init.safetensors"))
    with pytest.raises(FedchainError, match="initial model .* does not fit logreg:4-3"):
        resolve_task(_load(tmp_path, MINIMAL))
    other = encode_model(initial_tensors("logreg:4-3", 1), ModelManifest(kind="initial", architecture="mlp:4-3"))
    (tmp_path / "init.safetensors").write_bytes(other)
    with pytest.raises(FedchainError, match="not a model of logreg:4-3"):
        resolve_task(_load(tmp_path, MINIMAL))
    (tmp_path / "init.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(FedchainError, match="init.safetensors"):
        resolve_task(_load(tmp_path, MINIMAL))
    np.savez(tmp_path / "val.npz", x=rng.normal(size=(3000, 4)), y=np.arange(3000) % 3)  # beyond the size limit
    too_big = "validation set .* does not fit logreg:4-3: .*limit"
    with pytest.MonkeyPatch.context() as mp, pytest.raises(FedchainError, match=too_big):
        mp.setenv("FEDCHAIN_MAX_DATASET_BYTES", "20000")  # validation sets have their own bound
        resolve_task(_load(tmp_path, MINIMAL.replace('file = "init.safetensors"', "init_seed = 2")))
    np.savez(tmp_path / "val.npz", x=rng.normal(size=(12, 4)), y=np.arange(12) % 5)  # labels beyond 3 classes
    with pytest.raises(FedchainError, match="validation set .* does not fit logreg:4-3"):
        resolve_task(_load(tmp_path, MINIMAL.replace('file = "init.safetensors"', "init_seed = 2")))
