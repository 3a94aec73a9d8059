"""`rxinbox triage` (JSON lines in, triage results out) and `rxinbox train` (rebuild the intent model)."""

import gc
import json
import multiprocessing
import os
import sys
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from pathlib import Path
from typing import IO

import typer

from connectors import model_store
from core.triage.engine import TriageInput, Triager
from data_contracts.models import TriageResult
from rxinbox.settings import get_settings

BATCH = 512


def result_json(message_id: str, result: TriageResult) -> dict:
    """One output line: the fields the issue specifies, in that order."""
    return {
        "id": message_id,
        "intent": result.intent.value,
        "secondary_intents": [i.value for i in result.secondary_intents],
        "escalate": result.escalate,
        "reasons": [r.value for r in result.reasons],
        "priority": result.priority.value,
        "language": result.language,
        "confidence": result.confidence,
        "evidence": [e.model_dump(mode="json") for e in result.evidence],
    }


def parse_line(line: str) -> TriageInput:
    """A JSONL input line {"id", "from", "subject", "body"} (extra fields ignored) as a TriageInput."""
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("a line must be a JSON object")
    missing = [k for k in ("id", "body") if not isinstance(record.get(k), str)]
    if missing:
        raise ValueError(f"missing or non-string field(s): {', '.join(missing)}")
    subject, sender = record.get("subject") or "", record.get("from")
    if not isinstance(subject, str) or not (sender is None or isinstance(sender, str)):
        raise ValueError("'subject' and 'from' must be strings")
    return TriageInput(id=record["id"], sender=sender, subject=subject, body=record["body"])


def _batches(lines: Iterable[str], errors: list[str]) -> Iterator[list[TriageInput]]:
    batch: list[TriageInput] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            batch.append(parse_line(line))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            errors.append(f"line {number}: {exc}")
            continue
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def render(triager: Triager, batch: list[TriageInput]) -> tuple[int, str]:
    """Output lines of one batch (and how many): workers send text back, not result objects."""
    results = triager.triage_many(batch)
    return len(batch), "".join(json.dumps(result_json(item.id, result), ensure_ascii=False) + "\n"
                               for item, result in zip(batch, results))


# The forked workers' triager: inherited from the parent at fork time, never pickled.
_WORKER_TRIAGER: Triager | None = None


def _render_in_worker(batch: list[TriageInput]) -> tuple[int, str]:
    return render(_WORKER_TRIAGER, batch)


def run(triager: Triager, source: IO[str], sink: IO[str], workers: int = 1) -> tuple[int, list[str]]:
    """Triage every line of `source` into `sink`, in input order; returns (lines written, errors).

    Input of more than one batch is spread over `workers` forked processes (one per core), so a big
    file uses the whole machine; a small one never pays for starting them.
    """
    global _WORKER_TRIAGER
    errors: list[str] = []
    batches = _batches(source, errors)
    head = list(islice(batches, 2))
    serial = workers <= 1 or len(head) < 2 or "fork" not in multiprocessing.get_all_start_methods()
    written = 0
    if serial:
        for batch in chain(head, batches):
            count, text = render(triager, batch)
            sink.write(text)
            written += count
        return written, errors
    _WORKER_TRIAGER = triager
    # The loaded model, rules and caches live as long as the process: frozen, the workers' collector never walks
    # them again (and copy-on-write keeps their pages shared).
    gc.freeze()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for count, text in pool.imap(_render_in_worker, chain(head, batches)):
            sink.write(text)
            written += count
    return written, errors


def triage_command(
    input: Path | None = typer.Option(None, "--input", "-i", help="JSONL file; stdin when omitted.",
                                      exists=True, dir_okay=False, readable=True),
    output: Path | None = typer.Option(None, "--output", "-o", help="JSONL file; stdout when omitted."),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes for large input; 0 = one per CPU core."),
) -> None:
    """Triage e-mails: intent, escalation, reasons and evidence per line (offline, shipped model).

    Example: rxinbox triage --input mails.jsonl --output triage.jsonl
    """
    triager = Triager.load()
    source = input.open(encoding="utf-8") if input else sys.stdin
    sink = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        written, errors = run(triager, source, sink, workers or os.cpu_count() or 1)
    finally:
        if input:
            source.close()
        if output:
            sink.close()
    for error in errors:
        typer.echo(f"rxinbox triage: skipped {error}", err=True)
    if output:
        typer.echo(f"{written} message(s) triaged into {output}", err=True)
    if errors:
        raise typer.Exit(1)


def train_command(
    extra: list[Path] = typer.Option([], "--extra", help="More labelled JSONL rows (e.g. pharmacist corrections).",
                                     exists=True, dir_okay=False),
) -> None:
    """Retrain the intent model on the labelled set's training split and store it as a versioned artefact.

    Example: rxinbox train
    """
    rows = model_store.training_rows(extra=extra)
    model, path = model_store.train_and_save(get_settings().models_dir, rows)
    typer.echo(f"trained triage model {model.version} on {model.trained_rows} rows: "
               f"cv accuracy {model.metrics['cv_accuracy']:.3f}, {model.thresholds_text()}")
    typer.echo(f"saved {path}")


def register(app: typer.Typer) -> None:
    app.command("triage")(triage_command)
    app.command("train")(train_command)


if __name__ == "__main__":  # `python -m rxinbox.commands.triage` measures start-up without the other commands
    standalone = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    standalone.command()(triage_command)
    standalone()
