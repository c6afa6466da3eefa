#!/usr/bin/env python3
"""Witness a Deletion Desk's audit log: `python3 witness.py --url BASE --state FILE --token T`.

Standard library only (Python 3.8+): run it from cron on a host the desk's operators do not
control. Each run fetches the desk's latest signed tree head (STH), checks its Ed25519
signature under the pinned key, checks that it is consistent with the head kept by the last
run (an RFC 9162 consistency proof: the old tree is a prefix of the new one), keeps it, and
prints one line. Exit codes:

  0  all is well: the log only grew (or did not change) since the last run; the head is kept.
  1  ALERT: a fork (two different trees of one size), a rollback (a smaller tree), a rewrite
     (a larger tree that does not extend the kept one), a forged head (bad signature, unknown
     key) or a changed key. The kept head is left as it was and both heads are added to the
     state file's "alerts": together they are the desk's signed proof of what happened.
  2  nothing could be checked (network, timeout, refused token, server error, bad arguments).

The public key is pinned on first use (fetched from the desk, or given with --key FILE.pem);
later runs refuse any other. The desk serves this file at /api/v1/audit/witness.py with its
public key filled in below, and `desk audit witness` runs this same code.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.client
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone

# The desk fills in its public key (hex of the raw 32 bytes) when it serves this file, so an
# auditor pins the key they downloaded; empty in the desk's own copy (`desk audit witness`).
PINNED_PUBLIC_KEY_HEX = ""  # ---- DESK KEY

STATE_FORMAT = "deletion-desk/witness-state/v1"
USER_AGENT = "deletion-desk-witness/1"
TIMEOUT_SECONDS = 10
MAX_ANSWER_BYTES = 1 << 20  # a proof is at most ~130 hashes; anything near this is not the desk
MAX_STATE_BYTES = 8 << 20
MAX_ALERTS = 100
# Tree sizes are entry numbers: a JSON integer far beyond any desk's trail is not one.
MAX_TREE_SIZE = 2**63 - 1
OK, ALERT, CANNOT_CHECK = 0, 1, 2
# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw key is the last 32 bytes.
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")

# --- Ed25519 verification, after RFC 8032 section 6 (reference code) -------------------------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _point_add(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f, g * h, f * g, e * h)


def _point_mul(scalar, point):
    result = (0, 1, 1, 0)
    while scalar > 0:
        if scalar & 1:
            result = _point_add(result, point)
        point = _point_add(point, point)
        scalar >>= 1
    return result


def _point_equal(p, q):
    return (p[0] * q[2] - q[0] * p[2]) % _P == 0 and (p[1] * q[2] - q[1] * p[2]) % _P == 0


def _recover_x(y, sign):
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _decompress(data):
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_G_Y = 4 * pow(5, _P - 2, _P) % _P
_G_X = _recover_x(_G_Y, 0)
_G = (_G_X, _G_Y, 1, _G_X * _G_Y % _P)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` under `public_key`."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a_point = _decompress(public_key)
    r_point = _decompress(signature[:32])
    if a_point is None or r_point is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    digest = hashlib.sha512(signature[:32] + public_key + message).digest()
    h = int.from_bytes(digest, "little") % _L
    return _point_equal(_point_mul(s, _G), _point_add(r_point, _point_mul(h, a_point)))


def public_key_from_pem(text: str) -> bytes:
    """The raw 32-byte key of an Ed25519 public key in PEM (SubjectPublicKeyInfo)."""
    body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body)
    if len(der) != 44 or not der.startswith(ED25519_SPKI_PREFIX):
        raise ValueError("public_key.pem is not an Ed25519 public key")
    return der[len(ED25519_SPKI_PREFIX) :]


def key_id(public_key: bytes) -> str:
    """The key's fingerprint as the desk shows it: SHA-256 of the raw public key, hex."""
    return hashlib.sha256(public_key).hexdigest()


# ---- BEGIN VERIFIER (copy verbatim into a script that does `import hashlib`) ----------------

_HEX_DIGITS = frozenset("0123456789abcdef")


