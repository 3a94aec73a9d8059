"""The labelled triage set: row schema, loading and the one deterministic train/held-out split."""

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from data_contracts.models import Intent, Language, Reason

DATASET_DIR = Path(__file__).resolve().parents[2] / "datasets" / "triage"
DATASET_GLOB = "messages_*.jsonl"
HELD_OUT_BUCKETS = 4  # one bucket in four (~25 %) is held out


class TriageRow(BaseModel):
    """One labelled message (team-written; pharmacist corrections later become rows too)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    id: str = Field(min_length=1)
    language: Language
    sender: str | None = Field(default=None, alias="from")
    subject: str = ""
    body: str
    intent: Intent
    secondary_intents: list[Intent] = Field(default_factory=list)
    escalate: bool
    reasons: list[Reason] = Field(default_factory=list)
    needs_reply: bool = True


def is_held_out(row_id: str) -> bool:
    """Whether a row belongs to the held-out split: by a hash of its id, so the split never drifts."""
    digest = hashlib.sha256(row_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % HELD_OUT_BUCKETS == 0


def read_rows(paths: Iterable[Path]) -> list[TriageRow]:
    """Rows of JSONL files, validated; a bad line fails naming its file and line."""
    rows: list[TriageRow] = []
    for path in sorted(paths):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(TriageRow.model_validate(json.loads(line)))
                except ValueError as exc:
                    raise ValueError(f"{path}:{number}: {exc}") from exc
    return rows


def dataset_files(directory: Path = DATASET_DIR) -> list[Path]:
    return sorted(directory.glob(DATASET_GLOB))


def load_split(directory: Path = DATASET_DIR) -> tuple[list[TriageRow], list[TriageRow]]:
    """(train, held_out) rows of the team's labelled set."""
    rows = read_rows(dataset_files(directory))
    train = [r for r in rows if not is_held_out(r.id)]
    held_out = [r for r in rows if is_held_out(r.id)]
    return train, held_out
