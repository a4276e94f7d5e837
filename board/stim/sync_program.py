# ruff: noqa: F821
"""PIO program of the sync output: a scope trigger pulse locked to a lead's first phase.

Runs on PIO1 with `in_base` = the source lead's phase-1 pin and `set_base` = the sync pin.
X selects the mode: 1 = a sync pulse at every pulse of the lead, 0 = only at the first
pulse of the train (then it parks until the CPU restarts it).

Cycle budget: the sync pin rises 1 cycle after the lead's phase-1 pin does (wait reads the
level written in the previous cycle; set drives the pin as it executes), plus the input
synchroniser's 2 cycles on the chip, and stays high 32 + 32 + 32 + 29 = 125 cycles = 1 us.
"""

import rp2

SYNC_HIGH_CYCLES = 125


@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def sync_program():
    # fmt: off
    wrap_target()
    wait(1, pin, 0)             # the lead's first phase begins
    set(pins, 1)    [31]        # 1 + 31
    nop()           [31]        # 32
    nop()           [31]        # 32
    nop()           [28]        # 29: 125 cycles high in all
    set(pins, 0)
    jmp(not_x, "park")          # train mode: one sync pulse only
    wait(0, pin, 0)             # every-pulse mode: wait for this phase to end
    wrap()
    label("park")
    jmp("park")
    # fmt: on
