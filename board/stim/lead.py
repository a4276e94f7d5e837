"""One lead channel: a PIO state machine fed by two DMA channels, with no CPU work per pulse.

The lead's pulse train is compiled (`stim.segments`) into a record of segment words, one
period or one burst period long, kept in a DMA read ring. Two DMA channels chained to each
other play the ring for ever (each stops after a whole number of rings and triggers the other,
which carries on where it stopped), or one channel plays exactly the words of a finite train.

The state machine is configured here but enabled by `stim.engine`, which starts every lead in
the same PIO cycle. Hardware comes in through the constructor: the rp2 module (real or
simulated), the lead's pins and a DMA factory.
"""

import gc
from array import array

from stim import segments
from stim.pulse_program import pulse_program

try:
    from uctypes import addressof
except ImportError:  # CPython unit tests
    addressof = id

_DREQ_PIO_TX = (0, 8)  # DREQ numbers of PIO0 and PIO1 TX FIFOs (+ state machine index)
_RING_WORDS = 64  # ring capacity allocated at boot (longer records allocate on demand)


def _log2(n):
    k = 0
    while (1 << k) < n:
        k += 1
    return k


class Lead:
    """Lead `index` (0..3), driven by state machine `sm_id` on pins (pin_a, pin_a + 1)."""

    def __init__(self, rp2, index, sm_id, pin_a, arm_pin, interlock_pin, make_dma):
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
        # Allocated once, at boot, while the heap is still whole: a ring of up to _RING_WORDS
        # words (every regular pulse train and most bursts) never needs a new buffer.
        self._buf = array("I", bytes(8 * _RING_WORDS))
        self._ring = None

    def _ring_view(self, words):
        """An array view of `words` words aligned to its own size, as a DMA ring needs."""
        nbytes = words * 4
        if len(self._buf) < 2 * words:
            self._buf = array("I", bytes(8))  # let the old buffer go before the new one
            gc.collect()
            self._buf = array("I", bytes(2 * nbytes))  # twice the ring, to align within it
        base = addressof(self._buf)
        skip = (-base % nbytes) // 4 if isinstance(base, int) and base > 0xFFFF else 0
        return memoryview(self._buf)[skip : skip + words]

    def prepare(self):
        """Load the program and the record, fill the FIFO; the SM stays disabled."""
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
        self._stop_dma()
        sm.exec("set(x, 1)")  # delay words are plain segments: let them play (at rest)
        n = segments.record_len(s)
        ring = self._ring_view(n)
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

    def _stop_dma(self):
        for d in (self._dma_a, self._dma_b):
            d.active(0)

    def stop_now(self):
        """Stop this lead's DMA at once (the engine stops the state machine)."""
        self._stop_dma()
        self.running = False
