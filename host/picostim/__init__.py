"""PicoStim host tools: serial client, virtual board, capture and CLI.

`from picostim import PicoStim` is the Python API (picostim.api), imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from picostim.api import PicoStim

__version__ = "0.1.0"
__all__ = ["PicoStim", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "PicoStim":
        from picostim.api import PicoStim

        return PicoStim
    raise AttributeError("module 'picostim' has no attribute %r" % name)
