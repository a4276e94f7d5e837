"""Runs at every start, soft resets included, before main.py or the REPL: outputs to rest.

A soft reset stops the PIO but leaves each pin at the level it last had, so a lead caught
mid-pulse would stay driven. Forcing every output low here closes that gap.
"""

import machine

from stim import pins

for _p in pins.LEAD_A + pins.LEAD_B + pins.ARM + (pins.SYNC,):
    machine.Pin(_p, machine.Pin.OUT, value=0)