def leaf_hash(entry_hash_hex: str) -> bytes:
    """Return the RFC 9162 leaf hash SHA-256(0x00 || entry hash) of an entry's hex hash."""
    # Only the canonical form is accepted: bytes.fromhex would also take upper case and
    # whitespace, and a log should not have two spellings of the same entry.
    if len(entry_hash_hex) != 64 or not _HEX_DIGITS.issuperset(entry_hash_hex):
        raise ValueError("entry hash must be 64 lower-case hex characters")
    return hashlib.sha256(b"\x00" + bytes.fromhex(entry_hash_hex)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """Check an inclusion proof exactly as RFC 9162 §2.1.3.2 prescribes."""
    # The size is not protected by the proof: the caller must take it (and the root) from an
    # authenticated tree head, since a proof can also fit a different size of the same shape.
    if not 0 <= index < size:  # step 1
        return False
    fn, sn = index, size - 1  # step 2
    r = leaf  # step 3
    for p in path:  # step 4
        if sn == 0:  # 4a: more path elements than levels
            return False
        if fn & 1 or fn == sn:  # 4b: p is a left sibling
            r = node_hash(p, r)
            if not fn & 1:
                # fn is the last node of its level and has no right sibling there: skip up to
                # where it is a right child (or the root of the subtree).
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:  # p is a right sibling
            r = node_hash(r, p)
        fn >>= 1  # 4c
        sn >>= 1
    return sn == 0 and r == root  # step 5


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]
) -> bool:
    """Check a consistency proof exactly as RFC 9162 §2.1.4.2 prescribes."""
    # RFC 9162 defines PROOF(m, D_n) for 0 < m < n only. The empty tree is consistent with
    # every tree but has nothing to prove, so first == 0 is rejected rather than guessed at.
    if not 0 < first <= second:
        return False
    if first == second:
        # SUBPROOF(m, D[m], true) = {}: the same tree, proven by equal roots and an empty path.
        return not path and first_root == second_root
    if not path:  # step 1
        return False
    path = list(path)
    if first & (first - 1) == 0:  # step 2: the old tree is a complete subtree of the new one
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1  # step 3
    while fn & 1:  # step 4: climb to the largest complete subtree ending at leaf first - 1
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:  # 6a
            return False
        if fn & 1 or fn == sn:  # 6b: c is a left sibling, shared by both trees
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:  # c is a right sibling that only the new tree has
            sr = node_hash(sr, c)
        fn >>= 1  # 6c
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root  # step 7


# ---- END VERIFIER ---------------------------------------------------------------------------


# --- what a run found ------------------------------------------------------------------------


class CannotCheck(Exception):
    """Nothing could be checked (exit 2): the desk was not reached or did not answer usably."""


class Alert(Exception):
    """The desk's log misbehaved (exit 1); `kind` names how: fork, rollback, rewrite, …."""

    def __init__(self, kind: str, message: str, served: dict | None = None):
        super().__init__(message)
        self.kind = kind
        self.served = served


# --- signed tree heads (shapes fixed by the desk's DESIGN.md, "Transparency log") ------------


