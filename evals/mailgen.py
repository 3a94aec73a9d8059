"""Generate realistic test mailboxes from the team-written triage set (for bench and crash tests)."""

import argparse
import json
import random
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRIAGE_DIR = REPO / "datasets" / "triage"
# Every team-written row, the first two files first (so earlier mailboxes keep their opening messages).
ROWS = [TRIAGE_DIR / "messages_en.jsonl", TRIAGE_DIR / "messages_da.jsonl"] + sorted(
    p for p in TRIAGE_DIR.glob("messages_*.jsonl") if p.name not in ("messages_en.jsonl", "messages_da.jsonl"))
START = datetime(2026, 11, 1, 7, 0, tzinfo=timezone.utc)


def load_rows() -> list[dict]:
    rows = []
    for path in ROWS:
        with path.open(encoding="utf-8") as handle:
            rows.extend(json.loads(line) for line in handle if line.strip())
    return rows


def render(row: dict, n: int, rng: random.Random) -> bytes:
    """One RFC 822 message: the row's text with a unique id, a date and a little variation."""
    msg = EmailMessage()
    msg["From"] = row["from"]
    msg["To"] = "apotek@soendergade-apotek.example"
    msg["Subject"] = row["subject"]
    msg["Date"] = format_datetime(START + timedelta(minutes=7 * n + rng.randint(0, 6)))
    msg["Message-ID"] = f"<gen-{n:06d}.{rng.randrange(16**8):08x}@example.net>"
    body = row["body"]
    if rng.random() < 0.5:
        # Vary the text so nothing downstream can answer from a cache of identical mails.
        body = body + ("\n\nRef. " if row["language"] == "en" else "\n\nRef.nr. ") + str(rng.randint(10000, 99999))
    msg.set_content(body)
    return bytes(msg)


def generate(target: Path, count: int, seed: int = 7) -> list[Path]:
    """Write count .eml files into target (created); returns their paths."""
    rng = random.Random(seed)
    rows = load_rows()
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = target / f"{n:06d}.eml"
        path.write_bytes(render(rows[n % len(rows)], n, rng))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", type=Path)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    generate(args.target, args.count)


if __name__ == "__main__":
    main()
