"""Idempotent identifiers derived from content, so a replay produces the same ids."""

import hashlib
import re

def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def normalise_message_id(value: str | None) -> str | None:
    """'<ABC@host>' with surrounding noise removed; None when there is no usable id."""
    if not value:
        return None
    text = value.strip()
    match = re.search(r"<([^<>\s]+)>", text)
    core = match.group(1) if match else text.strip("<> \t")
    core = "".join(core.split())
    return f"<{core}>" if core and len(core) <= 500 else None


def body_fingerprint(raw: bytes, sender: str | None, date: str | None, subject: str | None) -> str:
    """Hash of what makes a message itself, ignoring transport headers added on redelivery."""
    split = re.search(rb"\r?\n\r?\n", raw)
    body = raw[split.end():] if split else raw
    digest = hashlib.sha256()
    for part in ((sender or "").lower(), (date or "").strip(), (subject or "").strip()):
        digest.update(part.encode("utf-8", "replace") + b"\x00")
    digest.update(b" ".join(body.split()))
    return digest.hexdigest()


def message_key(message_id: str | None, fingerprint: str) -> str:
    """Message-ID plus a short fingerprint, so a reused Message-ID on a different mail is not lost."""
    if message_id:
        return f"{message_id}#{fingerprint[:12]}"
    return f"sha256:{fingerprint[:40]}"


def case_id(mailbox: str, key: str) -> str:
    return "case-" + hashlib.sha256(f"{mailbox}\x00{key}".encode()).hexdigest()[:24]


def outbound_id(case: str, purpose: str) -> str:
    return "out-" + hashlib.sha256(f"{case}\x00{purpose}".encode()).hexdigest()[:24]
