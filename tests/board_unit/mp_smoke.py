# Smoke test of the board SCPI modules under MicroPython (also runs under CPython).
#
#   MICROPYPATH=board micropython -X heapsize=192K tests/board_unit/mp_smoke.py
#
# Prints OK as its last line on success; raises (non-zero exit) on failure.

import gc
import sys

try:
    import stim.errors  # noqa: F401
except ImportError:
    # Run from a checkout without MICROPYPATH: board/ is two levels up.
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.append(_here + "/../../board")

from stim.errors import ErrorQueue, ScpiError
from stim.linebuf import GARBAGE, OVERRUN, LineBuffer
from stim.scpi import Parser, check_suffix, need_args
from stim.units import (
    format_fixed,
    keyword,
    parse_bool,
    parse_int,
    parse_number,
    parse_string,
    special,
    to_units,
)

CPU_HZ = 125000000


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def code_of(fn, *args):
    try:
        fn(*args)
    except ScpiError as e:
        return e.code
    return None


# -- a miniature instrument -----------------------------------------------------

state = {
    "width": [0, 0, 0],
    "gap": [0, 0, 0],
    "out": [False, False, False],
    "shape": 0,
}  # type: dict
SHAPES = ("BIPHasic", "MONophasic")


def h_idn(sufs, args, query):
    need_args(args, 0)
    return "PicoStim,smoke,0,0"


def _time_param(sufs, args, query, key):
    ch = check_suffix(sufs[0], 1, 2)
    if query:
        return format_fixed(state[key][ch], CPU_HZ)
    need_args(args, 1)
    sp = special(args[0])
    if sp is not None:
        cycles = 125 if sp == "MIN" else 25000
    else:
        m, e = parse_number(args[0], "s")
        cycles = to_units(m, e, CPU_HZ)
    state[key][ch] = cycles
    return None


def h_width(sufs, args, query):
    return _time_param(sufs, args, query, "width")


def h_gap(sufs, args, query):
    return _time_param(sufs, args, query, "gap")


def h_out(sufs, args, query):
    ch = check_suffix(sufs[0], 1, 2)
    if query:
        return "1" if state["out"][ch] else "0"
    need_args(args, 1)
    state["out"][ch] = parse_bool(args[0])
    return None


def h_shape(sufs, args, query):
    if query:
        return SHAPES[state["shape"]][:4].upper()
    need_args(args, 1)
    state["shape"] = keyword(args[0], SHAPES)
    return None


def h_crash(sufs, args, query):
    return 1 // 0


errors = ErrorQueue()
p = Parser(errors)
p.add("*IDN", h_idn)
p.add("SOURce#:PULSe:WIDTh", h_width)
p.add("SOURce#:PULSe:GAP", h_gap)
p.add("SOURce#:FUNCtion[:SHAPe]", h_shape)
p.add("OUTPut#[:STATe]", h_out)
p.add("SYSTem:ERRor[:NEXT]", lambda s, a, q: errors.pop())
p.add("DIAGnostic:CRASh", h_crash)
check(len(p.headers()) == 7, "headers")

lb = LineBuffer(128)
items = lb.feed(b"*IDN?\r\nSOUR2:PULS:WIDT 200us;GAP 0.05ms;WIDT?;GAP?\n")
items += lb.feed(b"sour2:func mon;:OUTP2 ON;:OUTP2?;:SOUR2:FUNC?\n")
check(len(items) == 3, "lines " + repr(items))
replies = []
for item in items:
    replies += p.execute(item)
check(replies[0] == "PicoStim,smoke,0,0", replies[0])
check(replies[1] == "2.000000E-04;5.000000E-05", replies[1])
check(replies[2] == "1;MONO", replies[2])
check(state["width"][2] == 25000 and state["gap"][2] == 6250, "cycles")
check(errors.count() == 0, errors.all())

# errors, path rules, recovery
check(p.execute("SOUR3:PULS:WIDT 1ms;GAP 1ms") == [], "suffix range")
check(errors.codes() == [-114], "114 " + repr(errors.codes()))
check(p.execute("SYST:ERR?") == ['-114,"Header suffix out of range;3"'], "pop")
check(p.execute("SOUR:PULS:WIDT 200Hz;GAP 1s;:DIAG:CRAS;*IDN?") == [], "131 aborts")
check(errors.codes() == [-131], "131")
errors.clear()
check(p.execute("DIAG:CRAS;*IDN?") == ["PicoStim,smoke,0,0"], "200 continues")
e = errors.pop()
check(e.startswith('-200,"Execution error;ZeroDivisionError'), e)
check(errors.read_esr() == 0x20 | 0x10, "esr")
check(p.execute("SOUR:PULS:WIDT \"x;y\", '1,2';BOGUS") == [], "quotes")
check(errors.codes() == [-108], "108 " + repr(errors.codes()))
errors.clear()
for junk in (b"\x00\xff\n", b"x" * 300 + b"\n", b'"oops;;\n'):
    for item in lb.feed(junk):
        p.execute(item)
