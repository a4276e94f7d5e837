"""PIO assembler of the simulated ``rp2`` module.

This file runs inside the MicroPython unix port (the virtual board imports it
as part of its ``rp2`` module) and under CPython (the host tests import it), so
it sticks to the Python subset both understand: no dataclasses, no runtime
``typing`` imports, no f-string ``=`` specifiers.

``asm_pio`` has the interface of MicroPython's rp2 port and produces the same
program list, ``[array('H', words), -1, -1, execctrl, shiftctrl, out_init,
set_init, sideset_init]``, so the simulated ``StateMachine`` and ``PIO`` classes
can consume programs written for the real board unchanged.

The decorated function is a PIO DSL body: it is called twice (pass 0 records
labels and side-set use, pass 1 emits words) with its module globals swapped
for the DSL names, and the real globals are restored afterwards.
"""

from array import array

# Layout of the program list (same field order as the rp2 port).
PROG_DATA = 0
PROG_OFFSET_PIO0 = 1
PROG_OFFSET_PIO1 = 2
PROG_EXECCTRL = 3
PROG_SHIFTCTRL = 4
PROG_OUT_PINS = 5
PROG_SET_PINS = 6
PROG_SIDESET_PINS = 7


class PIOASMError(Exception):
    """A PIO program could not be assembled."""


class PIOConst:
    """Constants carried by the rp2 ``PIO`` class (values as in the rp2 port)."""

    IN_LOW = 0
    IN_HIGH = 1
    OUT_LOW = 2
    OUT_HIGH = 3
    SHIFT_LEFT = 0
    SHIFT_RIGHT = 1
    JOIN_NONE = 0
    JOIN_TX = 1
    JOIN_RX = 2
    IRQ_SM0 = 0x100
    IRQ_SM1 = 0x200
    IRQ_SM2 = 0x400
    IRQ_SM3 = 0x800


# Operand values of the DSL. Sources/destinations share one numbering; the
# few that differ per instruction ("exec", wait's "pin"/"irq") are remapped
# where they are used.
_EXEC = 8  # out: 7, mov: 4
_JMP_PIN = 6  # jmp condition "pin"; wait source 1
_NOBLOCK = 0x01  # low bit marks an explicit choice of blocking mode
_BLOCK = 0x21  # push/pull block bit; irq "wait" bit after masking with 0x60
_IF_FLAG = 0x40  # iffull / ifempty / irq clear

_CONSTANTS = {
    "gpio": 0,
    "pins": 0,
    "x": 1,
    "y": 2,
    "null": 3,
    "pindirs": 4,
    "pc": 5,
    "status": 5,
    "isr": 6,
    "osr": 7,
    "exec": _EXEC,
    "not_x": 1,
    "x_dec": 2,
    "not_y": 3,
    "y_dec": 4,
    "x_not_y": 5,
    "pin": _JMP_PIN,
    "not_osre": 7,
    "noblock": _NOBLOCK,
    "block": _BLOCK,
    "iffull": _IF_FLAG,
    "ifempty": _IF_FLAG,
    "clear": _IF_FLAG,
}


def invert(src: int) -> int:
    """``mov`` source modifier: bitwise complement."""
    return src | 0x08


def reverse(src: int) -> int:
    """``mov`` source modifier: bit reversal."""
    return src | 0x10


def rel(index: int) -> int:
    """``irq``/``wait irq`` index modifier: relative to the state machine number."""
    return index | 0x10


def _sideset_pin_count(sideset_init) -> int:
    """Number of side-set pins declared by ``sideset_init`` (None, int or tuple)."""
    if sideset_init is None:
        return 0
    if isinstance(sideset_init, int):
        return 1
    return len(sideset_init)


class _Instr:
    """Handle on the instruction just emitted: supports ``[delay]`` and ``.side(v)``."""

    def __init__(self, asm, index: int):
        self._asm = asm
        self._index = index
        self.has_side = False

    def __getitem__(self, delay: int):
        self._asm.add_delay(self._index, delay)
        return self

    def side(self, value: int):
        if not self.has_side:
            self.has_side = True
            self._asm.side_used += 1
        self._asm.add_side(self._index, value)
        return self


