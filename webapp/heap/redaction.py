"""Cutting a request's identifiers out of a text a remote service answered, however spelled.

Heap may echo what it was sent, and not verbatim: normalised otherwise (NFC / NFD),
case-folded, with whitespace collapsed, JSON-escaped (`\\u00e9` or `\\u00E9`, surrogate pairs,
`\\u{e9}`), escaped twice, percent-encoded. Listing every spelling cannot end, so both texts are
reduced to a *skeleton* — escapes decoded, compatibility-decomposed, accents and invisible
characters dropped, case-folded, whitespace collapsed — and each match in the skeleton cuts the
stretch of the original text it came from, whatever its spelling there.

Cutting too much only makes a message harder to read; cutting too little keeps a person's
identifier where it may not be: where in doubt, this cuts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

# A piece of text with the stretch [start, end) of the original it stands for.
Piece = tuple[str, int, int]
# Shorter identifiers are cut only where they stand alone (not inside a longer word).
MIN_FREE_LENGTH = 3
# How often escapes are decoded: a JSON string inside a JSON string is escaped twice.
DECODE_ROUNDS = 2

_ESCAPES = re.compile(
    r"\\u\{(?P<braced>[0-9a-fA-F]{1,6})\}"
    r"|\\[uU](?P<high>[dD][89abAB][0-9a-fA-F]{2})\\[uU](?P<low>[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|\\U(?P<long>[0-9a-fA-F]{8})"
    r"|\\[uU](?P<short>[0-9a-fA-F]{4})"
    r"|\\x(?P<byte>[0-9a-fA-F]{2})"
    r"|\\(?P<simple>[\\/\"'bfnrt])"
    r"|(?P<percent>(?:%[0-9a-fA-F]{2})+)"
    r"|&#[xX](?P<hexref>[0-9a-fA-F]{1,6});|&#(?P<decref>[0-9]{1,7});"
)
_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
# How a text cut short ends (the client cuts Heap's messages at 500 characters with "…").
TRUNCATION_MARKS = ("…", "...")
# Characters a cut-short tail may end with after the identifier's first part.
TAIL_NOISE = frozenset(" .…\"'")


def redact(text: str, identifiers: Mapping[str, Iterable[object]]) -> str:
    """`text` with every identifier cut out, each replaced by its placeholder.

    `identifiers` maps a placeholder ("[identity]") to the values it stands for; numbers
    (user_ids) are matched as whole numbers, so a longer number around them stays.
    """
    wanted = []
    for placeholder, values in identifiers.items():
        for value in values:
            if value is None or isinstance(value, bool):
                continue
            skeleton = skeleton_of(str(value))
            if skeleton:
                wanted.append((skeleton, placeholder))
    if not text or not wanted:
        return text
    spans: list[tuple[int, int, str]] = []
    pieces = _plain(text)
    cut_short = text.rstrip().endswith(TRUNCATION_MARKS)
    for _ in range(DECODE_ROUNDS + 1):
        skeleton = _skeleton(pieces)
        spans += _matches(skeleton, wanted)
        if cut_short:
            spans += _cut_off_tail(skeleton, wanted)
        decoded = _decode(pieces)
        if decoded == pieces:
            break
        pieces = decoded
    return _cut(text, spans)


def skeleton_of(value: str) -> str:
    """An identifier's skeleton: what `redact` looks for (see the module's docstring)."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", value).casefold())
    kept = "".join(char for char in folded if not _dropped(char))
    return " ".join(kept.split())


def _dropped(char: str) -> bool:
    """Accents and other marks, and invisible format characters (zero-width, bidi)."""
    return bool(unicodedata.combining(char)) or unicodedata.category(char) in ("Mn", "Me", "Cf")


def _plain(text: str) -> list[Piece]:
    return [(char, index, index + 1) for index, char in enumerate(text)]


