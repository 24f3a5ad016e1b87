"""Version of marladona: the one place it is written (PEP 440)."""

__version__ = "0.1.0.dev0"
