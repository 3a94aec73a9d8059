"""Process environment defaults: telemetry off and Prefect's home inside RXINBOX_HOME."""

import os
from pathlib import Path

TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "ANONYMIZED_TELEMETRY": "False",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    "HF_HUB_OFFLINE": "1",
}


def rxinbox_home() -> Path:
    """The data directory, resolved the same way the settings resolve it."""
    return Path(os.environ.get("RXINBOX_HOME", ".rxinbox")).expanduser().resolve()


def apply_defaults() -> None:
    """Switch telemetry off and keep Prefect's state in the project's data dir.

    Values already set by the user win, except telemetry, which is never left on:
    a pharmacy's mail pipeline must not phone home.
    """
    for key, value in TELEMETRY_OFF.items():
        os.environ[key] = value
    os.environ.setdefault("PREFECT_HOME", str(rxinbox_home() / "prefect"))
    # Quiet, fast local runs: no "View at http://..." banners fighting the CLI's output.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
