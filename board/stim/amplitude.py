"""Applies one lead's amplitude to the DAC without ever changing it during a pulse.

A pulse's two phases must carry equal charge, so the current may only change between
pulses. To change it while the lead runs, the lead's ARM line is dropped (the PIO finishes
the pulse in flight, then plays rest in exact time), the DAC is written once the longest
pulse has surely ended, and ARM is raised again: at most one pulse is played as rest, none is
unbalanced, and the train keeps its phase. Steps are at least STEP_MS apart.
"""

from stim import segments
from stim.safety import ticks_add, ticks_diff, ticks_ms, ticks_us

STEP_MS = 50
QUIET_US = 3000  # a direct DAC write needs this long before the next pulse starts
MARGIN_US = 200  # and this long after the last pulse ended
_PREDICT_US = 400_000_000  # pulse times are predicted this long after a start (ticks wrap)


class Amplitude:
    def __init__(self, engine, dac, lead):
        self.engine = engine
        self.dac = dac
        self.lead = lead
        self.playing = lead.settings  # the settings the lead was last started with
        self.applied = 0
        self._gated_at = None
        self._zero_at = None
        self.stopped_at = 0  # ticks_ms read when the lead was last disarmed
        self._last = 0

    def _pulse_ms(self):
        return segments.pulse_cycles(self.playing) // 125_000 + 1

    def _in_long_rest(self):
        """True if the lead is now resting after a pulse and its next pulse is more than
        QUIET_US away. The pulse times are known exactly: the lead started at
        `lead.started_us` (the microsecond timer and the PIO run from the same crystal)."""
        s = self.playing
        start = getattr(self.lead, "started_us", None)
        if start is None or s.burst_count > 1 or getattr(s, "table", None):
            return False
        elapsed = ticks_diff(ticks_us(), start)
        if elapsed < 0 or elapsed > _PREDICT_US:
            return False  # the microsecond ticks wrap: only trust them for a while
        t = elapsed * 125 - segments.FIRST_PULSE - s.delay  # cycles since the first pulse
        if t < 0:
            return False
        into = t % s.period
        return (
            into > segments.pulse_cycles(s) + MARGIN_US * 125 and s.period - into > QUIET_US * 125
        )

    def _write(self, code):
        self.dac.set(self.lead.index, code)
        self.applied = code

    def reset(self):
        self._gated_at = None
        self._zero_at = None
        self._write(0)

    def started(self, now):
        """The lead is about to start: its current starts from 0 (the ramp takes it up)."""
        self.playing = self.lead.settings
        self._gated_at = None
        self._zero_at = None
        self._write(0)

    def stopped(self, now):
        """The lead was disarmed: zero the current once the pulse in flight has ended.

        Timed from the clock read here, plus a ms for its resolution: `now` was read when
        the loop pass began, and the disarm may come well after it."""
        self._gated_at = None
        self.stopped_at = ticks_ms()
        self._zero_at = ticks_add(self.stopped_at, self._pulse_ms() + 1)

    def service(self, desired, now):
        if not self.lead.running:
            if self.applied and (self._zero_at is None or ticks_diff(now, self._zero_at) >= 0):
                self._write(0)
            return
        if self._gated_at is None:
            if desired == self.applied:
                return
            if desired > self.applied and ticks_diff(now, self._last) < STEP_MS:
                return  # rises are paced; a decrease is applied at once
            if self._in_long_rest():
                # Between two pulses with time to spare: no pulse is in flight and none
                # starts before the write is done, so change the current at once.
                self.engine.gate(self.lead, False)
                self._write(desired)
                self.engine.gate(self.lead, True)
                self._last = now
                return
            self.engine.gate(self.lead, False)
            self._gated_at = ticks_ms()  # as in stopped(): the gate's own time
            return
        if ticks_diff(now, self._gated_at) > self._pulse_ms():
            self._write(desired)
            self.engine.gate(self.lead, True)
            self._gated_at = None
            self._last = now
