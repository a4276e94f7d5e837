"""Safety event log: the newest entries, kept on flash so they survive a power cycle.

Each entry is (boot number, ms since that boot, code, text). Events are rare (faults,
interlock changes, rejected limits, resets, lock changes), so each one rewrites the small
file atomically.
"""

from stim import store

FILE = "log.json"
KEEP = 16  # its file and SYST:LOG?'s reply stay under 1 KB, so a worn heap still has room


class EventLog:
    def __init__(self, path=FILE):
        self.path = path
        self.entries = []
        self.boot = 0

    def load(self):
        try:
            rec = store.load(self.path)
        except store.Corrupt:
            rec = None
        if rec:
            self.entries = rec.get("entries", [])[-KEEP:]
            self.boot = rec.get("boot", 0)
        self.boot += 1

    def add(self, now, code, text):
        try:
            self.entries.append([self.boot, now, code, text])
            del self.entries[:-KEEP]
            store.save(self.path, {"boot": self.boot, "entries": self.entries})
        except (OSError, MemoryError):
            pass  # a full or failing flash, or no heap, must not stop the safety reaction

    def text(self):
        return ",".join(self.pieces())

    def pieces(self):
        """The SYSTem:LOG? reply, one string per entry (written piece by piece)."""
        if not self.entries:
            return ['""']
        return ['"%d:%d ms %d %s"' % (b, t, c, m) for b, t, c, m in self.entries[-KEEP:]]
