"""One lead channel: a PIO state machine fed by two DMA channels, with no CPU work per pulse.

The lead's pulse train is compiled (`stim.segments`) into a record of segment words, one
period or one burst period long, kept in a DMA read ring (in `stim.ringpool`, memory taken
once at boot). Two DMA channels chained to each
other play the ring for ever (each stops after a whole number of rings and triggers the other,
which carries on where it stopped), or one channel plays exactly the words of a finite train.

The state machine is configured here but enabled by `stim.engine`, which starts every lead in
the same PIO cycle. Hardware comes in through the constructor: the rp2 module (real or
simulated), the lead's pins, a DMA factory and the ring pool.
"""

from stim import segments
from stim.pulse_program import pulse_program

_DREQ_PIO_TX = (0, 8)  # DREQ numbers of PIO0 and PIO1 TX FIFOs (+ state machine index)


class NoRoom(Exception):
    """The ring pool cannot hold the records of the leads to start (SCPI -225)."""


def _log2(n):
    k = 0
    while (1 << k) < n:
        k += 1
    return k


class Lead:
    """Lead `index` (0..3), driven by state machine `sm_id` on pins (pin_a, pin_a + 1)."""

    def __init__(self, rp2, index, sm_id, pin_a, arm_pin, interlock_pin, make_dma, rings):
        self.rp2 = rp2
        self.index = index
        self.sm_id = sm_id
        self.pin_a = pin_a
        self.arm = arm_pin
        self.interlock_pin = interlock_pin
        self.settings = segments.Settings()
        self.enabled = False  # OUTPut<n>
        self.running = False
        self.current = 0  # DAC code (1.5 uA per code)
        self.started_us = None  # ticks_us when the engine last enabled the state machine
        self._dma_a = make_dma()
        self._dma_b = make_dma()
        self.rings = rings
        self.ring_id = index + 1  # this lead's holder id in the pool
        self._ring = None

    def record_words(self):
        """Words of the ring the current settings need (ValueError if they cannot play)."""
        return segments.record_len(self.settings)

    def prepare(self, ring=None):
        """Load the program and the record, fill the FIFO; the SM stays disabled.

        `ring` is the view the pool gave this lead (`stim.engine` places several leads at
        once); without it the lead asks the pool for its own (NoRoom if it has none)."""
        s = self.settings
        rp2 = self.rp2
        sm = rp2.StateMachine(
            self.sm_id,
            pulse_program,
            freq=125_000_000,
            out_base=self.pin_a,
            in_base=self.arm,
            jmp_pin=self.interlock_pin,
        )
        self.sm = sm
        self.stop_dma()
        sm.exec("set(x, 1)")  # delay words are plain segments: let them play (at rest)
        n = segments.record_len(s)
        if ring is None:
            views = self.rings.place([(self.ring_id, n)])
            if views is None:
                raise NoRoom()
            ring = views[self.ring_id]
        segments.record_into(s, ring)
        for w in segments.delay_words(s):
            sm.put(w)
        count = segments.train_words(s)
        dreq = _DREQ_PIO_TX[self.sm_id // 4] + self.sm_id % 4
        ring_bits = _log2(n * 4) if n > 1 else 0
        a, b = self._dma_a, self._dma_b

        def ctrl(chain):
            return a.pack_ctrl(
                size=2,
                inc_read=True,
                inc_write=False,
                treq_sel=dreq,
                ring_size=ring_bits,
                ring_sel=False,
                chain_to=chain,
                irq_quiet=True,
            )

        if count:
            a.config(read=ring, write=sm, count=count, ctrl=ctrl(a.channel), trigger=True)
        else:
            # For ever: each channel plays a whole number of rings, then triggers the other.
            per = (segments.COUNT_MAX // n) * n
            b.config(read=ring, write=sm, count=per, ctrl=ctrl(a.channel), trigger=False)
            a.config(read=ring, write=sm, count=per, ctrl=ctrl(b.channel), trigger=True)
        self._ring = ring

    def stop_dma(self):
        for d in (self._dma_a, self._dma_b):
            d.active(0)

    def stop_now(self):
        """Stop this lead's DMA at once (the engine stops the state machine) and give its
        ring back to the pool."""
        self.stop_dma()
        self.running = False
        if self._ring is not None:
            self._ring = None
            self.rings.release(self.ring_id)

    def holds_ring(self):
        return self._ring is not None
