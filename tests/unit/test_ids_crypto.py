"""Stable ids from content, and PHI encryption with blind indexes."""

import pytest

from core.crypto import Cipher, DecryptionError
from core.ids import body_fingerprint, case_id, message_key, normalise_message_id

RAW = b"From: a@example.com\r\nSubject: Hi\r\nMessage-ID: <x1@example.com>\r\n\r\nPlease refill.\r\n"


@pytest.mark.parametrize(
    "value, expected",
    [("<abc@host>", "<abc@host>"), ("  <abc@host> (comment)", "<abc@host>"), ("abc@host", "<abc@host>"),
     ("", None), (None, None), ("<>", None)],
)
def test_normalise_message_id(value, expected):
    assert normalise_message_id(value) == expected


def test_redelivery_with_new_transport_headers_keeps_the_key():
    redelivered = b"Received: from mx2\r\n" + RAW
    fp1 = body_fingerprint(RAW, "a@example.com", None, "Hi")
    fp2 = body_fingerprint(redelivered, "a@example.com", None, "Hi")
    assert message_key("<x1@example.com>", fp1) == message_key("<x1@example.com>", fp2)


def test_reused_message_id_with_other_content_gets_another_key():
    other = RAW.replace(b"Please refill.", b"Different mail.")
    k1 = message_key("<x1@example.com>", body_fingerprint(RAW, "a@example.com", None, "Hi"))
    k2 = message_key("<x1@example.com>", body_fingerprint(other, "a@example.com", None, "Hi"))
    assert k1 != k2 and k1.startswith("<x1@example.com>#")


def test_case_id_is_deterministic_and_scoped_by_mailbox():
    assert case_id("a", "k") == case_id("a", "k") != case_id("b", "k")


def test_cipher_round_trip_and_wrong_key():
    key = Cipher.generate_key()
    cipher = Cipher(key)
    token = cipher.encrypt("Mette Holm")
    assert "Mette" not in token and cipher.decrypt(token) == "Mette Holm"
    assert cipher.encrypt(None) is None and cipher.decrypt(None) is None
    with pytest.raises(DecryptionError):
        Cipher(Cipher.generate_key()).decrypt(token)


def test_blind_index_normalises_and_depends_on_key():
    cipher = Cipher(Cipher.generate_key())
    assert cipher.blind_index(" Anna@Example.COM ") == cipher.blind_index("anna@example.com")
    assert cipher.blind_index("anna@example.com") != Cipher(Cipher.generate_key()).blind_index("anna@example.com")
