"""The pulse engine: four leads on PIO0, started together in one PIO cycle, and the sync output.

`start(leads, trigger_pin, sync)` prepares each lead (program, record, DMA) and then enables
all their state machines with one write to PIO0 CTRL's atomic SET alias, so they start in the
same cycle and differ exactly by their programmed delays. With a trigger pin, each lead first
latches a `wait` on it, so all of them start in the cycle the trigger input goes high.
`disarm(leads)` drops the leads' ARM lines: each finishes the pulse it is playing, both
phases, and then plays rest. `park(lead)` stops a disarmed lead whose last pulse has ended and
gives its ring back to the pool. `halt()` stops every state machine at once (one write to CTRL's
CLR alias) for the safety paths.

The sync output is a state machine on PIO1 that follows the source lead's phase-1 pin
(`stim.sync_program`).
"""

import time

from micropython import const

from stim.lead import NoRoom
from stim.sync_program import sync_program

_PIO0_CTRL = const(0x50200000)
_PIO1_CTRL = const(0x50300000)
_SET = const(0x2000)
_CLR = const(0x3000)
_SYNC_SM = const(4)  # PIO1, state machine 0


class Engine:
    def __init__(self, mem32, leads, arm_pins, rp2=None, sync_pin=None, rings=None):
        self.mem32 = mem32
        self.leads = leads
        self.rings = rings
        self.arm_pins = arm_pins
        self.rp2 = rp2
        self.sync_pin = sync_pin

    def _mask(self, leads):
        m = 0
        for lead in leads:
            m |= 1 << lead.sm_id
        return m

    def _start_sync(self, lead, every_pulse):
        rp2 = self.rp2
        self.mem32[_PIO1_CTRL | _CLR] = 1 << (_SYNC_SM - 4)
        first = lead.pin_a + (1 if lead.settings.polarity else 0)  # the phase-1 pin
        sm = rp2.StateMachine(
            _SYNC_SM, sync_program, freq=125_000_000, in_base=first, set_base=self.sync_pin
        )
        sm.exec("set(x, 1)" if every_pulse else "set(x, 0)")
        sm.active(1)

    def start(self, leads, trigger_pin=None, sync=None, go=True):
        """Start `leads` together; `sync` = (source lead, every pulse?) or None.

        With go=False the leads are left prepared and armed but stopped: `go()` starts them.
        """
        if not leads:
            return 0
        mask = self._mask(leads)
        self.mem32[_PIO0_CTRL | _CLR] = mask
        for lead in leads:
            lead.stop_dma()  # before the pool moves their rings
        views = self.rings.place([(ld.ring_id, ld.record_words()) for ld in leads])
        if views is None:
            raise NoRoom()
        for lead in leads:
            lead.prepare(views[lead.ring_id])
        if sync is not None and self.rp2 is not None and sync[0] in leads:
            self._start_sync(sync[0], sync[1])
        if trigger_pin is not None:
            for lead in leads:
                lead.sm.exec("wait(1, gpio, %d)" % trigger_pin)
        for lead in leads:
            self.arm_pins[lead.index].value(1)
            lead.running = True
        if go:
            self.go(leads)
            if trigger_pin is not None:
                for lead in leads:
                    lead.started_us = None  # it starts at the trigger edge, not now
        return mask

    def go(self, leads):
        """One write: restart the clock dividers and enable every lead's SM in the same cycle."""
        mask = self._mask(leads)
        now = time.ticks_us()
        self.mem32[_PIO0_CTRL | _SET] = (mask << 8) | mask
        for lead in leads:
            lead.started_us = now  # the amplitude driver predicts pulse times from this

    def disarm(self, leads):
        """Let `leads` finish the pulse in flight, then rest (timing keeps running)."""
        for lead in leads:
            self.arm_pins[lead.index].value(0)
            lead.running = False

    def gate(self, lead, on):
        """Hold `lead` at rest from its next pulse on (off), or let it pulse again (on),
        without touching its timing: the state machine keeps playing every segment."""
        self.arm_pins[lead.index].value(1 if on else 0)

    def park(self, lead):
        """Stop a disarmed lead that plays only rest now, and free its ring."""
        self.mem32[_PIO0_CTRL | _CLR] = 1 << lead.sm_id
        lead.stop_now()

    def halt(self):
        """Stop every lead's state machine, the sync output and DMA now (then pins go low)."""
        for a in self.arm_pins:
            a.value(0)
        self.mem32[_PIO0_CTRL | _CLR] = self._mask(self.leads)
        self.mem32[_PIO1_CTRL | _CLR] = 1 << (_SYNC_SM - 4)
        for lead in self.leads:
            lead.stop_now()