class _Assembler:
    """Two-pass PIO assembler state shared by the DSL functions of one program."""

    def __init__(self, sideset_pins: int, sideset_opt: bool):
        self.labels = {}
        self.words = array("H")
        self.sideset_pins = sideset_pins
        self.sideset_opt = sideset_opt
        self.pass_no = 1
        self.count = 0
        self.side_used = 0
        self.wrap_target_at = None
        self.wrap_at = None

    # -- passes ------------------------------------------------------------

    def start_pass(self, pass_no: int) -> None:
        """Reset per-pass counters; pass 1 also fixes the side-set layout."""
        if pass_no == 1 and self.sideset_pins:
            # Any instruction without .side() makes the side-set optional,
            # which costs one more bit (the enable bit, bit 12).
            self.sideset_opt = self.side_used != self.count
        self.pass_no = pass_no
        self.count = 0
        self.side_used = 0
        self.wrap_target_at = None
        self.wrap_at = None

    def sideset_bits(self) -> int:
        """Bits of the delay/side-set field taken by side-set (incl. enable bit)."""
        if not self.sideset_pins:
            return 0
        return self.sideset_pins + (1 if self.sideset_opt else 0)

    # -- directives --------------------------------------------------------

    def wrap_target(self) -> None:
        if self.wrap_target_at is not None:
            raise PIOASMError("wrap_target used more than once")
        self.wrap_target_at = self.count

    def wrap(self) -> None:
        if self.count == 0:
            raise PIOASMError("wrap before any instruction")
        if self.wrap_at is not None:
            raise PIOASMError("wrap used more than once")
        self.wrap_at = self.count - 1

    def label(self, name) -> None:
        if self.pass_no == 0:
            if name in self.labels:
                raise PIOASMError("duplicate label {}".format(name))
            self.labels[name] = self.count

    # -- emission ----------------------------------------------------------

    def resolve(self, target) -> int:
        """Address of a label (ints are taken as addresses; the rp2 port only has labels)."""
        if isinstance(target, int):
            if not 0 <= target <= 31:
                raise PIOASMError("jump address {} out of range".format(target))
            return target
        if target not in self.labels:
            raise PIOASMError("unknown label {}".format(target))
        return self.labels[target]

    def emit(self, word: int, target=None) -> _Instr:
        """Append one instruction word (pass 1) and count it (both passes)."""
        index = self.count
        self.count += 1
        if self.pass_no == 1:
            if target is not None:
                word |= self.resolve(target)
            self.words.append(word)
        return _Instr(self, index)

    def add_delay(self, index: int, delay: int) -> None:
        if self.pass_no != 1:
            return
        limit = 31 >> self.sideset_bits()
        if not 0 <= delay <= limit:
            raise PIOASMError("delay {} too large (max {})".format(delay, limit))
        self.words[index] |= delay << 8

    def add_side(self, index: int, value: int) -> None:
        if self.pass_no != 1:
            return
        if not self.sideset_pins:
            raise PIOASMError("side() used but no sideset_init given")
        if not 0 <= value < (1 << self.sideset_pins):
            raise PIOASMError(
                "side-set value {} too large for {} pin(s)".format(value, self.sideset_pins)
            )
        bits = self.sideset_bits()
        word = value << (13 - bits)
        if self.sideset_opt:
            word |= 0x1000
        self.words[index] |= word


def _bit_count(count: int) -> int:
    """Encode an in/out bit count (1..32; 32 is encoded as 0)."""
    if not isinstance(count, int) or not 1 <= count <= 32:
        raise PIOASMError("bad bit count {} (must be 1..32)".format(count))
    return count & 0x1F


def _check_range(what: str, value: int, limit: int) -> int:
    if not isinstance(value, int) or not 0 <= value < limit:
        raise PIOASMError("{} {} out of range".format(what, value))
    return value


def _irq_index(index: int) -> int:
    """Validate an irq index: 0..7, optionally with the rel() bit."""
    if not isinstance(index, int) or index & ~0x17:
        raise PIOASMError("irq index {} out of range".format(index))
    return index


