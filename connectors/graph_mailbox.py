"""A Microsoft 365 shared mailbox through Microsoft Graph (app-only): delta sweeps, threaded drafts in Outlook.

Refs are immutable ids (Prefer: IdType="ImmutableId"), so they survive the move to the processed
folder; the Inbox is read with per-folder delta queries (connectors.graph_delta) and reply drafts are
threaded, exactly-once createReply drafts (connectors.graph_drafts).
"""

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote

from connectors import graph_delta
from connectors.graph_auth import TEST_TOKEN_ENV, connect, loopback_base_url
from connectors.graph_drafts import (  # noqa: F401  (re-exported for callers and tests)
    DRAFTED_CATEGORY, KEY_PROPERTY, STAGE_PROPERTY, GraphDrafts, odata_string, splice_reply,
)
from connectors.graph_http import GraphError, GraphHttp, RetryPolicy, mailbox_semaphore
from connectors.mailbox import MailboxError, MailboxNotice, NoticeKind
from connectors.mailbox_config import GraphMailboxConfig
from data_contracts.models import InboundMessage
from rxinbox.settings import Settings

log = logging.getLogger(__name__)

PROCESSED_CATEGORY = "rxinbox: processed"
ESCALATED_CATEGORY = "rxinbox: escalated"
PREFER_IMMUTABLE = 'IdType="ImmutableId"'
DELTA_PAGE_SIZE = 100
DELTA_SELECT = "receivedDateTime"
WELL_KNOWN_FOLDERS = {"inbox": "inbox", "drafts": "drafts", "sent items": "sentitems", "sentitems": "sentitems",
                      "deleted items": "deleteditems", "deleteditems": "deleteditems", "archive": "archive",
                      "junk email": "junkemail", "junkemail": "junkemail"}


