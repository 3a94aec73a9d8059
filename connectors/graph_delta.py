"""Per-folder delta sync for Microsoft Graph: a local mirror of the folder, kept under RXINBOX_HOME/graph/.

The mirror holds every message the last delta round left in the folder (immutable id, received time,
whether rxinbox has handled it) plus the round's @odata.deltaLink. list_refs answers from the mirror,
so a crash between listing and processing loses nothing. An expired or unknown delta token (HTTP 410,
or Graph's syncStateNotFound) starts a full round; the refs are immutable ids and the sweep's store
de-duplicates by ref and message key, so a resync creates no new cases.
"""

import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from connectors.graph_http import GraphError, GraphHttp
from connectors.mailbox import MailboxError, NoticeKind, NoticeLog

log = logging.getLogger(__name__)

STATE_VERSION = 1
MAX_PAGES = 100_000
RESYNC_CODES = {"syncstatenotfound", "syncstateinvalid", "resyncrequired"}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class FolderMirror:
    """What the folder held after the last completed delta round."""

    folder_id: str | None = None
    delta_link: str | None = None
    messages: dict[str, dict] = field(default_factory=dict)

    def waiting(self) -> list[str]:
        """Refs not yet handled by rxinbox, oldest first."""
        pending = [(entry.get("received") or "", ref) for ref, entry in self.messages.items() if not entry.get("done")]
        return [ref for _, ref in sorted(pending)]

    def received(self, ref: str) -> str | None:
        return self.messages.get(ref, {}).get("received")

    def apply(self, items: list[dict]) -> None:
        """One delta page: additions and updates upsert, @removed entries (deleted or moved out) drop."""
        for item in items:
            ref = item["id"]
            if "@removed" in item:
                self.messages.pop(ref, None)
                continue
            entry = self.messages.setdefault(ref, {"done": False})
            if item.get("receivedDateTime"):
                entry["received"] = item["receivedDateTime"]

    def mark_done(self, refs: list[str], moved_out: bool) -> None:
        for ref in refs:
            if moved_out:
                self.messages.pop(ref, None)
            elif ref in self.messages:
                self.messages[ref]["done"] = True


class MirrorFile:
    """The mirror on disk, one JSON file per mailbox, replaced atomically."""

    def __init__(self, directory: Path, mailbox_name: str, notices: NoticeLog | None = None) -> None:
        self.path = directory / f"{_UNSAFE_NAME.sub('_', mailbox_name)}.delta"
        self.lock = threading.Lock()
        self.notices = notices if notices is not None else NoticeLog()

    def load(self) -> FolderMirror:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return FolderMirror()
        except (OSError, ValueError):
            log.warning("delta state %s unreadable; starting a full sync", self.path.name)
            self.notices.record(NoticeKind.delta_resync, 1, "local delta state unreadable")
            return FolderMirror()
        if data.get("version") != STATE_VERSION:
            return FolderMirror()
        return FolderMirror(data.get("folder_id"), data.get("delta_link"), data.get("messages") or {})

    def save(self, mirror: FolderMirror) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        payload = {"version": STATE_VERSION, "folder_id": mirror.folder_id, "delta_link": mirror.delta_link,
                   "messages": mirror.messages}
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(payload, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


def refresh(http: GraphHttp, mirror: FolderMirror, folder_id: str, start_url: str, params: dict,
            headers: dict) -> FolderMirror:
    """Run one delta round from the saved link (or a full one) and return the updated mirror."""
    usable = (mirror.folder_id == folder_id and mirror.delta_link and http.owns(mirror.delta_link))
    if usable:
        try:
            return _round(http, mirror, folder_id, mirror.delta_link, None, headers, full=False)
        except GraphError as exc:
            if not _needs_resync(exc):
                raise
            log.warning("delta token for the folder expired (HTTP %d %s); resynchronising the whole folder",
                        exc.status, exc.code)
            http.notices.record(NoticeKind.delta_resync, 1,
                                f"delta token expired: HTTP {exc.status} {exc.code}".rstrip())
    elif mirror.delta_link:
        log.info("delta state belongs to another folder or service; starting a full sync")
    try:
        return _round(http, mirror, folder_id, start_url, params, headers, full=True)
    except GraphError as exc:
        if not _needs_resync(exc):
            raise
        # A nextLink of the full round itself expired (a very long round): start it once more.
        log.warning("full delta round interrupted by an expired token; restarting it")
        http.notices.record(NoticeKind.delta_resync, 1, f"full round restarted (HTTP {exc.status})")
        return _round(http, mirror, folder_id, start_url, params, headers, full=True)


def _round(http: GraphHttp, mirror: FolderMirror, folder_id: str, url: str, params: dict | None, headers: dict,
           full: bool) -> FolderMirror:
    fresh = FolderMirror(folder_id, None, {} if full else {k: dict(v) for k, v in mirror.messages.items()})
    for _ in range(MAX_PAGES):
        page = http.json("GET", url, params=params, headers=headers)
        fresh.apply(page.get("value", []))
        params = None
        if "@odata.deltaLink" in page:
            fresh.delta_link = page["@odata.deltaLink"]
            if full:
                # Keep what rxinbox already handled: a resync must not hand those refs out again.
                for ref, entry in fresh.messages.items():
                    entry["done"] = bool(mirror.messages.get(ref, {}).get("done"))
            return fresh
        url = page.get("@odata.nextLink")
        if not url:
            raise MailboxError("Graph delta page had neither @odata.nextLink nor @odata.deltaLink")
    raise MailboxError(f"Graph delta round did not finish within {MAX_PAGES} pages")


def _needs_resync(exc: GraphError) -> bool:
    return exc.status == 410 or exc.code.lower() in RESYNC_CODES
