"""RFC 6962 Merkle tree: the Certificate Transparency test vectors, then properties over random trees."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from plugins.credit_bank.proofs import merkle

# The eight leaves and the tree heads of sizes 0..8 used by Certificate Transparency's
# reference implementation (merkle_tree_test), with its audit paths and consistency proofs.
LEAF_DATA = [
    bytes.fromhex(h)
    for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
LEAVES = [merkle.leaf_hash(d) for d in LEAF_DATA]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, audit path)
INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


def h(x: str) -> bytes:
    return bytes.fromhex(x)


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH exactly as RFC 6962 section 2.1 writes it (recursive), to check the iterative one."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def test_tree_heads_match_rfc6962_vectors() -> None:
    assert merkle.EMPTY_ROOT.hex() == ROOTS[0]
    for n in range(9):
        assert merkle.root(LEAVES[:n]).hex() == ROOTS[n], n


def test_inclusion_vectors() -> None:
    for index, size, path in INCLUSION:
        assert [p.hex() for p in merkle.inclusion_proof(index, LEAVES[:size])] == path
        assert merkle.verify_inclusion(index, size, LEAVES[index], [h(p) for p in path], h(ROOTS[size]))
        # The same proof for a neighbouring leaf, or against another root, fails.
        hashes = [h(p) for p in path]
        assert not merkle.verify_inclusion(index, size, LEAVES[(index + 1) % size], hashes, h(ROOTS[size]))
        assert not merkle.verify_inclusion(index, size, LEAVES[index], hashes, h(ROOTS[size - 1]))


def test_consistency_vectors() -> None:
    for old, new, proof in CONSISTENCY:
        assert [p.hex() for p in merkle.consistency_proof(old, LEAVES[:new])] == proof
        assert merkle.verify_consistency(old, new, [h(p) for p in proof], h(ROOTS[old]), h(ROOTS[new]))
        if old != new:
            wrong_old = h(ROOTS[old - 1] if old > 1 else ROOTS[2])
            assert not merkle.verify_consistency(old, new, [h(p) for p in proof], wrong_old, h(ROOTS[new]))


def test_malformed_proofs_are_refused_not_raised() -> None:
    path = [h(p) for p in INCLUSION[0][2]]
    assert not merkle.verify_inclusion(0, 8, LEAVES[0], path[:-1], h(ROOTS[8]))  # too short
    assert not merkle.verify_inclusion(0, 8, LEAVES[0], [*path, path[0]], h(ROOTS[8]))  # too long
    assert not merkle.verify_inclusion(8, 8, LEAVES[0], path, h(ROOTS[8]))  # index outside
    assert not merkle.verify_inclusion(0, 8, LEAVES[0], [b"short", *path[1:]], h(ROOTS[8]))
    assert not merkle.verify_consistency(0, 8, [], h(ROOTS[0]), h(ROOTS[8]))
    assert not merkle.verify_consistency(5, 4, [], h(ROOTS[5]), h(ROOTS[4]))
    assert not merkle.verify_consistency(1, 1, [LEAVES[0]], h(ROOTS[1]), h(ROOTS[1]))


leaf_lists = st.lists(st.binary(max_size=8), min_size=1, max_size=70).map(lambda xs: [merkle.leaf_hash(x) for x in xs])


@given(leaf_lists)
def test_root_equals_the_recursive_definition(leaves: list[bytes]) -> None:
    assert merkle.root(leaves) == reference_root(leaves)


@given(leaf_lists, st.data())
def test_every_inclusion_proof_verifies_and_a_changed_one_does_not(leaves: list[bytes], data: st.DataObject) -> None:
    n = len(leaves)
    root = merkle.root(leaves)
    i = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(i, leaves)
    assert merkle.verify_inclusion(i, n, leaves[i], proof, root)
    other = merkle.leaf_hash(b"not in the tree")
    assert not merkle.verify_inclusion(i, n, other, proof, root)
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = list(proof)
        bad[j] = bytes([bad[j][0] ^ (1 << (bit % 8))]) + bad[j][1:]
        assert not merkle.verify_inclusion(i, n, leaves[i], bad, root)
    wrong_index = data.draw(st.integers(0, n - 1))
    if leaves[wrong_index] != leaves[i] and wrong_index != i:
        assert not merkle.verify_inclusion(wrong_index, n, leaves[i], proof, root)


@given(leaf_lists, st.data())
def test_consistency_between_any_two_sizes(leaves: list[bytes], data: st.DataObject) -> None:
    n = len(leaves)
    m = data.draw(st.integers(1, n))
    proof = merkle.consistency_proof(m, leaves)
    old_root, new_root = merkle.root(leaves[:m]), merkle.root(leaves)
    assert merkle.verify_consistency(m, n, proof, old_root, new_root)
    # A history rewritten inside the first m leaves no longer matches the old tree head.
    k = data.draw(st.integers(0, m - 1))
    forged = list(leaves)
    forged[k] = merkle.leaf_hash(b"forged" + leaves[k])
    forged_proof = merkle.consistency_proof(m, forged)
    assert not merkle.verify_consistency(m, n, forged_proof, old_root, merkle.root(forged))
    if proof:
        bad = list(proof)
        bad[-1] = merkle.leaf_hash(bad[-1])
        assert not merkle.verify_consistency(m, n, bad, old_root, new_root)


@given(leaf_lists, st.data())
def test_level_tree_gives_the_rfc_path(leaves: list[bytes], data: st.DataObject) -> None:
    tree = merkle.Tree(leaves)
    assert tree.root() == merkle.root(leaves) and tree.size == len(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1))
    assert tree.inclusion_proof(i) == merkle.inclusion_proof(i, leaves)


def test_level_tree_of_the_vectors() -> None:
    for index, size, path in INCLUSION:
        assert [p.hex() for p in merkle.Tree(LEAVES[:size]).inclusion_proof(index)] == path
    assert merkle.Tree([]).root() == merkle.EMPTY_ROOT


@given(leaf_lists)
def test_roots_of_every_prefix_in_one_pass(leaves: list[bytes]) -> None:
    sizes = range(len(leaves) + 1)
    assert merkle.roots_at(leaves, sizes) == {n: merkle.root(leaves[:n]) for n in sizes}
    assert merkle.roots_at(LEAVES, [3, 8]) == {3: h(ROOTS[3]), 8: h(ROOTS[8])}


# -- stored interior nodes ------------------------------------------------------------------


def _store(leaves: list[bytes], chunks: list[int]) -> dict[merkle.Node, bytes]:
    """Append ``leaves`` in chunks of the given sizes, keeping only what a log stores."""
    nodes: dict[merkle.Node, bytes] = {}
    n = 0
    sizes = iter(chunks)
    while n < len(leaves):
        k = max(1, next(sizes, len(leaves)))
        part = leaves[n : n + k]

        def fetch(need: set[merkle.Node]) -> dict[merkle.Node, bytes]:
            return {c: nodes[c] for c in need}

        nodes.update(merkle.completed_nodes(n, part, fetch))
        nodes.update({(0, n + i): leaf for i, leaf in enumerate(part)})
        n += len(part)
    return nodes


@given(
    st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=140),
    st.lists(st.integers(1, 40), max_size=20),
    st.data(),
)
def test_stored_node_proofs_equal_proofs_from_a_full_rebuild(
    leaves: list[bytes], chunks: list[int], data: st.DataObject
) -> None:
    nodes = _store(leaves, chunks)
    reads: list[int] = []

    def fetch(need: set[merkle.Node]) -> dict[merkle.Node, bytes]:
        reads.append(len(need))
        return {c: nodes[c] for c in need}

    n = len(leaves)
    # Only complete subtrees are stored: a node never needs a later leaf.
    assert all((i + 1) << lvl <= n for lvl, i in nodes)
    tree = merkle.StoredTree(n, fetch)
    size = data.draw(st.integers(1, n))
    assert tree.root(size) == merkle.root(leaves[:size])
    index = data.draw(st.integers(0, n - 1))
    assert tree.inclusion_proof(index) == merkle.inclusion_proof(index, leaves)
    assert tree.consistency_proof(size) == merkle.consistency_proof(size, leaves)
    # O(log n) reads: never more than two blocks per proof range.
    assert max(reads) <= 2 * max(1, n.bit_length()) ** 2


def test_stored_tree_of_the_vectors() -> None:
    nodes = _store(LEAVES, [3, 1, 4])
    tree = merkle.StoredTree(len(LEAVES), lambda need: {c: nodes[c] for c in need})
    for size, expected in enumerate(ROOTS):
        assert tree.root(size).hex() == expected
    for index, size, path in INCLUSION:
        small = merkle.StoredTree(size, tree.fetch)
        assert [p.hex() for p in small.inclusion_proof(index)] == path
    for old, new, proof in CONSISTENCY:
        assert [p.hex() for p in merkle.StoredTree(new, tree.fetch).consistency_proof(old)] == proof