check(errors.codes() == [-102, -363, -102], "junk " + repr(errors.codes()))
errors.clear()
check(p.execute("*IDN?") == ["PicoStim,smoke,0,0"], "recovered")
check(OVERRUN.code == -363 and GARBAGE.code == -102, "markers")

# queue overflow
q = ErrorQueue(3)
for c in (-101, -102, -103, -104):
    q.push(c)
check(q.codes() == [-101, -102, -350], "overflow")

# units
check(parse_number("200us", "s") == (2, -4), "200us")
check(parse_number("0.2ms", "s") == (2, -4), "0.2ms")
check(parse_number("2e-4") == (2, -4), "2e-4")
m, e = parse_number("3600", "s")
check(to_units(m, e, CPU_HZ) == 450000000000, "one hour")
m, e = parse_number("1.5mA", "A")
check(to_units(m, e, 1000000) == 1500, "1.5mA")
check(parse_number("10kHz", "Hz") == (1, 4), "kHz")
check(parse_number("2MHz", "Hz") == (2, 6), "MHz")
check(parse_number("2mHz", "Hz") == (2, -3), "mHz")
check(code_of(parse_number, "nan") == -224, "nan")
check(code_of(parse_number, "1e99") == -222, "1e99")
check(code_of(parse_number, "1" * 2000) == -222, "many digits")
check(code_of(parse_number, "200Hz", "s") == -131, "wrong unit")
check(format_fixed(-3, 2000) == "-1.500000E-03", "ff neg")
check(format_fixed(0, 1) == "0.000000E+00", "ff zero")
check(format_fixed(19999999, 2) == "1.000000E+07", "ff carry")
check(format_fixed(450000000000, CPU_HZ) == "3.600000E+03", "ff hour")
check(keyword("biph", SHAPES) == 0 and code_of(keyword, "BIP", SHAPES) == -224, "kw")
check(special("MAXimum") == "MAX" and special("MAXI") is None, "special")
check(parse_int("DEF", 1, 9, 5) == 5 and parse_int("2.5", 0, 9) == 3, "int")
check(parse_string("'a''b'") == "a'b", "string")

# memory: no growth per command, bounded allocation per command, bounded line buffer
mem_alloc = getattr(gc, "mem_alloc", None)  # MicroPython only
line = "SOUR1:PULS:WIDT 200us;GAP 50us;WIDT?;:OUTP1 ON;*IDN?"
for _ in range(5):
    p.execute(line)
gc.collect()
if mem_alloc is not None:
    before = mem_alloc()
for _ in range(300):
    p.execute(line)
    p.execute("FOO;BAR")
    errors.clear()
gc.collect()
if mem_alloc is not None:
    grown = mem_alloc() - before
    check(grown < 1024, "heap grew by " + str(grown))
    gc.collect()
    gc.disable()
    a0 = mem_alloc()
    p.execute(line)
    per_cmd = mem_alloc() - a0
    gc.enable()
    check(per_cmd < 8192, "one line allocated " + str(per_cmd))
    big = LineBuffer(256)
    chunk = b"A" * 64
    gc.collect()
    a0 = mem_alloc()
    for _ in range(160):  # a 10,240-byte line
        big.feed(chunk)
    gc.collect()
    check(mem_alloc() - a0 < 512, "linebuf grew")
    check(big.feed(b"\n") == [OVERRUN], "overrun")

# The ring pool: every ring it gives out is aligned to its own size, as a DMA read ring
# must be, and rings of different holders never overlap.
try:
    from uctypes import addressof
except ImportError:
    addressof = None
if addressof is not None:
    from stim.ringpool import POOL_WORDS, RingPool

    pool = RingPool()
    sizes = [1024, 512, 256, 128, 64, 32, 16, 8, 4, 2]
    for a in sizes:
        for b in sizes:
            views = pool.place([(1, a), (2, b), (3, 2), (4, 4)])
            if a + b + 32 > POOL_WORDS:  # two 16-word units for the small rings
                check(views is None, "over the pool: %d + %d" % (a, b))
                continue
            check(views is not None, "no room for %d + %d" % (a, b))
            spans = []
            for v in views.values():
                addr = addressof(v)
                check(addr % (4 * len(v)) == 0, "ring of %d not aligned" % len(v))
                spans.append((addr, addr + 4 * len(v)))
            spans.sort()
            for i in range(len(spans) - 1):
                check(spans[i][1] <= spans[i + 1][0], "rings overlap")
    check(pool.place([(1, 1024), (2, 1024), (3, 2)]) is None, "over the pool")
    check(pool.place([(1, 1024), (2, 1024)]) is None, "3 and 4 still hold rings")
    pool.release(3)
    pool.release(4)
    check(pool.place([(1, 1024), (2, 1024)]) is not None, "the whole pool")
    check(pool.free_words() == 0 and POOL_WORDS == 2048, "pool full")

print("OK")
