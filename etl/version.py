"""The version of affelios-import, where every module (and the build) reads it."""

__version__ = "0.1.0"