def _dsl_namespace(asm: _Assembler) -> dict:
    """Build the DSL names bound to one assembler instance."""

    def word(instr, label=None):
        _check_range("word", instr, 0x10000)
        return asm.emit(instr, label)

    def nop():
        return asm.emit(0xA042)  # mov y, y

    def jmp(cond, label=None):
        if label is None:
            cond, label = 0, cond
        return asm.emit(_check_range("jmp condition", cond, 8) << 5, label)

    def wait(polarity, src, index):
        if src == _JMP_PIN:
            src = 1
        elif src != 0:
            src = 2  # anything else is the irq function
        if src == 2:
            index = _irq_index(index)
        else:
            _check_range("wait index", index, 32)
        return asm.emit(0x2000 | _check_range("polarity", polarity, 2) << 7 | src << 5 | index)

    def in_(src, count):
        if src not in (0, 1, 2, 3, 6, 7):
            raise PIOASMError("bad in source {}".format(src))
        return asm.emit(0x4000 | src << 5 | _bit_count(count))

    def out(dest, count):
        if dest == _EXEC:
            dest = 7
        _check_range("out destination", dest, 8)
        return asm.emit(0x6000 | dest << 5 | _bit_count(count))

    def _push_pull(base, mod1, mod2):
        mods = mod1 | mod2
        if not mods & 1:
            mods |= 0x20  # blocking unless noblock was given
        return asm.emit(base | (mods & 0x60))

    def push(mod1=0, mod2=0):
        return _push_pull(0x8000, mod1, mod2)

    def pull(mod1=0, mod2=0):
        return _push_pull(0x8080, mod1, mod2)

    def mov(dest, src):
        if dest == _EXEC:
            dest = 4
        _check_range("mov destination", dest, 8)
        _check_range("mov source", src, 0x20)
        return asm.emit(0xA000 | dest << 5 | src)

    def irq(mod, index=None):
        if index is None:
            mod, index = 0, mod
        return asm.emit(0xC000 | (mod & 0x60) | _irq_index(index))

    def set_(dest, data):
        _check_range("set destination", dest, 8)
        return asm.emit(0xE000 | dest << 5 | _check_range("set value", data, 32))

    ns = dict(_CONSTANTS)
    ns.update(
        {
            "invert": invert,
            "reverse": reverse,
            "rel": rel,
            "wrap_target": asm.wrap_target,
            "wrap": asm.wrap,
            "label": asm.label,
            "word": word,
            "nop": nop,
            "jmp": jmp,
            "wait": wait,
            "in_": in_,
            "out": out,
            "push": push,
            "pull": pull,
            "mov": mov,
            "irq": irq,
            "set": set_,
        }
    )
    return ns


def _run_with_globals(fn, names: dict) -> None:
    """Call ``fn()`` with its module globals replaced by ``names``; always restore them."""
    gl = fn.__globals__
    saved = gl.copy()
    gl.clear()
    gl.update(names)
    try:
        fn()
    finally:
        gl.clear()
        gl.update(saved)


def asm_pio(
    *,
    out_init=None,
    set_init=None,
    sideset_init=None,
    side_pindir=False,
    in_shiftdir=0,
    out_shiftdir=0,
    autopush=False,
    autopull=False,
    push_thresh=32,
    pull_thresh=32,
    fifo_join=0,
):
    """Decorator assembling a PIO DSL function into an rp2 program list."""
    shiftctrl = (
        fifo_join << 30
        | (pull_thresh & 0x1F) << 25
        | (push_thresh & 0x1F) << 20
        | out_shiftdir << 19
        | in_shiftdir << 18
        | autopull << 17
        | autopush << 16
    )

    def assemble(fn):
        asm = _Assembler(_sideset_pin_count(sideset_init), False)
        names = _dsl_namespace(asm)
        asm.start_pass(0)
        _run_with_globals(fn, names)
        asm.start_pass(1)
        _run_with_globals(fn, names)
        wrap_target = asm.wrap_target_at or 0
        wrap = asm.wrap_at
        if wrap is None:
            # Default: wrap after the last instruction (an empty program has none).
            wrap = asm.count - 1 if asm.count else 0
        execctrl = side_pindir << 29 | wrap << 12 | wrap_target << 7
        if asm.sideset_opt:
            execctrl |= 1 << 30
        return [asm.words, -1, -1, execctrl, shiftctrl, out_init, set_init, sideset_init]

    return assemble


def asm_pio_encode(instr: str, sideset_count: int, sideset_opt=False) -> int:
    """Encode one instruction given as DSL text, e.g. ``"set(pins, 1)"``.

    ``sideset_count`` is PINCTRL_SIDESET_COUNT, i.e. it includes the enable
    bit when ``sideset_opt`` is set (this is what ``StateMachine.exec`` has).
    Jumps take a numeric address since there are no labels.
    """
    opt = bool(sideset_opt) and sideset_count > 0
    asm = _Assembler(sideset_count - (1 if opt else 0), opt)
    asm.pass_no = 1
    ns = _dsl_namespace(asm)
    exec(instr, ns)
    if len(asm.words) != 1:
        raise PIOASMError("expecting exactly 1 instruction, got {}".format(len(asm.words)))
    return asm.words[0]


# Module-level aliases of the PIO class constants.
IN_LOW = PIOConst.IN_LOW
IN_HIGH = PIOConst.IN_HIGH
OUT_LOW = PIOConst.OUT_LOW
OUT_HIGH = PIOConst.OUT_HIGH
SHIFT_LEFT = PIOConst.SHIFT_LEFT
SHIFT_RIGHT = PIOConst.SHIFT_RIGHT
JOIN_NONE = PIOConst.JOIN_NONE
JOIN_TX = PIOConst.JOIN_TX
JOIN_RX = PIOConst.JOIN_RX
