"""The one clock of the system: real time, or a fixed instant from RXINBOX_NOW."""

from datetime import datetime, timezone

from rxinbox.settings import get_settings


def now() -> datetime:
    """Current time in UTC; RXINBOX_NOW pins it so tests and replays are deterministic."""
    fixed = get_settings().now
    # Always UTC: SQLite drops offsets, so a stored local time would come back shifted.
    return fixed.astimezone(timezone.utc) if fixed is not None else datetime.now(timezone.utc)
