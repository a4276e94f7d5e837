"""The pulse engine: four leads on PIO0, started together in one PIO cycle.

`start(mask)` prepares each lead of `mask` (program, record, DMA) and then enables all their
state machines with one write to PIO0 CTRL's atomic SET alias, so they start in the same
cycle and differ exactly by their programmed delays. `disarm(mask)` drops the leads' ARM lines:
each finishes the pulse it is playing, both phases, and then plays rest. `halt()` stops every
state machine at once (one write to CTRL's CLR alias) for the safety paths.
"""

from micropython import const

_PIO0_CTRL = const(0x50200000)
_SET = const(0x2000)
_CLR = const(0x3000)


class Engine:
    def __init__(self, mem32, leads, arm_pins):
        self.mem32 = mem32
        self.leads = leads
        self.arm_pins = arm_pins

    def _mask(self, leads):
        m = 0
        for lead in leads:
            m |= 1 << lead.sm_id
        return m

    def start(self, leads):
        """Start `leads` (Lead objects on PIO0) together; returns the SM mask started."""
        if not leads:
            return 0
        mask = self._mask(leads)
        self.mem32[_PIO0_CTRL | _CLR] = mask
        for lead in leads:
            lead.prepare()
        for lead in leads:
            self.arm_pins[lead.index].value(1)
            lead.running = True
        # One write: restart the clock dividers and enable every masked SM in the same cycle.
        self.mem32[_PIO0_CTRL | _SET] = (mask << 8) | mask
        return mask

    def disarm(self, leads):
        """Let `leads` finish the pulse in flight, then rest (timing keeps running)."""
        for lead in leads:
            self.arm_pins[lead.index].value(0)
            lead.running = False

    def gate(self, lead, on):
        """Hold `lead` at rest from its next pulse on (off), or let it pulse again (on),
        without touching its timing: the state machine keeps playing every segment."""
        self.arm_pins[lead.index].value(1 if on else 0)

    def halt(self):
        """Stop every lead's state machine and DMA now (the caller then drives pins low)."""
        for a in self.arm_pins:
            a.value(0)
        m = self._mask(self.leads)
        self.mem32[_PIO0_CTRL | _CLR] = m
        for lead in self.leads:
            lead.stop_now()
