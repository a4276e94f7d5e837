# ruff: noqa: F821
"""PIO program of one lead channel: plays a stream of segment words.

Each 32-bit word from the TX FIFO (shifted out LSB first) holds one segment:

    bit 0      pulse-start flag (1 on the first segment of each pulse)
    bits 1-2   pin pattern: 0 rest, 1 pin A (out_base), 2 pin B (out_base + 1)
    bits 3-31  loop count y

``stim.segments`` compiles pulse settings into these words; the channel driver
feeds them by DMA and configures the state machine::

    sm = rp2.StateMachine(n, pulse_program, freq=125_000_000,
                          out_base=pin_a, in_base=arm_pin, jmp_pin=interlock_pin)

with pin B the GPIO after pin A, ``arm_pin`` a GPIO the CPU drives (high:
pulses allowed) and ``interlock_pin`` high while the interlock is closed.

At a pulse start the program checks the interlock (open: both pins rest and
the machine parks until the CPU restarts it) and latches ARM into X (low: the
pulse, i.e. every segment up to the next pulse start, plays at rest; a pulse
under way when ARM drops completes, so a stop never cuts one short). Plain
segments reuse the X latched at the last pulse start, so X must be nonzero
before the first word if that word is not a pulse start (delay words):
``sm.exec("set(x, 1)")`` before enabling.

Disarming is timing-neutral: a disarmed ("quiet") segment takes exactly as
many cycles as an armed one, so the CPU can drop ARM between pulses (e.g. to
change the lead's DAC amplitude), raise it again, and the train carries on in
exact phase; the pulses that start while ARM is low simply play as rest.

Cycle budget, in state machine cycles (clock divider 1: 8 ns each):

    segment without pulse start: pull, out, jmp, jmp, out pins  -> pins written in cycle PRE_PLAIN = 5
    segment with pulse start:    pull, out, jmp, jmp pin, mov, in, mov, jmp, out pins
                                                                -> pins written in cycle PRE_START = 9
    after the pin write:         delay (1) + out y (1) + loop (y + 1)
                                                                -> POST = y + POST_FIXED = y + 3
    quiet segment:               out null, jmp count instead of out pins [1]: the same cycles

so segment i's pattern stays on the pins for exactly

    D_i = y_i + POST_FIXED + PRE_{i+1},   PRE_{i+1} = PRE_START if word i+1 starts a pulse
                                                      else PRE_PLAIN

(y_i = D_i - POST_FIXED - PRE_{i+1}; shortest D is PRE_PLAIN + POST_FIXED = 8
before a plain segment, PRE_START + POST_FIXED = 12 before a pulse start).
The dead path writes rest in cycle 5 of the pulse-start segment.
"""

import rp2

try:
    from micropython import const
except ImportError:
    const = lambda x: x  # noqa: E731

PRE_PLAIN = const(5)  # cycle (1-based) of the pin write in a plain segment
PRE_START = const(9)  # cycle (1-based) of the pin write in an armed pulse-start segment
POST_FIXED = const(3)  # cycles after the pin write besides y: its delay, out y, last jmp
Y_MAX = const(0x1FFFFFFF)  # largest loop count: 29 bits


@rp2.asm_pio(
    out_init=[rp2.PIO.OUT_LOW, rp2.PIO.OUT_LOW],
    out_shiftdir=rp2.PIO.SHIFT_RIGHT,
    fifo_join=rp2.PIO.JOIN_TX,
)
def pulse_program():
    # fmt: off
    wrap_target()
    pull(block)                 # 1: next segment word (the DMA keeps the FIFO full)
    out(y, 1)                   # 2: pulse-start flag
    jmp(not_y, "emit")          # 3: plain segment: keep the X latched at the last start
    jmp(pin, "armed")           # 4: jmp_pin = interlock input, high = closed
    label("dead")               # interlock open at a pulse start: rest until the CPU restarts us
    mov(pins, null)             # 5: both outputs to rest
    label("park")
    jmp("park")
    label("armed")
    mov(isr, null)              # 5: clear ISR so X gets exactly the ARM bit
    in_(pins, 1)                # 6: in_base = this lead's ARM line (a GPIO the CPU drives)
    mov(x, isr)                 # 7: x = 1: pulse allowed; 0: this pulse plays at rest
    label("emit")
    jmp(not_x, "quiet")         # 4 / 8
    out(pins, 2)       [1]      # 5 / 9: the output pins change here; the delay matches the quiet path
    label("count")
    out(y, 29)                  # POST 2
    label("loop")
    jmp(y_dec, "loop")          # POST y + 1
    wrap()
    label("quiet")
    # Disarmed: drop the pattern without touching the pins. They are already at
    # rest: X only changes at a pulse start, and the segment before a pulse
    # start (the last pulse's rest, or delay words, which are rest too) or the
    # state machine's init (out_init low) left both pins low; every later
    # segment until the next pulse start is quiet as well.
    out(null, 2)                # 5 / 9
    jmp("count")                # the cycle of the armed path's delay
    # fmt: on
