"""CIDs must equal what Kubo's ``ipfs add --cid-version=1`` prints.

Golden values: the two single-block ones are the well-known Kubo outputs for ``hello world\\n`` and the
empty file.  All others were produced with the reference JS importer (npm ipfs-unixfs-importer 17.1.1 +
blockstore-core, node 20), not part of this repo:

    importer([{content: gen(n)}], new MemoryBlockstore(), {cidVersion: 1, rawLeaves: true,
             chunker: fixedSize({chunkSize}), layout: balanced({maxChildrenPerNode})})

with ``gen(n)[i] = (i * 31 + 7) % 251``, the same generator as ``_gen`` below.  Kubo's defaults are
chunkSize 262144 and maxChildrenPerNode 174; the small-parameter goldens (chunkSize 16,
maxChildrenPerNode 3) exercise three- and four-level DAGs cheaply.  CIDv0 / base58btc forms were
converted with multiformats' ``CID.parse(s).toV1().toString(base58btc)``.
"""

from __future__ import annotations

import io
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedchain.cid import (
    CHUNK_SIZE,
    CidBuilder,
    cid_for_bytes,
    cid_for_file,
    cid_for_stream,
    is_cid,
    normalize_cid,
)

C = CHUNK_SIZE
MIB = 1024 * 1024
_PERIOD = bytes((i * 31 + 7) % 251 for i in range(251))