class GraphMailbox(GraphDrafts):
    """One folder of a Microsoft 365 mailbox, swept incrementally with delta queries."""

    def __init__(self, name: str, http: GraphHttp, address: str, state_dir: Path, *, folder: str = "Inbox",
                 processed_folder: str | None = None, max_concurrency: int = 4) -> None:
        self.name, self.http, self.address = name, http, address
        self.folder, self.processed_folder = folder, processed_folder
        self.concurrency = max_concurrency
        self.user = f"users/{quote(address, safe='@')}"
        self.notices = http.notices
        self.mirror_file = graph_delta.MirrorFile(state_dir, name, self.notices)
        self._folders: dict[str, str] = {}
        self._folders_lock = threading.Lock()
        self.http.session.headers["Prefer"] = PREFER_IMMUTABLE

    def drain_notices(self) -> list[MailboxNotice]:
        """Faults handled since the last drain (throttling, retries, resyncs, vanished mail), for the audit trail."""
        return self.notices.drain()

    def _msg(self, ref: str, suffix: str = "") -> str:
        return f"{self.user}/messages/{quote(ref, safe='')}{suffix}"

    def _map(self, fn: Callable, items: list) -> list:
        if len(items) <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="graph") as pool:
            return list(pool.map(fn, items))

    # Folders

    def folder_id(self, name: str, create: bool = False) -> str:
        """Id of a well-known folder or a folder path like "Inbox/Done"; created when asked."""
        with self._folders_lock:
            if name not in self._folders:
                self._folders[name] = self._resolve_folder(name, create)
            return self._folders[name]

    def _resolve_folder(self, name: str, create: bool) -> str:
        parts = [p for p in name.split("/") if p]
        first = WELL_KNOWN_FOLDERS.get(parts[0].lower())
        if first:
            parent = self.http.json("GET", f"{self.user}/mailFolders/{first}", params={"$select": "id"})["id"]
        else:
            parent = self._child_folder(f"{self.user}/mailFolders", parts[0], create)
        for part in parts[1:]:
            parent = self._child_folder(f"{self.user}/mailFolders/{quote(parent, safe='')}/childFolders", part, create)
        return parent

    def _child_folder(self, collection: str, display_name: str, create: bool) -> str:
        params = {"$filter": f"displayName eq {odata_string(display_name)}", "$select": "id"}
        found = self.http.json("GET", collection, params=params).get("value", [])
        if found:
            return found[0]["id"]
        if not create:
            raise MailboxError(f"mailbox {self.name!r} has no folder {display_name!r}")
        try:
            return self.http.json("POST", collection, json={"displayName": display_name}, idempotent=True)["id"]
        except GraphError as exc:
            if exc.status != 409:  # ErrorFolderExists: another sweep created it a moment ago
                raise
            return self.http.json("GET", collection, params=params)["value"][0]["id"]

    # Listing and fetching

    def list_refs(self) -> list[str]:
        """Run the folder's delta round and return every message rxinbox has not handled, oldest first."""
        folder_id = self.folder_id(self.folder)
        start = self.http.url(f"{self.user}/mailFolders/{quote(folder_id, safe='')}/messages/delta")
        headers = {"Prefer": f"{PREFER_IMMUTABLE}, odata.maxpagesize={DELTA_PAGE_SIZE}"}
        with self.mirror_file.lock:
            mirror = graph_delta.refresh(self.http, self.mirror_file.load(), folder_id, start,
                                         {"$select": DELTA_SELECT}, headers)
            self.mirror_file.save(mirror)
        refs = mirror.waiting()
        log.info("graph mailbox %s: %d messages waiting in %s", self.name, len(refs), self.folder)
        return refs

    def fetch(self, refs: list[str]) -> Iterator[InboundMessage]:
        mirror = self.mirror_file.load()
        for ref, raw in zip(refs, self._map(self._mime, refs)):
            if raw is not None:
                yield InboundMessage(mailbox=self.name, ref=ref, raw=raw, folder=self.folder,
                                     received_at=mirror.received(ref))

    def _mime(self, ref: str) -> bytes | None:
        try:
            return self.http.request("GET", self.http.url(self._msg(ref, "/$value"))).content
        except GraphError as exc:
            if exc.status != 404:
                raise
            log.warning("graph mailbox %s: a message was deleted between listing and fetching; skipped", self.name)
            self.notices.record(NoticeKind.vanished_before_fetch, 1, f"folder {self.folder}")
            return None

    # Marking

    def mark_processed(self, refs: list[str]) -> None:
        """Mark read, add the 'rxinbox: processed' category and move to the processed folder; idempotent."""
        target = self.folder_id(self.processed_folder, create=True) if self.processed_folder else None
        self._map(lambda ref: self._update(ref, PROCESSED_CATEGORY, read=True, move_to=target), refs)
        with self.mirror_file.lock:
            mirror = self.mirror_file.load()
            mirror.mark_done(refs, moved_out=target is not None)
            self.mirror_file.save(mirror)

    def categorise(self, ref: str, category: str) -> None:
        """Add an Outlook category such as 'rxinbox: escalated' or 'rxinbox: drafted' (kept with the others)."""
        self._update(ref, category, read=False, move_to=None)

    def categorise_many(self, categories: dict[str, str]) -> None:
        self._map(lambda item: self.categorise(*item), list(categories.items()))

    def _update(self, ref: str, category: str, read: bool, move_to: str | None) -> None:
        try:
            msg = self.http.json("GET", self._msg(ref), params={"$select": "isRead,categories,parentFolderId"})
            patch = {}
            if read and not msg.get("isRead"):
                patch["isRead"] = True
            if category not in msg.get("categories", []):
                patch["categories"] = [*msg.get("categories", []), category]
            if patch:
                self.http.request("PATCH", self.http.url(self._msg(ref)), json=patch)
            if move_to and msg.get("parentFolderId") != move_to:
                self.http.request("POST", self.http.url(self._msg(ref, "/move")), json={"destinationId": move_to},
                                  idempotent=True)
        except GraphError as exc:
            if exc.status != 404:
                raise
            log.warning("graph mailbox %s: a message to mark was deleted meanwhile; skipped", self.name)
            self.notices.record(NoticeKind.vanished_before_mark, 1, f"folder {self.folder}")

    def move(self, ref: str, folder: str) -> None:
        destination = self.folder_id(folder, create=True)
        self.http.request("POST", self.http.url(self._msg(ref, "/move")), json={"destinationId": destination},
                          idempotent=True)


_OPEN: dict[tuple, GraphMailbox] = {}
_OPEN_LOCK = threading.Lock()


def build_mailbox(config: GraphMailboxConfig, settings: Settings, *, base_url: str | None = None,
                  test_token: str | None = None, policy: RetryPolicy = RetryPolicy(),
                  sleep: Callable[[float], None] = time.sleep) -> GraphMailbox:
    """A GraphMailbox for config; base_url and test_token are the loopback test switches."""
    account, tokens = connect(config, base_url, test_token)
    http = GraphHttp(account.con.get_session(load_token=False), account.protocol.service_url, tokens,
                     mailbox_semaphore(config.mailbox.lower(), config.max_concurrency), policy, sleep)
    return GraphMailbox(config.name, http, config.mailbox, settings.home / "graph", folder=config.folder,
                        processed_folder=config.processed_folder, max_concurrency=config.max_concurrency)


def open_from_config(config: GraphMailboxConfig, settings: Settings) -> GraphMailbox:
    """The sweep's entry point; one connector (token, connection pool) per mailbox and process."""
    base_url = loopback_base_url()
    test_token = os.environ.get(TEST_TOKEN_ENV) if base_url else None
    key = (config, str(settings.home), base_url, test_token)
    with _OPEN_LOCK:
        if key not in _OPEN:
            _OPEN[key] = build_mailbox(config, settings, base_url=base_url, test_token=test_token)
        return _OPEN[key]
