"""Hushpost: a self-hosted secure messaging portal."""

__version__ = "0.1.0"
