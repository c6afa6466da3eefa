"""Encryption at rest (Fernet) and fingerprints (HMAC-SHA256) of personal identifiers and keys."""

from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class DecryptionError(RuntimeError):
    """A stored secret could not be decrypted with any configured key."""


def _fernet(keys: list[str] | None = None) -> MultiFernet:
    keys = keys if keys is not None else current_app.config["DESK_ENCRYPTION_KEYS"]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(plaintext: str, *, keys: list[str] | None = None) -> str:
    """Encrypt text with the current (first) key."""
    return _fernet(keys).encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str, *, keys: list[str] | None = None) -> str:
    """Decrypt text encrypted under any configured key."""
    try:
        return _fernet(keys).decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise DecryptionError(
            "a stored secret cannot be decrypted with DESK_ENCRYPTION_KEYS; "
            "was a key removed before `desk keys rotate` ran?"
        ) from None


def rotate(token: str, *, keys: list[str] | None = None) -> str:
    """Re-encrypt a stored secret under the current key."""
    try:
        return _fernet(keys).rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise DecryptionError("a stored secret cannot be decrypted with any key") from None


def fingerprint(kind: str, value: str, *, key: str | None = None) -> str:
    """HMAC-SHA256 of `kind:value` under DESK_FINGERPRINT_KEY: stable, not reversible."""
    key = key if key is not None else current_app.config["DESK_FINGERPRINT_KEY"]
    message = f"{kind}:{value}".encode()
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy random token (session ids, API tokens)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


SUBJECT_KINDS = ("user_id", "identity")


def subject_fingerprint(kind: str, value: str | int, *, key: str | None = None) -> str:
    """The fingerprint of a data subject: the same for uploads, lookups and corrections.

    user_ids are fingerprinted in canonical decimal form (so "007" and 7 match); identities
    exactly as given, because Heap's identities are case-sensitive.
    """
    if kind not in SUBJECT_KINDS:
        raise ValueError(f"unknown subject kind {kind!r}")
    # str.strip() removes every Unicode space Heap's rule strips; int() alone does not (U+001C).
    text = str(int(str(value).strip())) if kind == "user_id" else str(value)
    return fingerprint(kind, text, key=key)
