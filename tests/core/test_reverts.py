"""One table of revert explanations: every custom error of every compiled fedchain contract has one, arguments are
shown for people (phases by name, amounts in FED), and revert data decodes to the same line."""

from __future__ import annotations

import json

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from fedchain.deployment import CONTRACT_NAMES
from fedchain.protocol import ONE_TOKEN, Phase
from fedchain.reverts import RevertDecoder, abi_type, explain, hint
from fedchain.web3chain import BUILD_MANIFEST


@pytest.fixture(scope="module")
def abis() -> dict:
    manifest = json.loads(BUILD_MANIFEST.read_text())
    return {name: ct["abi"] for name, ct in manifest["contractTypes"].items() if name in CONTRACT_NAMES.values()}


def test_every_custom_error_of_every_deployed_contract_is_explained(abis) -> None:
    assert set(abis) == set(CONTRACT_NAMES.values())
    missing = [(contract, item["name"]) for contract, abi in abis.items() for item in abi
               if item["type"] == "error" and hint(item["name"], contract) is None]
    assert not missing, missing
    total = {(c, i["name"]) for c, abi in abis.items() for i in abi if i["type"] == "error"}
    assert len(total) > 60  # fedchain's own errors and OpenZeppelin's


def test_explanations_name_the_error_and_show_arguments_for_people() -> None:
    line = explain("WrongPhase", {"expected": int(Phase.TRAINER_REVEAL), "actual": int(Phase.TRAINER_COMMIT)})
    assert line == ("the round is not in the phase this action needs "
                    "(WrongPhase: actual=trainer commit, expected=trainer reveal)")
    assert "available=1.5 FED" in explain("InsufficientStake", {"available": 3 * ONE_TOKEN // 2, "required": 10})
    assert explain("NotRevealed", {"status": 1}, "RejectionSlasher").startswith("the trainer has no revealed update")
    assert explain("NotRevealed", {}, "TaskManager").startswith("this account did not reveal")
    assert explain("SomethingNew", {"x": 1}) == "the transaction reverted (SomethingNew: x=1)"


def test_revert_data_decodes_with_the_contract_that_defines_it(abis) -> None:
    decoder = RevertDecoder(abis, prefer=("TaskManager",))
    data = function_signature_to_4byte_selector("PhaseClosed(uint64)") + encode(["uint64"], [123])
    assert decoder.decode(data) == ("TaskManager", "PhaseClosed", {"deadline": 123})
    assert decoder.explain(data) == "the deadline of this phase has passed (PhaseClosed: deadline=123)"
    assert decoder.signature(data) == "PhaseClosed(deadline=123)"
    assert decoder.decode(b"\x00\x01") == (None, "", {}) and decoder.decode(b"") == (None, "", {})
    tuple_param = {"type": "tuple[]", "components": [{"type": "uint32"}, {"type": "bool"}]}
    assert abi_type(tuple_param) == "(uint32,bool)[]"