def _gen(n: int) -> bytes:
    """bytes((i * 31 + 7) % 251 for i in range(n)), built fast (the sequence has period 251)."""
    return (_PERIOD * (n // 251 + 1))[:n]


KUBO_GOLDENS = [
    (0, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
    (1, "bafkreigkgwdvr5wspzwpiutssn4xpj2i7wedshnwphhnu7ohx4pqaxxipe"),
    (C - 1, "bafkreiaakdbr3mk3i2fyatdvfsyktszyq74pjcglkrozlwyc4xyjg4bowi"),
    (C, "bafkreieiuj5mzeuqor24l4lmo2yumm6665yv4gq7ozzp2nrfmqrjyboosy"),
    (C + 1, "bafybeich6cqd6yabw3cku6edwmz4rvwe275nx2l6ootvc2bpbt5bdvarua"),
    (MIB + 7, "bafybeif6tlt4jwysslpctjqj4sptu6hkm7u6tqizsn7sc5qtw6kwo3wkxq"),
    (174 * C, "bafybeiafkae3md3zfgdgpk2ztpkul5dzotu4bgbnvuinadceqrqa2rz7bi"),  # one full node
    (174 * C + 1, "bafybeibo5yjphmmdq6aigqtgrijost25l5lmv5l37von7hrjv7sagnx4sy"),  # two levels
    (175 * C, "bafybeiaqzxz6oil7b66r3sivgbt74iriv7azcuik2tsav22vqbajkldlz4"),
    (2 * 174 * C + 5, "bafybeidh3wcc7o2c5dwdh6oane2xl5abfwdfjttstou2m5sxhi2szierje"),
    (50 * MIB, "bafybeihrc2n4xzrrxd7gg4jcsfir72tgm4leoqzbnrxliveqm4guth3fra"),
    (50 * MIB + 12345, "bafybeibyiniofy2ddlwiesiacv27eqxmhp45xxdvvsfktl6k64afft6rqi"),
]

SMALL_GOLDENS = [  # chunk_size=16, max_links=3
    (0, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
    (16, "bafkreiezi5ohjfmp4qyublx3tzyawsj5v7qzvdx5alldo4fecwxlcsrkim"),
    (17, "bafybeig3ogxbzyqch76gue6l2wg6iep6mm5q34l7vemjnnvznpem5tcwfa"),
    (48, "bafybeic45eehszx3cifxpuyrzbcnnusyi6xzlfwfqa2aovecgj7ogie3zm"),
    (49, "bafybeib4yukse4hgvay3kccfo3oawupcbrbwneb552b7a42muxafkyddae"),
    (144, "bafybeicgkcq2jgpluq3l35xj6e3q7yy7mq6v4vlnxiwbozh3v24u2jt4ey"),
    (145, "bafybeiabekzbtij234wqshl7c5g6464ibqiekswjuwul6yaoxlcsxp7aie"),
    (160, "bafybeih7i4ozvkvclxjlm2sgz7ipe3xigjrgl7fw3zqdzoxp6fjewb2rvu"),
    (432, "bafybeiduzpn7tnwtmrm2gzii3cw57k2uw4wvp5p6eztxvhdadwt3vzmh5u"),
    (433, "bafybeig42wrfktcvomtyo5qkejjdbdr7ydwo2f63ybcimfslittf7qpqia"),
    (448, "bafybeibfit3qk74ptjq52lfl57mjcuqkbou744tphoqyh3etqghnlnkayi"),
    (1300, "bafybeigu433bzqou26low6z4ahy4ffvuwnn3w7vtsjttdau4re3lgjk7py"),
]


def test_known_single_block_cids() -> None:
    assert cid_for_bytes(b"hello world\n") == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    assert cid_for_bytes(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_generator_matches_its_definition() -> None:
    assert _gen(2000) == bytes((i * 31 + 7) % 251 for i in range(2000))


@pytest.mark.parametrize(("size", "expected"), KUBO_GOLDENS, ids=[str(n) for n, _ in KUBO_GOLDENS])
def test_kubo_layout_goldens(size: int, expected: str) -> None:
    data = _gen(size)
    assert cid_for_bytes(data) == expected
    assert cid_for_stream(io.BytesIO(data)) == expected


@pytest.mark.parametrize(("size", "expected"), SMALL_GOLDENS, ids=[str(n) for n, _ in SMALL_GOLDENS])
def test_deep_dag_goldens_with_small_parameters(size: int, expected: str) -> None:
    data = _gen(size)
    for step in (1, 7, 16, 33, max(size, 1)):
        builder = CidBuilder(chunk_size=16, max_links=3)
        for i in range(0, size, step):
            builder.update(data[i : i + step])
        assert builder.cid() == expected, step


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 1400), cuts=st.lists(st.integers(0, 1400), max_size=12))
def test_split_points_do_not_change_the_cid(size: int, cuts: list[int]) -> None:
    data = _gen(size)
    whole = CidBuilder(chunk_size=16, max_links=3)
    whole.update(data)
    pieces = CidBuilder(chunk_size=16, max_links=3)
    bounds = sorted({0, size, *(c for c in cuts if c <= size)})
    for a, b in zip(bounds, bounds[1:], strict=False):
        pieces.update(data[a:b])
    pieces.update(b"")
    assert pieces.cid() == whole.cid()


def test_different_content_gives_different_cid() -> None:
    data = bytearray(_gen(C + 10))
    before = cid_for_bytes(bytes(data))
    data[C + 3] ^= 1
    assert cid_for_bytes(bytes(data)) != before


def test_builder_is_finished_after_cid() -> None:
    builder = CidBuilder()
    builder.update(b"abc")
    first = builder.cid()
    assert builder.cid() == first
    with pytest.raises(RuntimeError):
        builder.update(b"d")


def test_cid_for_file_streams(tmp_path) -> None:
    size, expected = KUBO_GOLDENS[7]  # 174 chunks + 1 byte: two DAG levels, ~45 MB
    path = tmp_path / "big.bin"
    path.write_bytes(_gen(size))
    tracemalloc.start()
    try:
        got = cid_for_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == expected
    assert peak < 4 * MIB, f"cid_for_file held {peak} bytes at once"


def test_cid_for_file_small(tmp_path) -> None:
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello world\n")
    assert cid_for_file(path) == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    assert cid_for_file(str(path)) == cid_for_file(path)


HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
HELLO_V0_AS_V1 = "bafybeicg2rebjoofv4kbyovkw7af3rpiitvnl6i7ckcywaq6xjcxnc2mby"
HELLO_V0_AS_Z = "zdj7WaCPMsy3FP2whSwpFXHjDEaTVmjnddYSn5W2Gdn4aEZFj"
HELLO_RAW = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
HELLO_RAW_Z = "zb2rhi36Gc9GJWijLEL6zW45MBux5FcFv5gJmjXA7VAMozEXY"


@pytest.mark.parametrize(
    ("given_cid", "expected"),
    [
        (HELLO_RAW, HELLO_RAW),
        (HELLO_RAW.upper(), HELLO_RAW),
        (HELLO_RAW_Z, HELLO_RAW),
        (HELLO_V0, HELLO_V0_AS_V1),
        (HELLO_V0_AS_Z, HELLO_V0_AS_V1),
        (HELLO_V0_AS_V1, HELLO_V0_AS_V1),
        (
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
            "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y",
        ),
    ],
)
def test_normalize_cid(given_cid: str, expected: str) -> None:
    assert normalize_cid(given_cid) == expected
    assert is_cid(given_cid)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "b",
        "hello",
        HELLO_RAW[:-1],  # truncated digest
        HELLO_RAW + "a",  # trailing data
        HELLO_RAW[:10] + HELLO_RAW[10:].upper(),  # mixed case
        HELLO_RAW[:-1] + "1",  # '1' is not base32
        "f" + "01551220" + "00" * 32,  # base16 multibase is not supported
        HELLO_V0[:-1],  # CIDv0 of the wrong length
        HELLO_V0[:-1] + "0",  # '0' is not base58
        "z" + HELLO_RAW_Z[1:-1] + "l",  # 'l' is not base58
        "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4\n",
        "bafyreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",  # dag-cbor codec
        "bciqfwzmfhqdskcgurofm3fxwvdk7u6eyvk2pc2qzhmxjdcj3z53ev5i",  # CIDv2-ish junk
        "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei5",  # non-canonical trailing bits
    ],
)
def test_normalize_rejects_garbage(garbage: str) -> None:
    with pytest.raises(ValueError):
        normalize_cid(garbage)
    assert not is_cid(garbage)


def test_is_cid_on_non_strings() -> None:
    assert not is_cid(None)
    assert not is_cid(b"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
    assert not is_cid(123)


def test_builder_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        CidBuilder(chunk_size=0)
    with pytest.raises(ValueError):
        CidBuilder(max_links=1)
