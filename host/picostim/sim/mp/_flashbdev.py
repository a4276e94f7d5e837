"""The virtual board's flash chip: a block device over an image file (runs inside MicroPython).

It offers what the rp2 port's `rp2.Flash` offers LittleFS: 4096-byte erase blocks and the
extended block-device protocol (`readblocks`/`writeblocks` with a byte offset, `ioctl` 6 to
erase a block). Buffers are small and fixed: the heap is a Pico's 192 KiB.

Before each program operation (one `writeblocks` call) the block device asks the supervisor,
which counts it and may cut the power there: the write is then not done and the process is
killed before the call returns, as a brown-out leaves a real chip. Unattached (no supervisor,
e.g. when the factory image is built) every write goes through.

`factory(image, src)` formats an image and copies a directory tree into it: what `make flash`
leaves on a fresh Pico.
"""

import os
import time

import _simlink as _L

BLOCK_SIZE = 4096
_CHUNK = 512  # bytes per file read/write when copying and erasing


class Flash:
    """4096-byte blocks over the image file at `path` (its size is the flash size)."""

    def __init__(self, path):
        self._f = open(path, "r+b")
        self._f.seek(0, 2)
        self._blocks = self._f.tell() // BLOCK_SIZE
        self._erased = b"\xff" * _CHUNK

    def readblocks(self, block, buf, offset=0):
        self._f.seek(block * BLOCK_SIZE + offset)
        self._f.readinto(buf)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            # Simple protocol (whole blocks): erase, then program.
            for i in range(len(buf) // BLOCK_SIZE):
                self._erase(block + i)
            offset = 0
        if _L.request("flashw", block, offset, len(buf)) == "cut":
            while True:  # the supervisor kills us now; nothing after a power cut happens
                time.sleep(1)
        self._f.seek(block * BLOCK_SIZE + offset)
        self._f.write(buf)

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self._blocks
        if op == 5:  # block size
            return BLOCK_SIZE
        if op == 6:  # erase
            self._erase(arg)
            return 0
        if op in (1, 2, 3):  # init, deinit, sync: writes go straight to the file
            return 0
        return None

    def _erase(self, block):
        self._f.seek(block * BLOCK_SIZE)
        for _ in range(BLOCK_SIZE // _CHUNK):
            self._f.write(self._erased)


def mount(path, where="/"):
    """Mount the image as the rp2 port's `_boot.py` mounts its flash: format it if needed."""
    import vfs

    bdev = Flash(path)
    try:
        fs = vfs.VfsLfs2(bdev, progsize=256)
    except OSError:
        vfs.VfsLfs2.mkfs(bdev, progsize=256)
        fs = vfs.VfsLfs2(bdev, progsize=256)
    vfs.mount(fs, where)
    return fs


def factory(image, src):
    """Format `image` and copy every file below the host directory `src` into it."""
    import vfs

    bdev = Flash(image)
    vfs.VfsLfs2.mkfs(bdev, progsize=256)
    vfs.mount(vfs.VfsLfs2(bdev, progsize=256), "/flash")
    buf = bytearray(_CHUNK)
    _copy_tree(src, "/flash", buf)
    vfs.umount("/flash")


def _copy_tree(src, dst, buf):
    for entry in os.ilistdir(src):
        name, kind = entry[0], entry[1]
        s = src + "/" + name
        d = dst + "/" + name
        if kind == 0x4000:
            os.mkdir(d)
            _copy_tree(s, d, buf)
            continue
        with open(s, "rb") as fin, open(d, "wb") as fout:
            mv = memoryview(buf)
            while True:
                n = fin.readinto(buf)
                if not n:
                    break
                fout.write(mv[:n])
