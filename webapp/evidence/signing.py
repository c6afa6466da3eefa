"""The desk's Ed25519 signing key: where it comes from, its public half, signatures.

The private key comes from DESK_SIGNING_KEY (PEM, or base64 of the 32 raw bytes) or, on a
single SQLite host, is generated once into instance/signing_key (mode 0600) like the other
secrets. It signs audit checkpoints and evidence-pack manifests; it is never stored in the
database or logged.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import Flask, current_app

from webapp.config import read_secret_file
from webapp.evidence.verifier_script import key_id

KEY_FILE = "signing_key"


class SigningKeyError(RuntimeError):
    """The signing key is missing or unusable; the message says how to fix it."""


def _new_key_text() -> str:
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode("ascii")


def parse_private_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8) or base64 of its 32 raw bytes."""
    text = text.strip()
    problem = (
        "DESK_SIGNING_KEY must be an Ed25519 private key: PEM (PKCS#8) or base64 of its 32 raw "
        "bytes (`openssl genpkey -algorithm ed25519` makes one)."
    )
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        except (ValueError, TypeError):
            raise SigningKeyError(problem) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(problem)
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError(problem) from None
    if len(raw) != 32:
        raise SigningKeyError(problem)
    return Ed25519PrivateKey.from_private_bytes(raw)


def signing_key(app: Flask | None = None) -> Ed25519PrivateKey:
    """The desk's private key, loaded on first use (never at import or in create_app)."""
    app = app or current_app._get_current_object()
    key = app.extensions.get("desk_signing_key")
    if key is not None:
        return key
    text = (app.config.get("DESK_SIGNING_KEY") or os.environ.get("DESK_SIGNING_KEY", "")).strip()
    if not text:
        if app.config["DATABASE_URL"].startswith("postgresql"):
            # Like the other secrets: hosts sharing one database must share one key.
            raise SigningKeyError(
                "With PostgreSQL, set DESK_SIGNING_KEY in the environment of every host; a "
                "key generated in instance/ only suits a single-host SQLite install."
            )
        text = read_secret_file(Path(app.instance_path), KEY_FILE, _new_key_text)
    key = parse_private_key(text)
    app.extensions["desk_signing_key"] = key
    return key


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of the key's public half."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class PublicKey:
    """The public half of the signing key, in the forms people and tools need."""

    raw: bytes

    @property
    def key_id(self) -> str:
        return key_id(self.raw)

    @property
    def pem(self) -> str:
        key = Ed25519PublicKey.from_public_bytes(self.raw)
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def as_dict(self) -> dict:
        return {
            "algorithm": "Ed25519",
            "key_id": self.key_id,
            "public_key_hex": self.raw.hex(),
            "public_key_pem": self.pem,
        }


def public_key(app: Flask | None = None) -> PublicKey:
    """The desk's public key (SigningKeyError when no key is configured)."""
    return PublicKey(raw_public_key(signing_key(app)))


def sign(message: bytes, app: Flask | None = None) -> str:
    """An Ed25519 signature of `message` with the desk's key, hex."""
    return signing_key(app).sign(message).hex()


def key_id_or_none(app: Flask | None = None) -> str | None:
    """The signing key's id for documents that merely mention it (None when unconfigured)."""
    try:
        return public_key(app).key_id
    except SigningKeyError:
        return None


def verify_signature(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` under `public`."""
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
