"""RFC 3161 time-stamping of signed tree heads (client side)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import tsp as asn1_tsp
from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

__all__ = ["TimestampError", "request_timestamp", "verify_timestamp"]

SHA256_OID = "2.16.840.1.101.3.4.2.1"
QUERY_CONTENT_TYPE = "application/timestamp-query"
# RFC 3161 section 3.4 names "application/timestamp-reply"; some deployed TSAs still answer
# with the pre-RFC draft name, which carries the same DER body.
REPLY_CONTENT_TYPES = frozenset({"application/timestamp-reply", "application/timestamp-response"})
# A TimeStampResp is a few KiB even with a full certificate chain; the cap keeps a broken or
# hostile TSA from making us buffer an unbounded body.
MAX_RESPONSE_BYTES = 1024 * 1024
# asn1crypto parses lazily, so malformed input surfaces as any of these on first access.
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)


class TimestampError(Exception):
    """A time-stamp could not be obtained or did not verify."""


class _TimeStampResp(asn1_core.Sequence):
    """TimeStampResp as RFC 3161 defines it, with timeStampToken OPTIONAL."""

    # asn1crypto 1.5's tsp.TimeStampResp declares the token mandatory, so it cannot read
    # the rejection replies (status only) that a TSA sends when it refuses a request.
    _fields = [
        ("status", asn1_tsp.PKIStatusInfo),
        ("time_stamp_token", asn1_cms.ContentInfo, {"optional": True}),
    ]


@dataclass(frozen=True)
class _TokenInfo:
    """The TSTInfo fields we act on."""

    hash_oid: str
    digest: bytes
    gen_time: datetime
    nonce: int | None


def request_timestamp(
    url: str,
    message: bytes,
    *,
    timeout: float = 10,
    session: requests.Session | None = None,
) -> bytes:
    """Time-stamp SHA-256(message) at the TSA at url and return the DER TimeStampToken."""
    digest = hashlib.sha256(message).digest()
    # The builder hashes `message` itself and draws a random 64-bit nonce; certReq makes the
    # TSA embed its certificate so the stored token can be verified on its own later.
    try:
        tsq = (
            TimestampRequestBuilder()
            .data(message)
            .hash_algorithm(HashAlgorithm.SHA256)
            .nonce(nonce=True)
            .cert_request(cert_request=True)
            .build()
        )
    except ValueError as exc:
        # The builder refuses empty data; a signed tree head is never empty.
        raise TimestampError("cannot time-stamp an empty message") from exc

    http = session if session is not None else requests
    try:
        # No redirects: requests would turn a redirected POST into a body-less GET.
        with http.post(
            url,
            data=tsq.as_bytes(),
            headers={"Content-Type": QUERY_CONTENT_TYPE, "Accept": "application/timestamp-reply"},
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        ) as resp:
            status_code = resp.status_code
            content_type = resp.headers.get("Content-Type", "")
            body = _read_capped(resp) if status_code == 200 else b""
    except requests.RequestException as exc:
        raise TimestampError(
            f"could not reach the time-stamping authority ({type(exc).__name__})"
        ) from exc

    if status_code != 200:
        raise TimestampError(f"time-stamping authority answered HTTP {status_code}")
    if content_type.split(";", 1)[0].strip().lower() not in REPLY_CONTENT_TYPES:
        raise TimestampError("time-stamping authority answered with an unexpected content type")

    token = _token_from_reply(body)
    info = _token_info(token)
    # A missing or different nonce means the reply was not made for this request (replay).
    if info.nonce != tsq.nonce:
        raise TimestampError("time-stamp reply does not match our request (nonce differs)")
    if info.hash_oid != SHA256_OID or info.digest != digest:
        raise TimestampError("time-stamp reply covers a different message")
    return token


def verify_timestamp(
    token_der: bytes,
    message: bytes,
    *,
    ca_certificates_pem: bytes | None = None,
) -> datetime:
    """Check token_der covers SHA-256(message) and return its genTime in UTC."""
    info = _token_info(token_der)
    digest = hashlib.sha256(message).digest()
    if info.hash_oid != SHA256_OID or info.digest != digest:
        raise TimestampError("time-stamp token does not cover this message")
    # Without trust anchors this only shows the token names this message, not who signed it.
    if ca_certificates_pem is not None:
        _verify_signature(token_der, digest, ca_certificates_pem)
    return info.gen_time


def _read_capped(resp: requests.Response) -> bytes:
    """Read the response body, refusing anything over MAX_RESPONSE_BYTES."""
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(chunk_size=16384):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise TimestampError("time-stamping authority reply is too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _token_from_reply(body: bytes) -> bytes:
    """Return the TimeStampToken bytes of a granted TimeStampResp, exactly as the TSA sent them."""
    # asn1crypto, not rfc3161-client, parses replies: rfc3161-client's strict DER reader
    # rejects certificate sets that are not in DER sort order, which is what `openssl ts`
    # (and other TSAs) send whenever they include more than the signer certificate.
    try:
        reply = _TimeStampResp.load(body, strict=True)
        status = reply["status"]["status"].native
        fail_info = reply["status"]["fail_info"].native
        token = reply["time_stamp_token"]
        # dump() re-emits the bytes as received, so the stored token is the TSA's own.
        token_der = None if isinstance(token, asn1_core.Void) else token.dump()
    except _PARSE_ERRORS:
        raise TimestampError("time-stamping authority sent an unreadable reply") from None
    # Only plain "granted": "granted_with_mods" means the TSA changed what we asked for.
    if status != "granted":
        # failInfo is a fixed list of names; the free-text statusString is deliberately left out.
        reason = ", ".join(sorted(fail_info)) if fail_info else "no reason given"
        raise TimestampError(f"time-stamping authority refused the request ({status}: {reason})")
    if token_der is None:
        raise TimestampError("time-stamping authority granted the request but sent no token")
    return token_der


def _token_info(token_der: bytes) -> _TokenInfo:
    """Parse a DER TimeStampToken and return its TSTInfo fields."""
    try:
        content_info = asn1_cms.ContentInfo.load(token_der, strict=True)
        if content_info["content_type"].native != "signed_data":
            raise ValueError("not CMS SignedData")
        encap = content_info["content"]["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise ValueError("not a TSTInfo")
        tst_info = encap["content"].parsed
        imprint = tst_info["message_imprint"]
        info = _TokenInfo(
            hash_oid=imprint["hash_algorithm"]["algorithm"].dotted,
            digest=imprint["hashed_message"].native,
            gen_time=tst_info["gen_time"].native,
            nonce=tst_info["nonce"].native,
        )
    except _PARSE_ERRORS:
        raise TimestampError("time-stamp token is malformed") from None
    # GeneralizedTime in TSTInfo must be UTC ("Z"); normalise anyway so callers can compare.
    gen_time = info.gen_time
    if gen_time.tzinfo is None:
        gen_time = gen_time.replace(tzinfo=UTC)
    return _TokenInfo(info.hash_oid, info.digest, gen_time.astimezone(UTC), info.nonce)


def _as_verifiable_response(token_der: bytes) -> TimeStampResponse:
    """Wrap the token in a granted TimeStampResp that rfc3161-client's strict parser accepts."""
    # Adaptations, none touching signed bytes (the certificates field is outside the CMS
    # signature; eContent and signerInfos are re-emitted byte for byte): rfc3161-client only
    # reads whole TimeStampResp messages (we store just the token), and it needs the
    # certificate set in DER sort order, which rebuilding the CertificateSet gives on dump.
    try:
        content_info = asn1_cms.ContentInfo.load(token_der, strict=True)
        signed_data = content_info["content"]
        certs = signed_data["certificates"]
        if not isinstance(certs, asn1_core.Void):
            # Trust anchors must come only from the caller. rfc3161-client <= 1.0.8 put the
            # token's own certificates into the trusted store, so a token carrying its root
            # verified against any CA; dropping self-issued certificates defuses that too.
            kept = [
                cert
                for cert in certs
                if not (cert.name == "certificate" and cert.chosen.self_issued)
            ]
            signed_data["certificates"] = asn1_cms.CertificateSet(kept)
        wrapper = asn1_tsp.TimeStampResp(
            {"status": {"status": "granted"}, "time_stamp_token": content_info}
        )
        return decode_timestamp_response(wrapper.dump())
    except _PARSE_ERRORS:
        raise TimestampError("time-stamp token is malformed") from None


def _verify_signature(token_der: bytes, digest: bytes, ca_pem: bytes) -> None:
    """Verify the token's CMS signature and the TSA certificate chain up to ca_pem."""
    try:
        roots = x509.load_pem_x509_certificates(ca_pem)
    except ValueError:
        raise TimestampError("trusted CA certificates could not be read") from None

    if not roots:
        raise TimestampError("no trusted CA certificates were given")
    builder = VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    # rfc3161-client checks the CMS signature with OpenSSL's PKCS7_verify (chain evaluated at
    # genTime, timestamping purpose), that the signer certificate carries a critical
    # id-kp-timeStamping EKU, and the message imprint once more.
    try:
        builder.build().verify(_as_verifiable_response(token_der), digest)
    except (VerificationError, ValueError):
        raise TimestampError("time-stamp token signature does not verify") from None
