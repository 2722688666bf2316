"""cua: a computer-use automation runner for the Responses API."""

__version__ = "0.1.0"
