"""The one clock of the system: real time, or a fixed instant from RXINBOX_NOW."""

import os
from datetime import datetime, timezone
from functools import lru_cache


@lru_cache(maxsize=8)
def _fixed(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    # Always UTC: SQLite drops offsets, so a stored local time would come back shifted.
    return parsed.astimezone(timezone.utc)


def now() -> datetime:
    """Current time in UTC; RXINBOX_NOW (an ISO timestamp) pins it so tests and replays are deterministic.

    Read from the environment directly rather than through Settings: the clock is called for
    every stored record, and building Settings costs milliseconds.
    """
    fixed = os.environ.get("RXINBOX_NOW")
    return _fixed(fixed) if fixed else datetime.now(timezone.utc)
