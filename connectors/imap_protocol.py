"""Small pieces of IMAP syntax imaplib leaves to the caller: quoting, folder names, UID sets, FETCH parsing."""

import base64
import imaplib
import logging
import re

log = logging.getLogger(__name__)

_UID = re.compile(rb"\bUID (\d+)")
_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"(?:[^"\\]|\\.)*"|NIL) (?P<name>.+)$')


def quoted(text: str) -> str:
    """An IMAP quoted string (imaplib sends arguments verbatim)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_folder(name: str) -> str:
    """IMAP's modified UTF-7 for mailbox names (RFC 3501 5.1.3), e.g. 'Behandlet æøå'."""
    out: list[str] = []
    pending: list[str] = []
    for ch in name + "\x00":  # the sentinel flushes a trailing non-ASCII run
        if ch != "\x00" and not 0x20 <= ord(ch) <= 0x7E:
            pending.append(ch)
            continue
        if pending:
            b64 = base64.b64encode("".join(pending).encode("utf-16-be")).decode().rstrip("=").replace("/", ",")
            out.append(f"&{b64}-")
            pending.clear()
        if ch != "\x00":
            out.append("&-" if ch == "&" else ch)
    return "".join(out)


def folder_arg(name: str) -> str:
    """A folder name ready for a command line."""
    return quoted(encode_folder(name))


def uid_set(uids: list[int]) -> str:
    """A compact UID set: [1, 2, 3, 7] -> '1:3,7'."""
    ordered = sorted(set(uids))
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:] + [None]:
        if uid is not None and uid == prev + 1:
            prev = uid
            continue
        parts.append(str(start) if start == prev else f"{start}:{prev}")
        if uid is not None:
            start = prev = uid
    return ",".join(parts)


def group_refs(refs: list[str]) -> dict[int, list[int]]:
    """'UIDVALIDITY:UID' refs grouped by UIDVALIDITY, UIDs ascending; foreign refs are logged and left out."""
    groups: dict[int, list[int]] = {}
    bad = 0
    for ref in refs:
        validity, _, uid = ref.partition(":")
        if not (validity.isdigit() and uid.isdigit()):
            bad += 1
            continue
        groups.setdefault(int(validity), []).append(int(uid))
    if bad:
        log.warning("%d ref(s) are not IMAP refs (UIDVALIDITY:UID) and were ignored", bad)
    return {v: sorted(set(u)) for v, u in groups.items()}


def fetched_bodies(data: list) -> dict[int, bytes]:
    """UID -> literal from a UID FETCH response; the UID may come before or after the literal."""
    bodies: dict[int, bytes] = {}
    pending: bytes | None = None
    for item in data:
        if isinstance(item, tuple):
            meta, literal = item
            match = _UID.search(meta)
            if match:
                bodies[int(match.group(1))] = literal
                pending = None
            else:
                pending = literal
        elif isinstance(item, bytes) and pending is not None:
            match = _UID.search(item)
            if match:
                bodies[int(match.group(1))] = pending
            pending = None
    return bodies


def special_folder(conn: imaplib.IMAP4, flag: str) -> str | None:
    """The folder a server marks with a SPECIAL-USE flag such as \\Sent, decoded to a plain name when ASCII."""
    typ, data = conn.list()
    if typ != "OK":
        return None
    for line in data:
        if not isinstance(line, bytes):
            continue
        match = _LIST_LINE.match(line)
        if match and flag.lower().encode() in match.group("flags").lower().split():
            name = match.group("name").decode("ascii", "replace")
            if name.startswith('"') and name.endswith('"'):
                name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            # A name already in modified UTF-7 is kept only if it has no shifted run we would re-encode.
            return name if "&" not in name else None
    return None
