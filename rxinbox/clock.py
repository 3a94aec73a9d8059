"""The one clock of the system: real time, or a fixed instant from RXINBOX_NOW."""

from datetime import datetime, timezone

from rxinbox.settings import get_settings


def now() -> datetime:
    """Timezone-aware current time; RXINBOX_NOW pins it so tests and replays are deterministic."""
    fixed = get_settings().now
    return fixed if fixed is not None else datetime.now(timezone.utc)
