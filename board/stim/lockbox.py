"""The instructor lock: limits frozen behind a passcode stored as a salted SHA-256 hash.

Wrong passcodes are slowed down: after three, each further attempt must wait twice as long
as the last (1 s, 2 s, 4 s ... up to 5 min); the count survives power cycles with the lock.
`now` is ticks_ms, passed in.
"""

import hashlib
import os

from stim import store
from stim.safety import ticks_add, ticks_diff

FILE = "lock.json"
_FREE_TRIES = 3
_MAX_WAIT_MS = 300_000


def _hash(salt, passcode):
    h = hashlib.sha256(salt)
    h.update(passcode.encode())
    return "".join("%02x" % b for b in h.digest())


class LockBox:
    def __init__(self, path=FILE):
        self.path = path
        self.locked = False
        self._salt = b""
        self._hash = ""
        self.limits = None  # the frozen limits, as saved
        self.failures = 0
        self._not_before = None

    def load(self, now=0):
        try:
            rec = store.load(self.path)
        except store.Corrupt:
            # Fail closed: locked, at the default limits (the instructor's are unknown), and
            # no passcode opens it; deleting lock.json at the REPL resets it.
            self.locked = True
            self._hash = "-"
            self.limits = None
            return
        if rec:
            self.locked = bool(rec.get("locked"))
            self._salt = bytes.fromhex(rec.get("salt", ""))
            self._hash = rec.get("hash", "")
            self.limits = rec.get("limits")
            self.failures = rec.get("failures", 0)
            if self.failures >= _FREE_TRIES:
                # A power cycle buys no free guess: the last wait starts over from boot.
                wait = min(_MAX_WAIT_MS, 1000 << (self.failures - _FREE_TRIES))
                self._not_before = ticks_add(now, wait)

    def _save(self):
        store.save(
            self.path,
            {
                "locked": self.locked,
                "salt": "".join("%02x" % b for b in self._salt),
                "hash": self._hash,
                "limits": self.limits,
                "failures": self.failures,
            },
        )

    def lock(self, passcode, limits):
        was = (self._salt, self._hash, self.locked, self.limits, self.failures)
        self._salt = os.urandom(16)
        self._hash = _hash(self._salt, passcode)
        self.locked = True
        self.limits = limits
        self.failures = 0
        try:
            self._save()
        except Exception:
            # Not on flash, so not locked: a power cycle would open a lock in RAM only, and
            # the instructor is told it failed.
            self._salt, self._hash, self.locked, self.limits, self.failures = was
            raise

    def wait_ms(self, now):
        """How long before another attempt is allowed (0 = now)."""
        if self._not_before is None:
            return 0
        return max(0, ticks_diff(self._not_before, now))

    def unlock(self, passcode, now):
        """True if the passcode is right (the lock opens); False otherwise."""
        if _hash(self._salt, passcode) == self._hash:
            was = (self.failures, self._not_before)
            self.locked = False
            self.failures = 0
            self._not_before = None
            try:
                self._save()
            except Exception:
                self.locked = True  # as lock(): only what is on flash counts
                self.failures, self._not_before = was
                raise
            return True
        self.failures += 1
        if self.failures >= _FREE_TRIES:
            wait = min(_MAX_WAIT_MS, 1000 << (self.failures - _FREE_TRIES))
            self._not_before = ticks_add(now, wait)
        self._save()
        return False
