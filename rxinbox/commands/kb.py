"""`rxinbox kb index` and `rxinbox kb search`: the knowledge base in Chroma."""

import importlib
import json
from pathlib import Path

import typer

from rxinbox.settings import get_settings

# Chroma, scikit-learn and the embedding model take about two seconds to import: only `kb` commands pay.
KNOWLEDGE_BASE_MODULE = "connectors.knowledge_base"

kb_app = typer.Typer(help="The pharmacy's knowledge base (Markdown in knowledge_base/docs, indexed in Chroma).",
                     no_args_is_help=True)


def _knowledge_base():
    module = importlib.import_module(KNOWLEDGE_BASE_MODULE)
    settings = get_settings()
    settings.ensure_dirs()
    return module, module.KnowledgeBase(settings)


@kb_app.command("index")
def index(
    docs: Path | None = typer.Option(None, "--docs", help="Folder with da/ and en/ Markdown (default: RXINBOX_KB_DOCS_DIR)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Embed new and changed sections, drop removed ones. Example: rxinbox kb index"""
    _, kb = _knowledge_base()
    try:
        report = kb.index(docs)
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(report.model_dump(), ensure_ascii=False))
        return
    typer.echo(f"{report.documents} documents, {report.sections} sections in {report.collection} "
               f"({report.embedder})")
    typer.echo(f"added {report.added}, updated {report.updated}, removed {report.removed}, "
               f"unchanged {report.unchanged}")


@kb_app.command("search")
def search(
    query: str = typer.Argument(..., help="The question, as a customer would write it."),
    language: str | None = typer.Option(None, "--language", "-l", help="da or en: prefer passages in it."),
    k: int = typer.Option(3, "--k", min=1, max=20, help="How many passages at most."),
    as_json: bool = typer.Option(False, "--json", help="Print passages as JSON lines."),
) -> None:
    """Passages that answer a question, best first. Example: rxinbox kb search "hvornår lukker I lørdag?" -l da"""
    if language not in (None, "da", "en"):
        typer.echo("error: --language must be da or en", err=True)
        raise typer.Exit(2)
    _, kb = _knowledge_base()
    if kb.count() == 0:
        kb.index()
    passages = kb.search(query, language=language, k=k)
    if not passages:
        typer.echo(f"no passage scores at least {kb.min_score:.3f}", err=True)
        return
    for passage in passages:
        if as_json:
            typer.echo(json.dumps(passage.model_dump(), ensure_ascii=False))
        else:
            typer.echo(f"{passage.score:.3f}  {passage.language}/{passage.doc} # {passage.heading}")
            typer.echo(f"       {passage.text[:200].replace(chr(10), ' ')}{'…' if len(passage.text) > 200 else ''}")


def register(app: typer.Typer) -> None:
    """Add the `kb` command group."""
    app.add_typer(kb_app, name="kb")