def _is_hex64(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and _HEX_DIGITS.issuperset(value)


def parse_sth(value) -> dict:
    """The STH's fields, checked for shape (ValueError says what is wrong)."""
    if not isinstance(value, dict):
        raise ValueError("it is not a JSON object")
    size = value.get("tree_size")
    if type(size) is not int or not 0 < size <= MAX_TREE_SIZE:
        raise ValueError("tree_size is not a positive whole number")
    for name in ("root_hash", "key_id"):
        if not _is_hex64(value.get(name)):
            raise ValueError(f"{name} is not 64 lower-case hex characters")
    for name in ("timestamp", "signature"):
        if not isinstance(value.get(name), str) or not 0 < len(value[name]) <= 128:
            raise ValueError(f"{name} is missing")
    sth = {name: value[name] for name in ("tree_size", "root_hash", "timestamp", "key_id")}
    sth["signature"] = value["signature"]
    if isinstance(value.get("tsa_token"), str):
        sth["tsa_token"] = value["tsa_token"]
    return sth


def sth_message(sth: dict) -> bytes:
    """The bytes the desk signs: size, root and time as canonical JSON."""
    body = {key: sth[key] for key in ("root_hash", "timestamp", "tree_size")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature_holds(sth: dict, public_key: bytes) -> bool:
    """True when the STH names `public_key` and carries its valid signature."""
    try:
        signature = base64.b64decode(sth["signature"], validate=True)
    except ValueError:
        return False
    return sth["key_id"] == key_id(public_key) and ed25519_verify(
        public_key, sth_message(sth), signature
    )


def _short(hex_text: str) -> str:
    return hex_text[:16] + "…"


# --- talking to the desk -------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are refused: the token must not follow one to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def base_url(url: str) -> str:
    """The desk's address without a trailing slash; only http:// and https:// are taken."""
    parts = urllib.parse.urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CannotCheck(
            f"--url must be the desk's http:// or https:// address "
            f"(e.g. https://desk.example.org), not {url!r}"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise CannotCheck("--url must be the desk's address only: no user, query or fragment")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class Desk:
    """The desk's transparency-log API, every call timed out."""

    def __init__(self, base: str, token: str | None, timeout: float = TIMEOUT_SECONDS):
        self.base = base
        self.token = token
        self.timeout = timeout
        self.opener = urllib.request.build_opener(_NoRedirect)

    def get(self, path: str, params: dict | None = None, *, missing_ok: bool = False):
        """GET a JSON answer; None for a 404 when `missing_ok`; CannotCheck for the rest."""
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        request = urllib.request.Request(  # noqa: S310 - base_url let only http(s) through
            url, headers={"Accept": "application/json", "User-Agent": USER_AGENT}
        )
        if self.token:
            request.add_unredirected_header("Authorization", f"Bearer {self.token}")
        deadline = time.monotonic() + self.timeout
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                body = _read(response, deadline)
        except urllib.error.HTTPError as error:
            try:
                status, said = error.code, _error_text(error, deadline)
                location = error.headers.get("Location", "") if error.headers else ""
            finally:
                error.close()
            if status == 404 and missing_ok:
                return None
            raise CannotCheck(_refusal(self.base, path, status, said, location)) from None
        except (OSError, http.client.HTTPException, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            raise CannotCheck(f"cannot reach the desk at {self.base}: {reason}") from None
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError:
            raise CannotCheck(
                f"the answer to {path} is not JSON: is {self.base} the desk's address?"
            ) from None

    def sth(self) -> dict | None:
        return self.get("/api/v1/audit/sth", missing_ok=True)

    def consistency(self, first: int, second: int) -> dict | None:
        params = {"first": first, "second": second}
        return self.get("/api/v1/audit/consistency", params, missing_ok=True)

    def public_key(self) -> dict:
        return self.get("/api/v1/audit/public-key")


def _read(response, deadline: float) -> bytes:
    """The body, at most MAX_ANSWER_BYTES, within the deadline (not only per socket read)."""
    chunks, size = [], 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("the answer took too long")
        chunk = response.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise ValueError("the answer is too large to be the desk's")
        chunks.append(chunk)


def _error_text(error: urllib.error.HTTPError, deadline: float) -> str:
    """The desk's error message ({"error": {"message"}}), printable and short, or ''."""
    try:
        message = json.loads(_read(error, deadline).decode("utf-8"))["error"]["message"]
    except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException):
        return ""
    text = "".join(c if c.isprintable() else " " for c in str(message))
    return text[:200]


def _refusal(base: str, path: str, status: int, said: str, location: str) -> str:
    if status in (401, 403):
        return (
            f"the desk refused the token ({status}{': ' + said if said else ''}): give an "
            "API token of any role with --token (or DESK_WITNESS_TOKEN)"
        )
    if 300 <= status < 400:
        return f"the desk redirected to {location or 'another address'}: give that with --url"
    return f"the desk answered {status} to {path}{': ' + said if said else ''}"


# --- the state file --------------------------------------------------------------------------


def load_state(path: str) -> dict | None:
    """The state a previous run kept, None before the first; CannotCheck when unusable."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CannotCheck(f"cannot read the state file {path}: {error.strerror}") from None
    try:
        if len(raw) > MAX_STATE_BYTES:
            raise ValueError("too large")
        state = json.loads(raw.decode("utf-8"))
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError("not a witness state file")
        if not _is_hex64(state.get("public_key_hex")):
            raise ValueError("no pinned key")
        state["sth"] = parse_sth(state.get("sth"))
        public_key = bytes.fromhex(state["public_key_hex"])
    except ValueError as error:
        raise CannotCheck(
            f"the state file {path} is damaged ({error}): restore it from a backup"
        ) from None
    if not signature_holds(state["sth"], public_key):
        # Only someone on this host could have done this; the desk did not.
        raise CannotCheck(
            f"the head kept in {path} does not verify under its pinned key: the file was "
            "altered; restore it from a backup"
        )
    if not isinstance(state.get("alerts"), list):
        state["alerts"] = []
    return state


def save_state(path: str, state: dict) -> None:
    """Write the state atomically (a new file renamed over the old), mode 0600."""
    folder = os.path.dirname(os.path.abspath(path))
    temporary = None
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=".witness-", suffix=".tmp", dir=folder)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=2, sort_keys=True, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        raise CannotCheck(f"cannot write the state file {path}: {error}") from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _now() -> str:
    # timezone.utc, not datetime.UTC: the script must run on Python 3.8.
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017


def _remember_alert(path: str, state: dict | None, alert: Alert, now: str) -> None:
    """Add the alert (and the head that raised it) to the state; the kept head stays."""
    if state is None:
        return  # nothing was pinned yet: there is nothing to keep
    record = {"at": now, "kind": alert.kind, "message": str(alert)}
    if alert.served is not None:
        record["served"] = alert.served
    state["alerts"] = (state["alerts"] + [record])[-MAX_ALERTS:]
    # The alert itself is what matters: the exit code and the line report it even if the
    # state cannot be written.
    with contextlib.suppress(CannotCheck):
        save_state(path, state)


# --- the checks ------------------------------------------------------------------------------


def key_from_pem_file(path: str) -> bytes:
    """The raw Ed25519 key of a PEM file (the desk's public_key.pem)."""
    try:
        with open(path, encoding="ascii") as handle:
            return public_key_from_pem(handle.read(65536))
    except (OSError, ValueError) as error:
        raise CannotCheck(f"--key {path}: not an Ed25519 public key in PEM ({error})") from None


def trusted_key(state: dict | None, given: bytes | None, state_path: str) -> bytes | None:
    """The key heads must be signed by: the pinned one, else the one given, else None."""
    if state is None:
        return given
    pinned = bytes.fromhex(state["public_key_hex"])
    if given is not None and given != pinned:
        raise Alert(
            "key changed",
            f"the key given ({_short(key_id(given))}) is not the key pinned in {state_path} "
            f"({_short(key_id(pinned))}). A desk's key changes only by a rotation its operators "
            "announce: confirm it with them, then start a new state file",
        )
    return pinned


def key_on_first_use(desk: Desk, sth: dict) -> bytes:
    """The desk's published key, which must be the one its head names."""
    body = desk.public_key()
    raw_hex = body.get("public_key_hex") if isinstance(body, dict) else None
    if not _is_hex64(raw_hex):
        raise CannotCheck("the desk's /api/v1/audit/public-key answer holds no Ed25519 key")
    public_key = bytes.fromhex(raw_hex)
    if body.get("key_id") != key_id(public_key):
        raise Alert("forged head", "the key id the desk publishes does not match its key", sth)
    if sth["key_id"] != key_id(public_key):
        raise Alert(
            "forged head",
            f"the tree head is signed by key {_short(sth['key_id'])}, not by the key the desk "
            f"publishes ({_short(key_id(public_key))})",
            sth,
        )
    return public_key


def check_signature(sth: dict, public_key: bytes) -> None:
    """The head is signed by the pinned key, and the signature holds."""
    if sth["key_id"] != key_id(public_key):
        raise Alert(
            "forged head",
            f"the tree head at size {sth['tree_size']} is signed by key {_short(sth['key_id'])}, "
            f"not by the pinned key {_short(key_id(public_key))}",
            sth,
        )
    if not signature_holds(sth, public_key):
        raise Alert(
            "forged head",
            f"the signature of the tree head at size {sth['tree_size']} does not verify under "
            f"the pinned key {_short(key_id(public_key))}",
            sth,
        )


def check_extends(kept: dict, sth: dict, desk: Desk) -> str:
    """Check the new head against the kept one; say what was proven (Alert when it fails)."""
    old, new = kept["tree_size"], sth["tree_size"]
    if new < old:
        raise Alert(
            "rollback",
            f"the desk now shows a tree of {new} entries, smaller than the {old} entries of the "
            f"head it signed on {kept['timestamp']}: entries were removed (rolled back, or "
            "restored from an older backup)",
            sth,
        )
    if new == old:
        if sth["root_hash"] != kept["root_hash"]:
            raise Alert(
                "fork",
                f"the desk signed two different trees of {new} entries (root "
                f"{_short(kept['root_hash'])} on {kept['timestamp']}, root "
                f"{_short(sth['root_hash'])} on {sth['timestamp']}): it shows different "
                "histories (a fork), or rewrote its log",
                sth,
            )
        return f"unchanged since the kept head (signed {kept['timestamp']})"
    proof = desk.consistency(old, new)
    path = proof.get("path") if isinstance(proof, dict) else None
    shaped = (
        isinstance(proof, dict)
        and (proof.get("first"), proof.get("second")) == (old, new)
        and isinstance(path, list)
        and len(path) <= 2 * 64
        and all(_is_hex64(node) for node in path)
    )
    if not shaped or not verify_consistency(
        old,
        new,
        bytes.fromhex(kept["root_hash"]),
        bytes.fromhex(sth["root_hash"]),
        [bytes.fromhex(node) for node in path],
    ):
        raise Alert(
            "rewrite",
            f"the tree of {new} entries is not consistent with the head of {old} entries kept "
            f"since {kept['timestamp']}: entries that head covers were rewritten, or the desk "
            "shows different histories (a fork)",
            sth,
        )
    return f"consistent with the kept head of {old} entries (RFC 9162 proof checked)"


def witness(
    url: str,
    state_path: str,
    *,
    token: str | None = None,
    key_path: str | None = None,
    pinned_key_hex: str = "",
    timeout: float = TIMEOUT_SECONDS,
) -> tuple[int, str]:
    """One witness run: (exit code, the one line to print)."""
    state = None
    try:
        desk = Desk(base_url(url), token, timeout)
        state = load_state(state_path)
        given = key_from_pem_file(key_path) if key_path else None
        if given is None and pinned_key_hex:
            given = bytes.fromhex(pinned_key_hex)
        public_key = trusted_key(state, given, state_path)
        answer = desk.sth()
        if answer is None:
            if state is not None:
                raise Alert(
                    "rollback",
                    f"the desk says it has no signed tree head, but it signed one of "
                    f"{state['sth']['tree_size']} entries on {state['sth']['timestamp']}",
                )
            raise CannotCheck("the desk has not signed a tree head yet: nothing to witness")
        try:
            sth = parse_sth(answer)
        except ValueError as error:
            raise Alert("forged head", f"the desk's tree head is malformed: {error}") from None
        if public_key is None:
            public_key = key_on_first_use(desk, sth)
        check_signature(sth, public_key)
        found = "first head kept" if state is None else check_extends(state["sth"], sth, desk)
    except CannotCheck as error:
        return CANNOT_CHECK, f"error: {error}"
    except Alert as alert:
        _remember_alert(state_path, state, alert, _now())
        return ALERT, f"ALERT {alert.kind}: {alert} (state: {state_path})"
    kept = state["sth"] if state and state["sth"]["tree_size"] == sth["tree_size"] else sth
    new_state = {
        "format": STATE_FORMAT,
        "url": desk.base,
        "public_key_hex": public_key.hex(),
        "key_id": key_id(public_key),
        "sth": kept,
        "checked_at": _now(),
        "alerts": state["alerts"] if state else [],
    }
    try:
        save_state(state_path, new_state)
    except CannotCheck as error:
        return CANNOT_CHECK, f"error: {error}"
    pinned = f"; key {key_id(public_key)} pinned" if state is None else ""
    return OK, (
        f"ok: {sth['tree_size']} entries, root {_short(sth['root_hash'])}, signed "
        f"{sth['timestamp']}: {found}{pinned}"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run once, print one line (on stderr when not ok)."""
    parser = argparse.ArgumentParser(
        prog="witness.py",
        description="Check a Deletion Desk's latest signed tree head against the one kept "
        "in the state file: exit 0 ok, 1 fork/rollback/rewrite/forged head, 2 cannot check.",
    )
    parser.add_argument("--url", required=True, help="the desk, e.g. https://desk.example.org")
    parser.add_argument("--state", required=True, help="the file that keeps the last head")
    parser.add_argument(
        "--token",
        default=os.environ.get("DESK_WITNESS_TOKEN"),
        help="an API token of any role (default: $DESK_WITNESS_TOKEN)",
    )
    parser.add_argument("--key", help="the desk's public key (PEM) to pin on the first run")
    parser.add_argument("--quiet", action="store_true", help="print nothing when all is well")
    args = parser.parse_args(argv)
    code, line = witness(
        args.url,
        args.state,
        token=args.token,
        key_path=args.key,
        pinned_key_hex=PINNED_PUBLIC_KEY_HEX,
    )
    if code != OK or not args.quiet:
        print(line, file=sys.stdout if code == OK else sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
