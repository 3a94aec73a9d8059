"""Hybrid ranking of knowledge-base sections over an in-memory snapshot of the Chroma collection.

A pharmacy's knowledge base is hundreds of sections, so every query scores every section exactly (a matrix
product) instead of asking Chroma's approximate index for a shortlist; that also lets the dense score be
fused with a lexical one that Chroma cannot compute.
"""

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from core.kb_chunking import DANISH_STOPWORDS, GREETING_WORDS, lexical_text

# Hybrid score: the section's own vector, its translation's vector (e5 reads English a little better),
# and character n-gram TF-IDF in the question's language (catches compounds and exact terms e5 blurs).
# Weights from a grid on knowledge_base/eval: a plateau (partner 1/3-1/2, lexical 0.2-0.3 within one question).
WEIGHT_DENSE, WEIGHT_PARTNER, WEIGHT_LEXICAL = 2 / 3, 1 / 3, 0.25
STOPWORDS = DANISH_STOPWORDS | frozenset(ENGLISH_STOP_WORDS) | GREETING_WORDS


@dataclass(frozen=True)
class Snapshot:
    """The collection in memory: a knowledge base is hundreds of sections, so exact scoring is cheap."""

    fingerprint: str
    languages: np.ndarray
    docs: list[str]
    headings: list[str]
    texts: list[str]
    vectors: np.ndarray
    partner: np.ndarray
    lexical: dict[str, tuple[np.ndarray, TfidfVectorizer, object]]


def build_snapshot(rows: dict, fingerprint: str, cross_lingual: bool) -> Snapshot:
    """Arrays for scoring, each section's translation (best match in the same doc), per-language TF-IDF."""
    metas = rows["metadatas"]
    languages = np.array([m["language"] for m in metas])
    docs = [m["doc"] for m in metas]
    headings = [m["heading"] for m in metas]
    texts = list(rows["documents"])
    vectors = np.asarray(rows["embeddings"], dtype=np.float32)
    partner = np.arange(len(metas))
    if cross_lingual:
        by_doc: dict[str, list[int]] = defaultdict(list)
        for i, doc in enumerate(docs):
            by_doc[doc].append(i)
        for members in by_doc.values():
            members_at = np.array(members)
            similarity = vectors[members_at] @ vectors[members_at].T
            same_language = languages[members_at][:, None] == languages[members_at][None, :]
            similarity[same_language] = -np.inf
            best = similarity.argmax(axis=1)
            has_other = np.isfinite(similarity.max(axis=1))
            partner[members_at[has_other]] = members_at[best[has_other]]
    lexical = {}
    for language in set(languages.tolist()):
        index = np.flatnonzero(languages == language)
        corpus = [lexical_text(f"{metas[i].get('title', '')}: {headings[i]}\n{texts[i]}", STOPWORDS) for i in index]
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
        try:
            lexical[language] = (index, vectorizer, vectorizer.fit_transform(corpus))
        except ValueError:  # nothing but stopwords in this language: dense scores alone
            continue
    return Snapshot(fingerprint, languages, docs, headings, texts, vectors, partner, lexical)


def score_sections(snapshot: Snapshot, query_vectors: np.ndarray, texts: list[str]) -> np.ndarray:
    """Hybrid score of every section for every query: rows are queries, columns sections."""
    dense = query_vectors @ snapshot.vectors.T
    scores = WEIGHT_DENSE * dense + WEIGHT_PARTNER * dense[:, snapshot.partner]
    cleaned = [lexical_text(text, STOPWORDS) for text in texts]
    for index, vectorizer, matrix in snapshot.lexical.values():
        lexical = (vectorizer.transform(cleaned) @ matrix.T).toarray()
        scores[:, index] += WEIGHT_LEXICAL * lexical
    return scores
