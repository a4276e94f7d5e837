"""SCPI commands of the self-measurement, queries of a running lead's output pins:

    MEASure<n>:WIDTh?    phase-1 width in seconds (NR3)
    MEASure<n>:GAP?      interphase gap in seconds (0 for a monophasic lead)
    MEASure<n>:PERiod?   rising edge to rising edge of phase 1, in seconds
    MEASure<n>:CYCLes?   "width,gap,period" in 125 MHz cycles, as SOURce<n>:PULSe:CYCLes?

Only the registration is here. The PIO programs are assembled at boot with the firmware's
others; the code that runs them (`stim.measure`, with the handlers' bodies) is imported for each
query or *TST? and dropped after it, so it costs no heap between measurements.
"""

import sys

import stim.measure_program  # noqa: F401  (assembled now, while the heap is fresh)
from stim.errors import define
from stim.heap import Spare

define(-230, "Data corrupt or stale")  # SCPI-1999; stim.measure's error when it times out


def _drop():
    sys.modules.pop("stim.measure", None)
    stim.__dict__.pop("measure", None)


# Imported once at boot and dropped at once: the names it interns stay in the qstr pool for
# good, and placed now, among the firmware's other long-lived objects, they cannot later land
# in the reserve block a measurement borrows (stim.heap), which they would split for good.
import stim.measure  # noqa: E402, F401

_drop()


def call(name, *args):
    """stim.measure.<name>(*args), with stim.measure imported for the call and dropped after:
    a measurement then leaves the heap as it found it, where keeping the module would hold
    5 KB from the first one on. The import follows a collection, as it needs contiguous blocks
    (the file buffer among them): the heap's reserve is free for it (stim.heap)."""
    with Spare():
        result = _call(name, args)
    return result


def _call(name, args):
    # A frame of its own: once it returns nothing refers to the module, so the collection
    # as the reserve is taken back frees all of it.
    try:
        from stim import measure

        return getattr(measure, name)(*args)
    finally:
        _drop()


_st = None  # the Instrument


def _width(sfx, args, q):
    return call("query", _st, sfx, args, q, 0)


def _gap(sfx, args, q):
    return call("query", _st, sfx, args, q, 1)


def _period(sfx, args, q):
    return call("query", _st, sfx, args, q, 2)


def _cycles(sfx, args, q):
    return call("query", _st, sfx, args, q, 3)


def MeasureCommands(state, parser):  # noqa: N802 (registers like the *Commands classes)
    """Registers the MEASure queries on `parser`; `state` is the Instrument."""
    global _st
    _st = state
    add = parser.add
    add("MEASure#:WIDTh", _width)
    add("MEASure#:GAP", _gap)
    add("MEASure#:PERiod", _period)
    add("MEASure#:CYCLes", _cycles)
