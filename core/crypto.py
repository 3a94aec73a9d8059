"""Field-level encryption for PHI at rest, and keyed hashes for looking encrypted values up."""

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken


class DecryptionError(ValueError):
    """A stored value could not be decrypted: wrong key or tampered ciphertext."""


class Cipher:
    """Fernet (AES-128-CBC + HMAC-SHA256) for values, HMAC-SHA256 for blind indexes."""

    def __init__(self, key: bytes | str) -> None:
        key_bytes = key.encode() if isinstance(key, str) else key
        self._fernet = Fernet(key_bytes)
        # A separate sub-key for lookups so the index never reveals the encryption key.
        self._index_key = hashlib.sha256(b"rxinbox-blind-index:" + base64.urlsafe_b64decode(key_bytes)).digest()

    @staticmethod
    def generate_key() -> str:
        """A new random key, as the text to keep in RXINBOX_SECRET_KEY or the key file."""
        return Fernet.generate_key().decode()

    def encrypt(self, value: str | None) -> str | None:
        if value is None:
            return None
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str | None) -> str | None:
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError) as exc:
            raise DecryptionError("stored value cannot be decrypted with this key") from exc

    def blind_index(self, value: str | None) -> str | None:
        """Deterministic keyed hash of a normalised value (e-mail address), for equality lookups."""
        if value is None:
            return None
        normalised = value.strip().lower().encode("utf-8")
        return hmac.new(self._index_key, normalised, hashlib.sha256).hexdigest()
