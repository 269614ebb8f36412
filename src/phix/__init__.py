"""phix: the Putian regional health information exchange."""

__version__ = "0.1.0"
