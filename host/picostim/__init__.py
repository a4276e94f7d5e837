"""PicoStim host tools: serial client, virtual board, capture and CLI."""

__version__ = "0.1.0"
