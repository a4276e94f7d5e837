"""Small records on the board's flash filesystem, written so a power cut never loses them.

`save(name, obj)` writes JSON plus a CRC to `name.tmp`, then renames it over `name`: the
rename is atomic on LittleFS, so after a cut either the old or the new record is there,
never half of one. `load(name)` returns the object, None if there is no record, and raises
`Corrupt` if the record fails its check.
"""

import json
import os
from binascii import crc32

from stim.heap import Spare


class Corrupt(Exception):
    pass


def save(name, obj):
    # Opening a file takes about 1.2 KB in one piece, the body as much: use the reserve.
    with Spare():
        _save(name, obj)


def _save(name, obj):
    body = json.dumps(obj)
    # The CRC in slices and the file in two writes: one large block of heap (the body), not
    # three, so a fragmented heap still lets the event log be saved.
    crc = 0
    for i in range(0, len(body), 128):
        crc = crc32(body[i : i + 128].encode(), crc)
    tmp = name + ".tmp"
    with open(tmp, "w") as f:
        f.write(body)
        f.write("\n%08x\n" % (crc & 0xFFFFFFFF))
    os.rename(tmp, name)


def load(name):
    with Spare():
        return _load(name)


def _load(name):
    try:
        with open(name) as f:
            text = f.read()
    except OSError:
        return None
    lines = text.split("\n")
    if len(lines) < 2:
        raise Corrupt(name)
    body, crc = lines[0], lines[1]
    try:
        ok = int(crc, 16) == crc32(body.encode()) & 0xFFFFFFFF
    except ValueError:
        ok = False
    if not ok:
        raise Corrupt(name)
    try:
        return json.loads(body)
    except ValueError:
        raise Corrupt(name)


def remove(name):
    try:
        os.remove(name)
    except OSError:
        pass