def _decode(pieces: list[Piece]) -> list[Piece]:
    """One round of escape decoding; each decoded character spans the whole escape."""
    text = "".join(char for char, _, _ in pieces)
    out: list[Piece] = []
    position = 0
    for match in _ESCAPES.finditer(text):
        out.extend(pieces[position : match.start()])
        start, end = pieces[match.start()][1], pieces[match.end() - 1][2]
        out.extend((char, start, end) for char in _unescape(match))
        position = match.end()
    out.extend(pieces[position:])
    return out


def _unescape(match: re.Match[str]) -> str:
    groups = match.groupdict()
    try:
        if groups["high"]:
            high, low = int(groups["high"], 16), int(groups["low"], 16)
            return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
        for name in ("braced", "long", "short", "byte", "hexref"):
            if groups[name]:
                return chr(int(groups[name], 16))
        if groups["decref"]:
            return chr(int(groups["decref"]))
    except (ValueError, OverflowError):
        return match.group()
    if groups["simple"]:
        return _SIMPLE.get(groups["simple"], groups["simple"])
    return unquote(groups["percent"], errors="replace")


def _skeleton(pieces: list[Piece]) -> list[Piece]:
    """Decompose, drop accents and invisible characters, case-fold, collapse whitespace.

    A dropped mark widens the piece before it, so a cut takes the marks of its last letter.
    """
    out: list[Piece] = []
    for char, start, end in pieces:
        folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", char).casefold())
        for part in folded:
            if _dropped(part):
                if out and out[-1][0] != " ":
                    out[-1] = (out[-1][0], out[-1][1], max(out[-1][2], end))
            elif part.isspace():
                if out and out[-1][0] == " ":
                    out[-1] = (" ", out[-1][1], max(out[-1][2], end))
                else:
                    out.append((" ", start, end))
            else:
                out.append((part, start, end))
    return out


def _matches(pieces: list[Piece], wanted: list[tuple[str, str]]) -> list[tuple[int, int, str]]:
    """Spans of the original text where a wanted skeleton occurs in `pieces`."""
    spans = []
    spaced = "".join(char for char, _, _ in pieces)
    packed_pieces = [piece for piece in pieces if piece[0] != " "]
    packed = "".join(char for char, _, _ in packed_pieces)
    for skeleton, placeholder in wanted:
        spans += _find(spaced, pieces, skeleton, placeholder)
        if " " in skeleton:
            # "José García" echoed as "JoséGarcía": the same person.
            spans += _find(packed, packed_pieces, skeleton.replace(" ", ""), placeholder)
    return spans


def _cut_off_tail(pieces: list[Piece], wanted: list[tuple[str, str]]) -> list:
    """A text cut short may end in the first part of an identifier: cut that part too."""
    letters = [piece for piece in pieces if piece[0] not in TAIL_NOISE]
    tail = "".join(char for char, _, _ in letters)
    found = []
    for skeleton, placeholder in wanted:
        needle = skeleton.replace(" ", "")
        for length in range(len(needle) - 1, MIN_FREE_LENGTH - 1, -1):
            if tail.endswith(needle[:length]):
                found.append((letters[len(tail) - length][1], letters[-1][2], placeholder))
                break
    return found


def _find(haystack: str, pieces: list[Piece], needle: str, placeholder: str) -> list:
    found = []
    digits = needle.isdigit()
    start = haystack.find(needle)
    while start != -1:
        end = start + len(needle)
        before = haystack[start - 1] if start else ""
        after = haystack[end] if end < len(haystack) else ""
        if digits:
            alone = not before.isdigit() and not after.isdigit()
        elif len(needle) < MIN_FREE_LENGTH:
            alone = not before.isalnum() and not after.isalnum()
        else:
            alone = True
        if alone:
            found.append((pieces[start][1], pieces[end - 1][2], placeholder))
        start = haystack.find(needle, start + 1)
    return found


def _cut(text: str, spans: list[tuple[int, int, str]]) -> str:
    """Replace each span (overlapping ones merged) by its placeholder."""
    merged: list[list] = []
    for start, end, placeholder in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, placeholder])
    for start, end, placeholder in reversed(merged):
        text = text[:start] + placeholder + text[end:]
    return text
