"""CTCP: the Counter-Terrorism Coordination Platform."""

__version__ = "0.1.0"
