"""An RFC 6962 (Certificate Transparency) Merkle tree: tree heads, inclusion and consistency proofs.

Hashing follows RFC 6962 section 2.1 exactly, so any CT-compatible verifier checks our proofs:

* the hash of an empty tree is ``SHA-256("")``;
* a leaf hashes as ``SHA-256(0x00 || data)``;
* an interior node as ``SHA-256(0x01 || left || right)``, where the left subtree holds the
  largest power of two strictly smaller than the number of leaves.

The 0x00/0x01 prefixes keep a leaf from passing for an interior node (second pre-image).
Proof generation is the recursive PATH/PROOF of RFC 6962 section 2.1.1-2.1.2; verification
is the iterative algorithm of RFC 9162 section 2.1.3.2 and 2.1.4.2, which checks a proof
without the tree. Leaves are passed around already hashed (``leaf_hash``), so a log can
store 32 bytes per entry and rebuild any historical root from them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
#: Root of the empty tree: SHA-256 of the empty string (RFC 6962 section 2.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """MTH of a one-leaf tree: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree hash of a list of leaf hashes.

    Iterative, bottom-up: pairing neighbours level by level and carrying a lone last node up
    unchanged builds exactly RFC 6962's left-heavy tree, without recursion depth limits.
    """
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) of RFC 6962 section 2.1.1: the audit path of leaf ``index``."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} outside a tree of {n} leaves")
    path: list[bytes] = []
    lo, hi = 0, n
    # Walk down from the root; siblings are collected top-down, the proof is bottom-up.
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(root(leaves[lo + k : hi]))
            hi = lo + k
        else:
            path.append(root(leaves[lo : lo + k]))
            lo = lo + k
    path.reverse()
    return path


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 section 2.1.2: proves the first ``old_size`` leaves are a prefix."""
    n = len(leaves)
    if not 0 < old_size <= n:
        raise ValueError(f"old size {old_size} outside 1..{n}")
    return _subproof(old_size, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [root(leaves)]
    k = _split(n)
    if m <= k:
        return _subproof(m, leaves[:k], whole) + [root(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [root(leaves[:k])]


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Fold an audit path into the root it implies (RFC 9162 section 2.1.3.2).

    Raises:
        ValueError: the index or size is impossible, or the path has the wrong length.
    """
    if not 0 <= index < size:
        raise ValueError("leaf index outside the tree")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if len(p) != HASH_SIZE:
            raise ValueError("proof hash of the wrong length")
        if sn == 0:
            raise ValueError("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("inclusion proof too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """True when ``leaf`` is leaf ``index`` of the tree of ``size`` leaves whose root is given."""
    try:
        return root_from_inclusion(index, size, leaf, proof) == expected_root
    except ValueError:
        return False


def verify_consistency(old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> bool:
    """True when the tree of ``old_size`` leaves (``old_root``) is a prefix of the newer tree.

    RFC 9162 section 2.1.4.2; sizes equal need an empty proof and equal roots.
    """
    if not 0 < old_size <= new_size or any(len(p) != HASH_SIZE for p in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    # When old_size is a power of two its root is a node of the new tree, so the proof
    # omits it; put it back so the one loop below handles both cases.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class Tree:
    """A tree kept level by level, for many proofs against one tree size.

    ``levels[0]`` are the leaves; each level pairs neighbours and carries a lone last node up
    unchanged, which is exactly RFC 6962's left-heavy tree. Building costs n hashes once;
    each inclusion proof is then log2(n) look-ups instead of the O(n) recursive PATH.
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.levels: list[list[bytes]] = [list(leaves)]
        level = self.levels[0]
        while len(level) > 1:
            nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            self.levels.append(nxt)
            level = nxt

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def root(self) -> bytes:
        return self.levels[-1][0] if self.size else EMPTY_ROOT

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The same audit path as :func:`inclusion_proof`, from the stored levels."""
        if not 0 <= index < self.size:
            raise ValueError(f"leaf index {index} outside a tree of {self.size} leaves")
        path = []
        i = index
        for level in self.levels[:-1]:
            sibling = i ^ 1
            # A node without a right sibling is carried up: no hash at this level.
            if sibling < len(level):
                path.append(level[sibling])
            i >>= 1
        return path


def roots_at(leaves: Iterable[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """Tree heads of several prefixes of one leaf stream, in one pass (O(n + k log n)).

    The stack holds the perfect subtrees of the prefix read so far, largest first; RFC 6962's
    root of that prefix is those subtrees folded from the right.
    """
    wanted = set(sizes)
    out: dict[int, bytes] = {0: EMPTY_ROOT} if 0 in wanted else {}
    stack: list[tuple[int, bytes]] = []
    for n, leaf in enumerate(leaves, start=1):
        h, height = leaf, 0
        while stack and stack[-1][0] == height:
            h = node_hash(stack.pop()[1], h)
            height += 1
        stack.append((height, h))
        if n in wanted:
            r = stack[-1][1]
            for _, left in reversed(stack[:-1]):
                r = node_hash(left, r)
            out[n] = r
    return out


# -- stored interior nodes ----------------------------------------------------------------------
#
# A log that stores every complete (perfect) subtree's hash never needs its leaves again to
# answer for its root, an audit path or a consistency proof. Node ``(level, index)`` is the
# root of the perfect subtree over leaves ``[index << level, (index + 1) << level)``; level 0
# nodes are the leaf hashes. RFC 6962's tree over ``[lo, hi)`` is the fold from the right of
# the aligned perfect subtrees that cover the range, largest first (:func:`blocks`), because
# every range its recursion takes starts at a multiple of a power of two at least its length.

Node = tuple[int, int]
#: Reads stored nodes in bulk: given coordinates, their hashes (every one must be present).
Fetch = Callable[[set[Node]], dict[Node, bytes]]


def blocks(lo: int, hi: int) -> list[Node]:
    """The aligned perfect subtrees covering leaves ``[lo, hi)``, left to right (at most 2 log n)."""
    out: list[Node] = []
    while lo < hi:
        level = (lo & -lo).bit_length() - 1 if lo else (hi - lo).bit_length() - 1
        while (1 << level) > hi - lo:
            level -= 1
        out.append((level, lo >> level))
        lo += 1 << level
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """RFC 6962's root over consecutive perfect subtrees, largest first: fold from the right."""
    if not hashes:
        return EMPTY_ROOT
    r = hashes[-1]
    for h in reversed(hashes[:-1]):
        r = node_hash(h, r)
    return r


def completed_nodes(size: int, leaves: Sequence[bytes], fetch: Fetch) -> dict[Node, bytes]:
    """The interior nodes completed by appending ``leaves`` to a tree of ``size`` leaves.

    Reads at most the old tree's frontier (``blocks(0, size)``, log n nodes) in one fetch;
    costs one hash per new interior node (amortised one per leaf).
    """
    known = fetch(set(blocks(0, size))) if size else {}
    new: dict[Node, bytes] = {}
    for j, leaf in enumerate(leaves):
        idx, level, h = size + j, 0, leaf
        known[(0, idx)] = leaf
        while idx & 1:  # a right child completes its parent
            h = node_hash(known[(level, idx - 1)], h)
            level, idx = level + 1, idx >> 1
            known[(level, idx)] = new[(level, idx)] = h
    return new


def _path_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots form PATH(index, D[size]), bottom-up."""
    ranges = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()
    return ranges


def _proof_ranges(m: int, lo: int, hi: int, whole: bool) -> list[tuple[int, int]]:
    """The leaf ranges whose roots form SUBPROOF(m, D[lo:hi], whole), in proof order."""
    if m == hi - lo:
        return [] if whole else [(lo, hi)]
    k = _split(hi - lo)
    if m <= k:
        return _proof_ranges(m, lo, lo + k, whole) + [(lo + k, hi)]
    return _proof_ranges(m - k, lo + k, hi, False) + [(lo, lo + k)]


class StoredTree:
    """Tree heads and proofs of a log of ``size`` leaves, read from its stored nodes.

    Each answer reads O(log n) nodes (a handful of look-ups for the whole request: the
    coordinates are known before any hash is read) and computes O(log n) hashes. Equal, byte
    for byte, to :func:`root`, :func:`inclusion_proof` and :func:`consistency_proof` over the
    leaves (tested with hypothesis).
    """

    def __init__(self, size: int, fetch: Fetch) -> None:
        self.size = size
        self.fetch = fetch

    def _roots(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        need = {b for lo, hi in ranges for b in blocks(lo, hi)}
        got = self.fetch(need) if need else {}
        return [fold([got[b] for b in blocks(lo, hi)]) for lo, hi in ranges]

    def root(self, size: int | None = None) -> bytes:
        n = self.size if size is None else size
        if not 0 <= n <= self.size:
            raise ValueError(f"size {n} outside 0..{self.size}")
        return self._roots([(0, n)])[0] if n else EMPTY_ROOT

    def inclusion_proofs(self, indexes: Sequence[int]) -> list[list[bytes]]:
        """Audit paths of several leaves at once (one bulk read of their nodes)."""
        for i in indexes:
            if not 0 <= i < self.size:
                raise ValueError(f"leaf index {i} outside a tree of {self.size} leaves")
        per = [_path_ranges(i, self.size) for i in indexes]
        flat = self._roots([r for ranges in per for r in ranges])
        out, k = [], 0
        for ranges in per:
            out.append(flat[k : k + len(ranges)])
            k += len(ranges)
        return out

    def inclusion_proof(self, index: int) -> list[bytes]:
        return self.inclusion_proofs([index])[0]

    def consistency_proof(self, old_size: int) -> list[bytes]:
        if not 0 < old_size <= self.size:
            raise ValueError(f"old size {old_size} outside 1..{self.size}")
        return self._roots(_proof_ranges(old_size, 0, self.size, True))
