"""When triggered trains start and stop: the external-trigger state machine (pure logic).

The start itself is exact: each lead's state machine waits in the PIO for the trigger input
to go high (`stim.engine`), so a train starts in the cycle the edge arrives. This module only
decides, from the polled input level and the time, when to stop a train and when to arm the
leads again for the next edge:

- NORMal: an edge starts the train; a finite train re-arms once it has played out;
- TOGGle: an edge starts it, the next edge stops it;
- GATed: it runs while the input is high.

`update(rises, level, now, train_ms)` returns "arm", "stop" or None; the caller acts on it.
`rises` counts the input's rising edges since the last call (from a pin IRQ that only counts),
so an edge shorter than the main loop's poll is never missed.
"""

from stim.safety import ticks_diff

NORMAL, TOGGLE, GATED = 0, 1, 2
IDLE, ARMED, RUNNING, STOPPED = 0, 1, 2, 3


class TriggerControl:
    settle_ms = 5  # after a stop, wait this long (and for a low input) before arming again

    def __init__(self):
        self.mode = NORMAL
        self.state = IDLE
        self._since = 0

    def begin(self, now):
        """Output turned on: arm as soon as the input is low."""
        self.state = STOPPED
        self._since = now

    def end(self):
        self.state = IDLE

    def armed(self, now):
        self.state = ARMED
        self._since = now

    def update(self, rises, level, now, train_ms):
        st = self.state
        if st == ARMED and rises:
            # The PIO started the train on the first of these edges.
            self.state = RUNNING
            self._since = now
            rises -= 1
            st = RUNNING
        if st == RUNNING:
            if (self.mode == TOGGLE and rises) or (self.mode == GATED and not level):
                return self._stop(now)
            if self.mode == NORMAL and train_ms and ticks_diff(now, self._since) >= train_ms:
                return self._stop(now)
            return None
        if st == STOPPED and not level and ticks_diff(now, self._since) >= self.settle_ms:
            return "arm"
        return None

    def _stop(self, now):
        self.state = STOPPED
        self._since = now
        return "stop"
