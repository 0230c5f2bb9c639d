"""What an erased lead keeps of an id: a digest keyed with the installation's erasure key, so
nobody with the database alone can test a list of guessed emails or ids against it."""

from __future__ import annotations

import hashlib

from bot.domain.erasure import ErasureKey, digest_key_id, unkeyed_tombstone

KEY = ErasureKey("an-installations-secret-of-40-characters!")
EMAIL = "Priya.Raman@Northwind.example"


def test_the_digest_is_keyed_and_not_a_hash_of_the_id() -> None:
    digest = KEY.tombstone(EMAIL)
    assert digest == KEY.tombstone(EMAIL)  # the same id sent again is known
    for guess in (EMAIL, EMAIL.lower(), EMAIL.strip().lower()):
        assert hashlib.sha256(guess.encode()).hexdigest()[:16] not in digest
        assert digest != unkeyed_tombstone(guess)
    assert ErasureKey("another-installations-secret-of-40-chars").tombstone(EMAIL) != digest
    # It names its kind and key, and fits the CRM id's column (64 characters).
    assert digest.startswith(f"erased:hmac:{KEY.key_id}:") and len(digest) <= 64


def test_a_digest_from_before_the_key_is_still_looked_for() -> None:
    assert KEY.tombstones(EMAIL) == (KEY.tombstone(EMAIL), unkeyed_tombstone(EMAIL))
    assert unkeyed_tombstone("451") == "erased:" + hashlib.sha256(b"451").hexdigest()[:48]


def test_a_keyed_digest_names_its_key_and_no_other_value_does() -> None:
    """What each erasure records for the start-up check: the key its digests were made with."""
    assert digest_key_id(KEY.tombstone(EMAIL)) == KEY.key_id
    for value in (unkeyed_tombstone(EMAIL), ErasureKey(None).tombstone(EMAIL), EMAIL, "451"):
        assert digest_key_id(value) is None


def test_the_key_stays_out_of_repr() -> None:
    assert KEY.secret not in repr(KEY)
