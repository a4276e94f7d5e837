"""Simulated `rp2` module of the virtual board (runs inside MicroPython).

PIO programs are assembled here exactly as the rp2 port assembles them; loading, state-machine
configuration, FIFO writes, `exec`, DMA and the PIO CTRL register are reported to the
supervisor, which executes the programs instruction by instruction to produce the waveform.
"""

import sys

import _simlink as _L
from uctypes import addressof as _addressof

# On a Pico the assembler is frozen into flash and costs no heap. Here it is loaded only
# while it assembles, then dropped again, so the firmware keeps a Pico's heap to itself.


_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."


def _asm():
    # By now "/" may be the flash filesystem, hiding the host directory this module came
    # from: reach it through a host (posix) mount for the moment of the import.
    try:
        import rp2_asm

        return rp2_asm
    except ImportError:
        pass
    import vfs

    vfs.mount(vfs.VfsPosix(_HERE), "/_simasm")
    sys.path.append("/_simasm")
    try:
        import rp2_asm
    finally:
        sys.path.remove("/_simasm")
        vfs.umount("/_simasm")
    return rp2_asm


def _drop_asm():
    sys.modules.pop("rp2_asm", None)


class PIOASMError(Exception):
    pass


def asm_pio(**kw):
    def dec(f):
        try:
            return _asm().asm_pio(**kw)(f)
        except Exception as exc:
            if type(exc).__name__ == "PIOASMError":
                raise PIOASMError(str(exc))
            raise
        finally:
            _drop_asm()

    return dec


_encoded = {}
_SET_DEST = {"pins": 0, "x": 1, "y": 2, "pindirs": 4}
_WAIT_SRC = {"gpio": 0, "pin": 1, "irq": 2}


def _quick(instr):
    """Encode the plain set/wait/nop forms firmware execs, without loading the assembler:
    on a Pico the assembler costs no heap, so neither should these."""
    t = instr.replace(" ", "")
    if t == "nop()":
        return 0xA042
    if not t.endswith(")") or "(" not in t:
        return None
    name, _, rest = t[:-1].partition("(")
    args = rest.split(",")
    try:
        if name == "set" and len(args) == 2 and args[0] in _SET_DEST:
            return 0xE000 | _SET_DEST[args[0]] << 5 | (int(args[1]) & 31)
        if name == "wait" and len(args) == 3 and args[1] in _WAIT_SRC:
            return 0x2000 | (int(args[0]) & 1) << 7 | _WAIT_SRC[args[1]] << 5 | int(args[2]) & 31
    except ValueError:
        return None
    return None


def asm_pio_encode(instr, sideset_count, sideset_opt=False):
    key = (instr, sideset_count, sideset_opt)
    word = _encoded.get(key)
    if word is None and sideset_count == 0:
        word = _quick(instr)
    if word is None:
        try:
            word = _asm().asm_pio_encode(instr, sideset_count, sideset_opt)
        finally:
            _drop_asm()
        _encoded[key] = word
    return word


_PROG_DATA = 0
_PROG_OFFSET_PIO0 = 1
_PROG_EXECCTRL = 3
_PROG_SHIFTCTRL = 4
_PROG_OUT_PINS = 5
_PROG_SET_PINS = 6
_PROG_SIDESET_PINS = 7


class PIO:
    SHIFT_LEFT = 0
    SHIFT_RIGHT = 1
    JOIN_NONE = 0
    JOIN_TX = 1
    JOIN_RX = 2
    IN_LOW = 0
    IN_HIGH = 1
    OUT_LOW = 2
    OUT_HIGH = 3
    IRQ_SM0 = 0x100
    IRQ_SM1 = 0x200
    IRQ_SM2 = 0x400
    IRQ_SM3 = 0x800

    _blocks = {}

    def __new__(cls, id):
        b = PIO._blocks.get(id)
        if b is None:
            if id not in (0, 1):
                raise ValueError("invalid PIO")
            b = object.__new__(cls)
            b._id = id
            b._used = [None] * 32  # instruction memory: owner program id or None
            PIO._blocks[id] = b
        return b

    def __init__(self, id):
        pass

    def add_program(self, prog):
        return self._load(prog)

    def _load(self, prog):
        key = _PROG_OFFSET_PIO0 + self._id
        if prog[key] >= 0:
            return prog[key]
        words = prog[_PROG_DATA]
        n = len(words)
        # First fit from the top of instruction memory, as the pico-sdk allocator does.
        for off in range(32 - n, -1, -1):
            if all(self._used[off + i] is None for i in range(n)):
                break
        else:
            raise OSError(12)  # ENOMEM: program does not fit
        for i in range(n):
            self._used[off + i] = id(prog)
        prog[key] = off
        # Jump targets are relative to the program start: relocate them like the sdk does.
        out = []
        for w in words:
            if w & 0xE000 == 0:
                w = (w & ~0x1F) | ((w & 0x1F) + off)
            out.append("%x" % w)
        _L.send("pioload", self._id, off, " ".join(out))
        return off

    def remove_program(self, prog=None):
        if prog is None:
            self._used = [None] * 32
            _L.send("pioclear", self._id)
            return
        key = _PROG_OFFSET_PIO0 + self._id
        if prog[key] < 0:
            return
        for i in range(32):
            if self._used[i] == id(prog):
                self._used[i] = None
        prog[key] = -1

    def state_machine(self, id, *args, **kw):
        sm = StateMachine(self._id * 4 + id)
        if args or kw:
            sm.init(*args, **kw)
        return sm

    def irq(self, handler=None, trigger=0xF00, hard=False):
        return None


