"""The virtual board's flash: a LittleFS2 image file, as the Pico's filesystem is.

A Pico's MicroPython keeps its files in 1408 KiB of LittleFS2 on 4096-byte erase blocks. The
virtual board mounts an image file of that layout (see `mp/_boot.py` and `mp/_flashbdev.py`);
`make_factory_image` builds a fresh one holding the compiled firmware, which is what
`make flash` leaves on a Pico. MicroPython itself formats and fills it, so the image is
exactly what the board's own LittleFS driver writes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

BLOCK_SIZE = 4096
FLASH_BYTES = 1408 * 1024  # the rp2 port's filesystem size on a 2 MB Pico


class FlashImageError(RuntimeError):
    pass


def check_image(path: Path) -> None:
    """Raise FlashImageError unless `path` can be the board's flash."""
    size = path.stat().st_size
    if size < 8 * BLOCK_SIZE or size % BLOCK_SIZE:
        raise FlashImageError(
            "%s is not a flash image: %d bytes, not a multiple of %d (at least 8 blocks)"
            % (path, size, BLOCK_SIZE)
        )


def make_factory_image(
    path: Path,
    content: Path,
    micropython: str,
    simlib: Path,
    size: int = FLASH_BYTES,
) -> None:
    """Write a fresh image at `path`: erased flash, formatted, holding every file of `content`."""
    if size % BLOCK_SIZE or size < 8 * BLOCK_SIZE:
        raise FlashImageError("flash size must be a multiple of %d bytes" % BLOCK_SIZE)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        erased = b"\xff" * BLOCK_SIZE
        for _ in range(size // BLOCK_SIZE):
            f.write(erased)
    env = dict(os.environ)
    env["MICROPYPATH"] = str(simlib)
    code = "import _flashbdev\n_flashbdev.factory(%r, %r)\n" % (str(tmp), str(content))
    proc = subprocess.run(
        [micropython, "-X", "heapsize=192K", "-c", code],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise FlashImageError(
            "could not build the flash image: %s" % (proc.stdout + proc.stderr).strip()
        )
    os.replace(tmp, path)
