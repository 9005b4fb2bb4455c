"""The beat's HMAC from the session's kept SHA-256 states (``envelope._pads``, ``_hmac_hex``)
is ``hmac.new(key, message, "sha256")``'s, for any key length (shorter, equal to and longer
than SHA-256's 64-byte block) and any message."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from plugins.anti_idle import envelope


@given(st.binary(max_size=200), st.binary(max_size=500))
def test_the_kept_states_give_the_standard_hmac(key, message):
    keyed = (key, *envelope._pads(key))
    assert envelope._hmac_hex(keyed, message) == hmac.new(key, message, hashlib.sha256).hexdigest().encode()
    # the kept states are copied, never consumed: the same answer again
    assert envelope._hmac_hex(keyed, message) == hmac.new(key, message, hashlib.sha256).hexdigest().encode()


def test_block_sized_keys():
    for size in (63, 64, 65):
        key = bytes(range(size))
        keyed = (key, *envelope._pads(key))
        assert envelope._hmac_hex(keyed, b"beat") == hmac.new(key, b"beat", hashlib.sha256).hexdigest().encode()


_PIECES = st.sampled_from(
    [b',"sig":"', b'"sig":"', b"a" * 64, b"0123456789abcdef" * 4, b'"}', b"}", b" ", b"\n", b"x", b'"', b","]
)


@given(st.lists(_PIECES, max_size=12).map(b"".join))
def test_the_signature_is_found_where_the_search_finds_it(raw):
    found, searched = envelope.sig_tail(raw), envelope.SIG_TAIL.search(raw)
    assert (found and (found.start(), found.group(1))) == (searched and (searched.start(), searched.group(1)))
