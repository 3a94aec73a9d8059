"""Turn mail bytes into text whatever charset they claim: declared, detected or repaired."""

import binascii
import codecs
import functools
import re
from typing import NamedTuple

from charset_normalizer import from_bytes

DETECT_LIMIT = 64 * 1024  # detection cost grows with input; 64 KB is plenty to identify a charset

# Labels mail clients use that Python's codec registry does not know, or knows only as a narrower
# charset: the superset decodes everything the narrow one does plus what senders actually emit.
_ALIASES = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "windows-874": "cp874", "x-sjis": "cp932", "shift_jis": "cp932", "shift-jis": "cp932",
    "x-euc-jp": "euc_jp", "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "iso-8859-8-i": "iso8859_8",
    "x-mac-roman": "mac_roman", "macintosh": "mac_roman", "utf8": "utf_8", "unicode-1-1-utf-8": "utf_8",
}
# Registered codecs that are not charsets, or that interpret their input as code.
_REFUSED = {"idna", "punycode", "unicode_escape", "raw_unicode_escape", "undefined", "mbcs", "oem"}
# When several detected charsets fit equally well, the ones Danish and English mail really uses win.
_PREFERRED = (
    "utf-8", "cp1252", "iso8859-15", "iso8859-1", "cp1250", "iso8859-2", "cp1251", "koi8-r", "cp932", "big5", "gb18030",
    "cp949",
)
# Charsets whose ASCII-range bytes are not ASCII text (escape sequences, 16-bit units).
_NOT_ASCII_BASED = re.compile(r"iso2022|utf_7|utf_16|utf_32|hz|utf-7|utf-16|utf-32")
_NOT_ESCAPED = re.compile(r"[\ud800-\udc7f\udd00-\udfff]")
_LABEL_JUNK = re.compile(r"""^[\s"'<>]+|[\s"'<>;,.]+$""")


class Decoded(NamedTuple):
    text: str
    charset: str  # the codec actually used
    repaired: bool  # the declared charset was wrong (or unknown) and another one was used
    lossy: bool  # some bytes could not be decoded and became U+FFFD


@functools.lru_cache(maxsize=256)
def codec_name(label: str | None) -> str | None:
    """Python codec for a MIME charset label, or None when it is unknown or unsafe."""
    if not label:
        return None
    name = _LABEL_JUNK.sub("", label.strip().lower())
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED:
        return None
    return info.name


@functools.lru_cache(maxsize=64)
def _single_byte(codec: str) -> bool:
    """True for charsets where most high bytes stand alone (latin-*, cp125x, koi8), unlike CJK or UTF-8."""
    standalone = sum(1 for byte in range(128, 256) if _try(bytes([byte]), codec) not in (None, ""))
    return standalone >= 80 and not _NOT_ASCII_BASED.search(codec)


def _try(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeError, LookupError, ValueError):
        return None


def detect(data: bytes, hint: str | None = None) -> str | None:
    """Best charset for bytes of unknown encoding, preferring common mail charsets on a near tie."""
    results = from_bytes(data[:DETECT_LIMIT])
    best = results.best()
    if best is None:
        return None
    near = {
        codecs.lookup(m.encoding).name
        for m in results
        if m.chaos <= best.chaos + 0.02 and m.coherence >= best.coherence - 0.1
    }
    for candidate in ((hint,) if hint else ()) + _PREFERRED:
        if candidate in near:
            return candidate
    return codecs.lookup(best.encoding).name


def _mostly_utf8(data: bytes) -> bool:
    """True when valid UTF-8 sequences outnumber the invalid bytes: a UTF-8 text with a few stray bytes."""
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    good = sum(1 for ch in text if ord(ch) > 127) - bad
    return good >= bad


