"""wastebank: shared core (message schemas, settings, ledger, InfluxDB access, services)."""

__version__ = "0.1.0"
