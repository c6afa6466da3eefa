"""RFC 3161 timestamps of signed tree heads, against a real `openssl ts` TSA on loopback."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from tsa_fixtures import *  # noqa: F401,F403
from tsa_fixtures import MESSAGE, SECRET_BODY, Tsa

from webapp.evidence.timestamps import TimestampError, request_timestamp, verify_timestamp


@pytest.fixture(scope="session")
def token(tsa: Tsa) -> bytes:
    """One real token over MESSAGE, shared by the verification tests."""
    with requests.Session() as session:
        return request_timestamp(tsa.url(), MESSAGE, timeout=10, session=session)


def test_real_token_verifies_and_is_recent(tsa: Tsa, token: bytes) -> None:
    """A fresh token verifies (with and without the CA) and genTime is about now."""
    gen_time = verify_timestamp(token, MESSAGE)
    assert gen_time.tzinfo is not None
    assert gen_time.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - gen_time) < timedelta(minutes=1)
    assert verify_timestamp(token, MESSAGE, ca_certificates_pem=tsa.ca_pem.read_bytes()) == gen_time


def test_token_is_bare_timestamptoken(token: bytes) -> None:
    """We store the CMS ContentInfo (id-signedData), not the whole TimeStampResp."""
    from asn1crypto import cms

    info = cms.ContentInfo.load(token)
    assert info["content_type"].native == "signed_data"
    assert info["content"]["encap_content_info"]["content_type"].native == "tst_info"
    # certReq plus `certs` in the config: TSA cert and CA cert, in OpenSSL's (non-DER) order,
    # which is the case rfc3161-client's strict parser cannot read without our re-sorting.
    assert len(info["content"]["certificates"]) == 2


def test_openssl_verifies_our_token(tsa: Tsa, token: bytes, tmp_path: Path) -> None:
    """`openssl ts -verify -token_in` accepts the token our client returned."""
    (tmp_path / "msg.bin").write_bytes(MESSAGE)
    (tmp_path / "token.der").write_bytes(token)
    proc = tsa.openssl_verify(tmp_path / "msg.bin", tmp_path / "token.der")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert b"Verification: OK" in proc.stdout


def test_rejects_different_message(tsa: Tsa, token: bytes) -> None:
    """The token does not vouch for any other bytes, with or without the CA."""
    with pytest.raises(TimestampError):
        verify_timestamp(token, MESSAGE + b"x")
    with pytest.raises(TimestampError):
        verify_timestamp(token, MESSAGE + b"x", ca_certificates_pem=tsa.ca_pem.read_bytes())


def test_other_ca_fails(tsa: Tsa, token: bytes) -> None:
    """A chain to a different root is not accepted."""
    # The token embeds the real root (`certs` in the config), so this also catches a verifier
    # that trusts certificates from inside the token (rfc3161-client <= 1.0.8 did).
    with pytest.raises(TimestampError, match="signature"):
        verify_timestamp(token, MESSAGE, ca_certificates_pem=tsa.other_ca_pem.read_bytes())


def test_tampered_signature_fails_with_ca(tsa: Tsa, token: bytes) -> None:
    """Flipping a bit of the signature (the token's last bytes) is caught by the CA check."""
    tampered = token[:-1] + bytes([token[-1] ^ 0x01])
    with pytest.raises(TimestampError):
        verify_timestamp(tampered, MESSAGE, ca_certificates_pem=tsa.ca_pem.read_bytes())


@pytest.mark.parametrize("junk", [b"", b"\x30\x03\x02\x01\x00", b"not der at all"])
def test_malformed_token(junk: bytes) -> None:
    """Non-token bytes raise TimestampError, not a parser exception."""
    with pytest.raises(TimestampError):
        verify_timestamp(junk, MESSAGE)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/status500", "HTTP 500"),
        ("/garbage", "unreadable"),
        ("/wrong-type", "content type"),
        ("/replay", "nonce"),
        ("/reject", "refused"),
    ],
)
def test_client_errors(tsa: Tsa, path: str, expected: str) -> None:
    """Each kind of bad answer becomes a plain TimestampError without the body's text."""
    with pytest.raises(TimestampError, match=expected) as excinfo:
        request_timestamp(tsa.url(path), MESSAGE, timeout=5)
    assert SECRET_BODY.decode() not in str(excinfo.value)


def test_unreachable(tsa: Tsa) -> None:
    """A closed loopback port gives TimestampError."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The port was free a moment ago and nothing listens on it now.
    with pytest.raises(TimestampError, match="could not reach"):
        request_timestamp(f"http://127.0.0.1:{port}/tsa", MESSAGE, timeout=2)


def test_unreadable_ca_bundle(token: bytes) -> None:
    """A CA bundle that is not PEM certificates is an error, not a silent pass."""
    with pytest.raises(TimestampError, match="CA certificates"):
        verify_timestamp(token, MESSAGE, ca_certificates_pem=b"not a certificate")
