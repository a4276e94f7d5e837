"""Applies one lead's amplitude to the DAC without ever changing it during a pulse.

A pulse's two phases must carry equal charge, so the current may only change between
pulses. To change it while the lead runs, the lead's ARM line is dropped (the PIO finishes
the pulse in flight, then plays rest in exact time), the DAC is written once the longest
pulse has surely ended, and ARM is raised again: at most one pulse is played as rest, none is
unbalanced, and the train keeps its phase. Steps are at least STEP_MS apart.
"""

from stim import segments
from stim.safety import ticks_add, ticks_diff

STEP_MS = 50


class Amplitude:
    def __init__(self, engine, dac, lead):
        self.engine = engine
        self.dac = dac
        self.lead = lead
        self.applied = 0
        self._gated_at = None
        self._zero_at = None
        self._last = 0

    def _pulse_ms(self):
        return segments.pulse_cycles(self.lead.settings) // 125_000 + 1

    def _write(self, code):
        self.dac.set(self.lead.index, code)
        self.applied = code

    def reset(self):
        self._gated_at = None
        self._zero_at = None
        self._write(0)

    def started(self, now):
        """The lead is about to start: its current starts from 0 (the ramp takes it up)."""
        self._gated_at = None
        self._zero_at = None
        self._write(0)

    def stopped(self, now):
        """The lead was disarmed: zero the current once the pulse in flight has ended."""
        self._gated_at = None
        self._zero_at = ticks_add(now, self._pulse_ms())

    def service(self, desired, now):
        if not self.lead.running:
            if self.applied and (self._zero_at is None or ticks_diff(now, self._zero_at) >= 0):
                self._write(0)
            return
        if self._gated_at is None:
            if desired == self.applied or ticks_diff(now, self._last) < STEP_MS:
                return
            self.engine.gate(self.lead, False)
            self._gated_at = now
            return
        if ticks_diff(now, self._gated_at) >= self._pulse_ms():
            self._write(desired)
            self.engine.gate(self.lead, True)
            self._gated_at = None
            self._last = now