class StateMachine:
    _sms = {}

    def __new__(cls, id, *args, **kw):
        sm = StateMachine._sms.get(id)
        if sm is None:
            if not 0 <= id < 8:
                raise ValueError("invalid StateMachine")
            sm = object.__new__(cls)
            sm._id = id
            sm._sideset = (0, False)
            StateMachine._sms[id] = sm
        return sm

    def __init__(self, id, *args, **kw):
        if args or kw:
            self.init(*args, **kw)

    def init(
        self,
        prog,
        freq=-1,
        *,
        in_base=None,
        out_base=None,
        set_base=None,
        jmp_pin=None,
        sideset_base=None,
        in_shiftdir=None,
        out_shiftdir=None,
        push_thresh=None,
        pull_thresh=None,
    ):
        pio = PIO(self._id // 4)
        off = pio._load(prog)
        n = len(prog[_PROG_DATA])
        if freq == -1 or freq == 125_000_000:
            clkdiv = 1
        else:
            if freq < 1908 or freq > 125_000_000:
                raise ValueError("freq out of range")
            clkdiv = 125_000_000 // freq
            if clkdiv * freq != 125_000_000:
                raise ValueError("the virtual board supports integer clock dividers only")
        execctrl = prog[_PROG_EXECCTRL]
        # Wrap fields are relative in the program; make them absolute.
        wrap_bottom = ((execctrl >> 7) & 0x1F) + off
        wrap_top = ((execctrl >> 12) & 0x1F) + off
        execctrl = (execctrl & ~((0x1F << 7) | (0x1F << 12))) | wrap_bottom << 7 | wrap_top << 12
        if jmp_pin is not None:
            execctrl |= _pin_no(jmp_pin) << 24
        shiftctrl = prog[_PROG_SHIFTCTRL]
        if in_shiftdir is not None:
            shiftctrl = (shiftctrl & ~(1 << 18)) | (in_shiftdir << 18)
        if out_shiftdir is not None:
            shiftctrl = (shiftctrl & ~(1 << 19)) | (out_shiftdir << 19)
        if push_thresh is not None:
            shiftctrl = (shiftctrl & ~(0x1F << 20)) | ((push_thresh & 0x1F) << 20)
        if pull_thresh is not None:
            shiftctrl = (shiftctrl & ~(0x1F << 25)) | ((pull_thresh & 0x1F) << 25)

        pinctrl = 0
        masks = [0, 0]  # values, dirs
        out_init = prog[_PROG_OUT_PINS]
        set_init = prog[_PROG_SET_PINS]
        side_init = prog[_PROG_SIDESET_PINS]
        if out_base is not None:
            b = _pin_no(out_base)
            cnt = _count(out_init)
            pinctrl |= cnt << 20 | b
            _init_pins(b, out_init, masks)
        if set_base is not None:
            b = _pin_no(set_base)
            cnt = _count(set_init)
            pinctrl |= cnt << 26 | b << 5
            _init_pins(b, set_init, masks)
        side_count = _count(side_init)
        if execctrl & (1 << 30):
            side_count += 1
        pinctrl |= side_count << 29
        if sideset_base is not None:
            b = _pin_no(sideset_base)
            pinctrl |= b << 10
            _init_pins(b, side_init, masks)
        if in_base is not None:
            pinctrl |= _pin_no(in_base) << 15
        self._sideset = (side_count, bool(execctrl & (1 << 30)))
        _L.send(
            "sminit",
            self._id,
            off,
            off + n - 1,
            clkdiv,
            "%x" % execctrl,
            "%x" % shiftctrl,
            "%x" % pinctrl,
            "%x" % masks[0],
            "%x" % masks[1],
        )

    def active(self, value=None):
        if value is None:
            return _L.request("smactive", self._id) == "1"
        _L.send("smactive", self._id, 1 if value else 0)
        return None

    def restart(self):
        _L.send("smrestart", self._id)

    def exec(self, instr):
        if isinstance(instr, str):
            instr = asm_pio_encode(instr, self._sideset[0], self._sideset[1])
        _L.send("smexec", self._id, "%x" % instr)

    def put(self, value, shift=0):
        if isinstance(value, int):
            value = (value,)
        for v in value:
            w = (v << shift) & 0xFFFFFFFF
            # Blocks while the TX FIFO is full, as on the chip.
            while _L.request("smput", self._id, "%x" % w) != "ok":
                pass

    def get(self, buf=None, shift=0):
        while True:
            r = _L.request("smget", self._id)
            if r != "empty":
                return int(r, 16) >> shift

    def tx_fifo(self):
        return int(_L.request("smtxlevel", self._id))

    def rx_fifo(self):
        return int(_L.request("smrxlevel", self._id))

    def irq(self, handler=None, trigger=0, hard=False):
        return None


def _pin_no(p):
    if isinstance(p, int):
        return p
    return int(str(p).split("GPIO")[1].rstrip(")"))


def _count(init):
    if init is None:
        return 0
    if isinstance(init, int):
        return 1
    return len(init)


def _init_pins(base, init, masks):
    if init is None:
        return
    if isinstance(init, int):
        init = (init,)
    for i, v in enumerate(init):
        bit = 1 << ((base + i) & 31)
        if v >= PIO.OUT_LOW:  # OUT_LOW/OUT_HIGH: an output driven by the SM
            masks[1] |= bit
        if v & 1:  # OUT_HIGH (IN_HIGH only sets a pull on the chip)
            masks[0] |= bit


class DMA:
    """DMA channels. The virtual board models transfers that feed a PIO TX FIFO, paced by its
    DREQ: the source buffer is taken when the channel is configured or triggered, so firmware
    must not rewrite a buffer while a channel reads it (it could tear on the chip too)."""

    _claimed = [False] * 12

    def __init__(self):
        for i in range(12):
            if not DMA._claimed[i]:
                DMA._claimed[i] = True
                self.channel = i
                self._ctrl = 0
                self._words = None
                self._count = 0
                self._sm = None
                return
        raise OSError(16)  # EBUSY

    def close(self):
        if self.channel is not None:
            _L.send("dmaabort", self.channel)
            DMA._claimed[self.channel] = False
            self.channel = None

    @staticmethod
    def pack_ctrl(default=None, **kw):
        v = 0 if default is None else default
        fields = (
            ("enable", 0, 1),
            ("high_pri", 1, 1),
            ("size", 2, 2),
            ("inc_read", 4, 1),
            ("inc_write", 5, 1),
            ("ring_size", 6, 4),
            ("ring_sel", 10, 1),
            ("chain_to", 11, 4),
            ("treq_sel", 15, 6),
            ("irq_quiet", 21, 1),
            ("bswap", 22, 1),
            ("sniff_en", 23, 1),
        )
        if default is None:
            v = 1 | 2 << 2 | 1 << 4 | 1 << 5 | 0x3F << 15
        for name, shift, bits in fields:
            if name in kw:
                mask = ((1 << bits) - 1) << shift
                v = (v & ~mask) | ((kw.pop(name) << shift) & mask)
        if kw:
            raise TypeError("unknown ctrl field")
        return v

    def pack_ctrl_default(self):
        return DMA.pack_ctrl(chain_to=self.channel)

    def config(self, read=None, write=None, count=None, ctrl=None, trigger=False):
        if ctrl is None:
            ctrl = DMA.pack_ctrl(chain_to=self.channel)
        self._ctrl = ctrl
        sm = write
        if isinstance(write, StateMachine):
            sm = write._id
        elif isinstance(write, int):
            # PIO TXF registers: PIO0 0x50200010 + 4*sm, PIO1 0x50300010 + 4*sm
            base = write & 0xFFF00000
            sm = (4 if base == 0x50300000 else 0) + ((write & 0xFF) - 0x10) // 4
        if read is not None and not isinstance(read, int):
            words = memoryview(read)
            ring = (ctrl >> 6) & 0xF
            if ring and not (ctrl >> 10) & 1 and _addressof(words) % (1 << ring):
                # The chip would wrap at the aligned boundary and play other memory.
                raise ValueError("DMA read ring not aligned to its size")
            self._words = _L.Words(words)
        if count is not None:
            self._count = count
        self._sm = sm
        self._send(trigger)

    def _send(self, trigger):
        _L.send(
            "dmacfg",
            self.channel,
            self._sm,
            self._count,
            "%x" % self._ctrl,
            1 if trigger else 0,
            self._words or "-",
        )

    def active(self, value=None):
        if value is None:
            return _L.request("dmaactive", self.channel) == "1"
        _L.send("dmaactive", self.channel, 1 if value else 0)
        return None

    @property
    def count(self):
        return int(_L.request("dmacount", self.channel))

    @property
    def ctrl(self):
        return self._ctrl

    def irq(self, handler=None, hard=False):
        return None