def decode_text(data: bytes, declared: str | None) -> Decoded:
    """Decode a text part or header: the declared charset unless it fails or lies, then detection."""
    codec = codec_name(declared)
    if data.isascii() and (codec is None or not _NOT_ASCII_BASED.search(codec)):
        return Decoded(data.decode("ascii"), "ascii", False, False)
    if codec is not None and codec != "utf-8":
        text = _try(data, codec)
        if text is not None:
            # A single-byte label decodes anything, so valid multi-byte UTF-8 under it is the lie to catch.
            if _single_byte(codec):
                utf8 = _try(data, "utf-8")
                if utf8 is not None:
                    return Decoded(utf8, "utf-8", True, False)
            return Decoded(text, codec, False, False)
    utf8 = _try(data, "utf-8")
    if utf8 is not None:
        return Decoded(utf8, "utf-8", declared is not None and codec != "utf-8", False)
    if codec == "cp1252":  # five bytes are undefined in cp1252; latin-1 is what the label promised
        return Decoded(data.decode("latin-1"), "iso8859-1", False, False)
    if codec == "utf-8" and _mostly_utf8(data[:DETECT_LIMIT]):
        return Decoded(data.decode("utf-8", "replace"), "utf-8", False, True)
    guess = detect(data, codec)
    if guess is not None:
        text = data.decode(guess, "replace")
        return Decoded(text, guess, guess != codec, "\ufffd" in text)
    fallback = codec or "cp1252"
    return Decoded(data.decode(fallback, "replace"), fallback, codec is None, True)


def repair_8bit(value: str) -> tuple[str, bool]:
    """Undo surrogate-escaped raw 8-bit header bytes (what compat32 hands over) into real text."""
    if value.isascii() or not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value, False
    value = _NOT_ESCAPED.sub("", value)  # other lone surrogates (from utf-7) cannot be turned back into bytes
    decoded = decode_text(value.encode("utf-8", "surrogateescape"), None)
    return decoded.text, decoded.repaired


def repair_8bit_all(values: list[str]) -> tuple[list[str], bool]:
    """repair_8bit for a whole header block: UTF-8 where it is, one charset guess for the rest."""
    out = list(values)
    failing: list[tuple[int, bytes]] = []
    for index, value in enumerate(values):
        if value.isascii():
            continue
        raw = _NOT_ESCAPED.sub("", value).encode("utf-8", "surrogateescape")
        text = _try(raw, "utf-8")
        if text is None:
            failing.append((index, raw))
        else:
            out[index] = text
    if not failing:
        return out, False
    # One detection over all of them: more text guesses better, and a thousand 8-bit headers cost one run.
    guess = detect(b"\n".join(raw for _, raw in failing)) or "cp1252"
    for index, raw in failing:
        out[index] = raw.decode(guess, "replace")
    return out, True


# RFC 2047 encoded words, leniently: a missing "?=" at the very end and spaces inside Q text are accepted.
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?(.*?)(?:\?=|$)", re.S)
_GAP = re.compile(r"\s*")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def _word_bytes(encoding: str, text: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    if encoding in "bB":
        raw = _B64_JUNK.sub(b"", raw)
        if len(raw) % 4 == 1:  # a lone trailing sextet carries no whole byte
            raw = raw[:-1]
        try:
            return binascii.a2b_base64(raw + b"=" * (-len(raw) % 4))
        except binascii.Error:
            return b""
    return _QP_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), raw.replace(b"_", b" "))


def decode_words(value: str) -> tuple[str, bool]:
    """Header text with encoded words decoded; adjacent words in one charset are joined before decoding."""
    value, repaired = repair_8bit(value)
    if "=?" not in value:
        return value, repaired
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal repaired
        if pending:
            decoded = decode_text(b"".join(pending), pending_charset)
            out.append(decoded.text)
            repaired = repaired or decoded.repaired
            pending.clear()

    for match in _ENCODED_WORD.finditer(value):
        gap = value[pos:match.start()]
        charset = match.group(1).split("*", 1)[0]  # RFC 2231 language suffix: "utf-8*da"
        if gap and not (pending and _GAP.fullmatch(gap)):
            flush()
            out.append(gap)
        elif pending and charset.lower() != (pending_charset or "").lower():
            flush()
        pending.append(_word_bytes(match.group(2), match.group(3)))
        pending_charset = charset
        pos = match.end()
    flush()
    out.append(value[pos:])
    return "".join(out), repaired
