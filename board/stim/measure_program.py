# ruff: noqa: F821
"""PIO programs of the self-measurement (PIO1): exact edge timing, and a known test signal.

``measure_program`` times a lead's output pins in system cycles. It drives nothing: it only
reads pads (``in_base`` = the phase-1 pin, ``jmp_pin`` = the pin whose edges it counts to).
``stim.measure`` runs two copies, on PIO1 SM1 and SM2, enabled in the same cycle; before
enabling, the CPU loads X = D (a delay), Y = a sample budget and OSR = D2 (a second delay)
through the TX FIFO and ``exec``.

A loop that counts and tests a pin takes two instructions, so one machine only places an edge
to within 2 cycles. The second machine gets D + 1 instead of D: its samples fall on the
other cycles, and the two counts together give the edge to the cycle (below).

Cycle budget of one machine, from cycle R, in which the ``wait`` that sees the phase-1 pin high
executes (both machines catch the same R: same program, same inputs, same start):

    R + 1 .. R + 1 + D      jmp x-- to itself: D + 1 cycles
    S = R + 2 + D           first test of the jmp pin; then a test every 2 cycles
                            (test, count): k tests see it high
    e = S + 2k              the test that sees it low
    e + 1                   in y: pushes Y0 - k (autopush)
    e + 2                   mov x, osr
    e + 3 .. e + 3 + D2     jmp x-- to itself: D2 + 1 cycles
    e + 4 + D2              first test for high; then every 2 cycles: j tests see it low
    e2 = e + 4 + D2 + 2j    the test that sees it high; next cycle: in y pushes Y0 - k - j

Combining the two machines (k1, j1 with D; k2, j2 with D + 1): e1 and e2 are the first
cycles at or after the pin's fall F with odd and with even numbers, one of them F and the
other F + 1, provided both loops began by F: the first machine's first test saw the pin high
(k1 >= 1). Then

    F - R  = min(e1, e2) - R = HI_FIXED + D + k1 + k2          (HI_FIXED = 2)
    E - F  = LO_FIXED + D2 + j1 + j2                            (LO_FIXED = 4, E: the next rise)

if the second loop that began first saw the pin low at its first test. If the jmp pin is
already low at S (k1 = k2 = 0), R + HI_FIXED + D stands for F in the second line: that is how
the phase-2 pin's rise is timed from R. (`stim.measure.edges` does this arithmetic.)

The counting jumps are ``jmp y--``: when the budget Y is used up the jump falls through (and
wraps) to the push with Y = 0xFFFFFFFF (MARK), and the machine parks; so a loop never runs
longer than its budget, whatever the pins do.
"""

import rp2

# stim.measure holds this module's numbers: HI_FIXED = 2 and LO_FIXED = 4 (the schedule above),
# MARK = 0xFFFFFFFF, and the test signal's PATTERN_WIDTH = 12_345 and PATTERN_PERIOD = 125_001
# (about 1 kHz, a rate the virtual board executes in real time). They are not kept here, where
# they would cost heap from boot on; tests/board_unit/test_measure.py measures them on the
# programs.


@rp2.asm_pio(autopush=True, push_thresh=32)
def measure_program():
    # fmt: off
    wait(0, pin, 0)             # the phase-1 pin low: what comes next is a whole rising edge
    wait(1, pin, 0)             # R: it rises
    label("delay1")
    jmp(x_dec, "delay1")        # D + 1 cycles
    label("high")
    jmp(pin, "count1")          # S + 2k: still high?
    in_(y, 32)                  # e + 1: it fell; push the budget left
    mov(x, osr)                 # e + 2
    label("delay2")
    jmp(x_dec, "delay2")        # D2 + 1 cycles
    label("low")
    jmp(pin, "done")            # e + 4 + D2 + 2j: risen?
    jmp(y_dec, "low")           # still low: one more sample; budget used up: on to done
    wrap_target()
    label("done")
    in_(y, 32)                  # push the budget left (MARK if it ran out)
    label("park")
    jmp("park")
    label("count1")
    jmp(y_dec, "high")          # still high: one more sample; budget used up: wrap to done
    wrap()
    # fmt: on


@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def pattern_program():
    # Y = high cycles - 3, ISR = low cycles - 6, loaded by the CPU. It plays until the CPU
    # puts 0 in the TX FIFO: then it parks at the end of that period's low level, so every
    # pulse is whole and the pin ends low. (Without a word the pull copies X: 0xFFFFFFFF.)
    # fmt: off
    wrap_target()
    set(pins, 1)                # 1: the pin rises
    mov(x, y)                   # 1
    label("high")
    jmp(x_dec, "high")          # Y + 1: high for Y + 3 cycles
    set(pins, 0)                # 1: the pin falls
    mov(x, isr)                 # 1
    label("low")
    jmp(x_dec, "low")           # ISR + 1
    pull(noblock)               # 1
    mov(x, osr)                 # 1
    jmp(not_x, "park")          # 1: low for ISR + 6 cycles
    wrap()
    label("park")
    jmp("park")
    # fmt: on
