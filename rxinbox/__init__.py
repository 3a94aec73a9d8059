"""rxinbox: an e-mail assistant for community pharmacies."""

from rxinbox.environment import apply_defaults

# Telemetry must be off before prefect, great_expectations or chromadb are imported anywhere.
apply_defaults()

__version__ = "0.1.0"
