"""affelios-import: register customers from CSV exports with the Affelios platform."""

__version__ = "0.1.0"
