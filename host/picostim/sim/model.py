"""The virtual RP2040 behind the virtual board: GPIO, both PIO blocks, DMA and the watchdog.

The supervisor applies the events that the simulated `machine`/`rp2` modules report, each at
the system-clock cycle it happened, and advances every state machine to that cycle first, so
the PIO programs the firmware loaded are executed in order, instruction by instruction, with
their FIFO and DMA contents and the input-pin timeline. Output levels are never computed any
other way.

Time is counted in cycles of the 125 MHz system clock since power-on.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from picostim.pinmap import PINS
from picostim.pio.executor import DmaFeed, StateMachine
from picostim.sim.dac import Mcp4728

SYS_HZ = 125_000_000
N_GPIO = 30

# PIO register block addresses and the atomic aliases of CTRL.
_PIO_BASE = (0x5020_0000, 0x5030_0000)
_ALIAS_XOR, _ALIAS_SET, _ALIAS_CLR = 0x1000, 0x2000, 0x3000

# GPIO functions as the model tracks them.
FUNC_NULL, FUNC_SIO, FUNC_PIO0, FUNC_PIO1 = "null", "sio", "pio0", "pio1"
_PIN_OUT = 1
_PULL_UP = 1


class GpioTimeline:
    """The level each GPIO presents to the PIO input bus, as a step function of cycles.

    Implements the executor's InputTimeline. Steps older than what the executor can still
    ask about are dropped by `prune`.
    """

    def __init__(self) -> None:
        self._cycles: dict[int, list[int]] = {}
        self._levels: dict[int, list[int]] = {}
        self._changes: list[int] = []

    def set(self, pin: int, cycle: int, level: int) -> None:
        cyc = self._cycles.setdefault(pin, [])
        lev = self._levels.setdefault(pin, [])
        if lev and lev[-1] == level:
            return
        if cyc and cyc[-1] >= cycle:
            # Same cycle (or a late event clamped to it): the newest level wins.
            cyc[-1] = max(cyc[-1], cycle)
            lev[-1] = level
        else:
            cyc.append(cycle)
            lev.append(level)
        i = bisect_right(self._changes, cycle)
        if i == 0 or self._changes[i - 1] != cycle:
            self._changes.insert(i, cycle)

    def level(self, pin: int, cycle: int) -> int:
        cyc = self._cycles.get(pin)
        if not cyc:
            return 0
        i = bisect_right(cyc, cycle) - 1
        return self._levels[pin][i] if i >= 0 else 0

    def next_change(self, cycle: int) -> int | None:
        i = bisect_right(self._changes, cycle)
        return self._changes[i] if i < len(self._changes) else None

    def prune(self, before: int) -> None:
        for pin, cyc in self._cycles.items():
            i = bisect_right(cyc, before) - 1
            if i > 0:
                del cyc[:i]
                del self._levels[pin][:i]
        i = bisect_right(self._changes, before)
        if i:
            del self._changes[:i]


@dataclass
class DmaChannel:
    sm: int | None = None
    count: int = 0
    ctrl: int = 0
    words: list[int] = field(default_factory=list)
    feed: DmaFeed | None = None
    active: bool = False


class BoardModel:
    """GPIO + PIO + DMA state of one virtual RP2040, advanced lazily in cycles."""

    def __init__(self) -> None:
        self.time = 0
        self.external: dict[int, int] = {}  # levels driven from outside (button, interlock...)
        self.func = [FUNC_NULL] * N_GPIO
        self.sio_out = [0] * N_GPIO
        self.sio_dir = [0] * N_GPIO
        self.pull = [2] * N_GPIO  # board pull-downs; -1 none, 1 up, 2 down
        self.level_now = [0] * N_GPIO  # level on each pad at self.time
        self.inputs = GpioTimeline()
        self.instr_mem = ([0] * 32, [0] * 32)
        self.sms: list[StateMachine | None] = [None] * 8
        self.dma = [DmaChannel() for _ in range(12)]
        self.recording = False
        self.record_from = 0
        self.recorded: list[tuple[int, int, int]] = []  # (cycle, pin, level)
        self.dac = Mcp4728()
        self.i2c_devices: dict[int, object] = {PINS["DAC_ADDR"]: self.dac}

    # ---------------------------------------------------------------- time

    def advance_to(self, cycle: int) -> None:
        """Run every state machine up to `cycle` and fold their pin writes into the pads."""
        if cycle <= self.time:
            return
        batch: list[tuple[int, int, int]] = []
        for i, sm in enumerate(self.sms):
            if sm is None:
                continue
            sm.run_until(cycle)
            if sm.edges:
                func = FUNC_PIO0 if i < 4 else FUNC_PIO1
                for c, pin, level in sm.edges:
                    if self.func[pin] == func:
                        batch.append((c, pin, level))
                        # Later state machines (e.g. the sync output's, on PIO1) read this
                        # pad over the same interval: they run after this one.
                        self.inputs.set(pin, c, level)
                sm.edges.clear()
            sm.dir_edges.clear()
        if len(batch) > 1:
            batch.sort()
        for c, pin, level in batch:
            self._pad(pin, c, level)
        self.time = cycle
        self.inputs.prune(cycle)

    def sorted_recording(self, t1: int) -> list[tuple[int, int, int]]:
        """Recorded pad changes before t1, in time order (lazy events may arrive early)."""
        return sorted(e for e in self.recorded if e[0] < t1)

    def _pad(self, pin: int, cycle: int, level: int) -> None:
        if self.level_now[pin] != level:
            self.level_now[pin] = level
            if self.recording and cycle >= self.record_from:
                self.recorded.append((cycle, pin, level))

    # ---------------------------------------------------------------- pads

    def _drive(self, pin: int) -> int:
        """The level a pad settles to now, from its function, driver and pulls."""
        f = self.func[pin]
        if f in (FUNC_PIO0, FUNC_PIO1):
            block = 0 if f == FUNC_PIO0 else 1
            bit = 1 << pin
            for k in range(3, -1, -1):  # the highest-numbered SM has priority
                sm = self.sms[block * 4 + k]
                if sm is not None and sm.pin_dirs & bit:
                    return 1 if sm.pin_values & bit else 0
        elif f == FUNC_SIO and self.sio_dir[pin]:
            return self.sio_out[pin]
        if pin in self.external:
            return self.external[pin]
        return 1 if self.pull[pin] == _PULL_UP else 0

    def _refresh(self, pin: int, cycle: int) -> None:
        level = self._drive(pin)
        self._pad(pin, cycle, level)
        self.inputs.set(pin, cycle, level)

    def set_external(self, pin: int, level: int | None, cycle: int) -> None:
        """Drive (or release, with None) a pin from outside the board."""
        self.advance_to(cycle)
        if level is None:
            self.external.pop(pin, None)
        else:
            self.external[pin] = 1 if level else 0
        self._refresh(pin, max(cycle, self.time))

    # ---------------------------------------------------------------- resets

    def power_on(self, cycle: int, run_pio: bool = True) -> None:
        """Hardware reset (power-on, watchdog, machine.reset): PIO, DMA and GPIO start over.

        With `run_pio` False the state machines stop where they are instead of running up to
        `cycle` first: for an executor too far behind real time to get there promptly.
        """
        if not run_pio:
            self.sms = [None] * 8
        self.advance_to(cycle)
        self.sms = [None] * 8
        self.instr_mem = ([0] * 32, [0] * 32)
        self.dac.power_on(cycle)
        for ch in self.dma:
            ch.feed = None
            ch.active = False
        for pin in range(N_GPIO):
            self.func[pin] = FUNC_NULL
            self.sio_out[pin] = 0
            self.sio_dir[pin] = 0
            self.pull[pin] = 2
            self._refresh(pin, cycle)

    def soft_reset(self, cycle: int, run_pio: bool = True) -> None:
        """What MicroPython's soft reset does to the chip: PIO state machines are stopped and
        their programs removed, DMA channels stopped; GPIO functions and the last levels the
        state machines drove stay as they were (`run_pio` as for `power_on`)."""
        if not run_pio:
            for sm in self.sms:
                if sm is not None:
                    sm.set_enabled(False)
        self.advance_to(cycle)
        for sm in self.sms:
            if sm is not None:
                sm.set_enabled(False)
                sm.attach_dma(None)
        for mem in self.instr_mem:
            mem[:] = [0] * 32
        for ch in self.dma:
            ch.feed = None
            ch.active = False

    # ---------------------------------------------------------------- events

    # Events that never touch the state machines: the PIO only sees their pins through the
    # input timeline, which it reads lazily. Applying them does not advance the PIO, so a
    # busy pulse train never delays an LED, an ARM line or an I2C write.
    _LAZY = frozenset(("pinv", "pinalt", "i2cscan", "i2cw", "i2cr"))

    def apply(self, op: str, cycle: int, args: list[str]) -> str | None:
        """Apply one event from the firmware at `cycle`; return the reply for requests."""
        name = op.lstrip("?")
        if name in self._LAZY and not self._drives_pio_pin(name, args):
            c = max(cycle, self.time)
        else:
            self.advance_to(cycle)
            c = self.time
        handler = getattr(self, "_ev_" + name, None)
        if handler is None:
            return "" if op.startswith("?") else None
        return handler(c, args)

    def _drives_pio_pin(self, name: str, a: list[str]) -> bool:
        return name == "pinv" and self.func[int(a[0])] in (FUNC_PIO0, FUNC_PIO1)

    def _ev_pin(self, c: int, a: list[str]) -> None:
        pin, mode, pull, value = (int(v) for v in a[:4])
        self.func[pin] = FUNC_SIO
        self.sio_dir[pin] = 1 if mode == _PIN_OUT else 0
        self.sio_out[pin] = value
        if pull != -1:
            self.pull[pin] = pull
        self._refresh(pin, c)

    def _ev_pinv(self, c: int, a: list[str]) -> None:
        pin, value = int(a[0]), int(a[1])
        self.sio_out[pin] = value
        self._refresh(pin, c)

    def _ev_pinalt(self, c: int, a: list[str]) -> None:
        return None

    def _ev_pioload(self, c: int, a: list[str]) -> None:
        block, off = int(a[0]), int(a[1])
        mem = self.instr_mem[block]
        for i, w in enumerate(a[2:]):
            mem[off + i] = int(w, 16)

    def _ev_pioclear(self, c: int, a: list[str]) -> None:
        self.instr_mem[int(a[0])][:] = [0] * 32

    def _ev_sminit(self, c: int, a: list[str]) -> None:
        sm_id, off, _last, clkdiv = (int(v) for v in a[:4])
        execctrl, shiftctrl, pinctrl, values, dirs = (int(v, 16) for v in a[4:9])
        block = sm_id // 4
        sm = self.sms[sm_id]
        if sm is None:
            sm = StateMachine(
                self.instr_mem[block],
                execctrl=execctrl,
                shiftctrl=shiftctrl,
                pinctrl=pinctrl,
                clkdiv_int=clkdiv,
                inputs=self.inputs,
                pc=off,
                sm_index=sm_id % 4,
            )
            sm.cycle = c
            self.sms[sm_id] = sm
        else:
            # pio_sm_init: disable, configure, clear FIFOs, restart, jump to the start.
            sm.set_enabled(False)
            sm.attach_dma(None)
            sm.configure(
                execctrl=execctrl, shiftctrl=shiftctrl, pinctrl=pinctrl, clkdiv_int=clkdiv
            )
            sm.tx.clear()
            sm.rx.clear()
            sm.restart()
            sm.pc = off
        sm.clkdiv_restart()
        sm.pin_dirs |= dirs
        sm.pin_values = (sm.pin_values & ~dirs) | (values & dirs)
        func = FUNC_PIO0 if block == 0 else FUNC_PIO1
        for pin in range(N_GPIO):
            if dirs >> pin & 1:
                self.func[pin] = func
                self._refresh(pin, c)

    def _sm(self, a: list[str]) -> StateMachine:
        sm = self.sms[int(a[0])]
        if sm is None:
            raise ValueError("state machine %s is not initialised" % a[0])
        return sm

    def _ev_smactive(self, c: int, a: list[str]) -> str | None:
        sm = self.sms[int(a[0])]
        if len(a) == 1:  # request
            return "1" if sm is not None and sm.enabled else "0"
        if sm is not None:
            sm.set_enabled(a[1] == "1")
        return None

    def _ev_smrestart(self, c: int, a: list[str]) -> None:
        self._sm(a).restart()

    def _ev_smexec(self, c: int, a: list[str]) -> None:
        sm = self._sm(a)
        sm.exec(int(a[1], 16))
        self._collect(sm, int(a[0]))

    def _collect(self, sm: StateMachine, sm_id: int) -> None:
        func = FUNC_PIO0 if sm_id < 4 else FUNC_PIO1
        for cyc, pin, level in sm.edges:
            if self.func[pin] == func:
                self._pad(pin, cyc, level)
        sm.edges.clear()
        for _cyc, pin, _dir in sm.dir_edges:
            if self.func[pin] == func:
                self._refresh(pin, self.time)
        sm.dir_edges.clear()

    def _ev_smput(self, c: int, a: list[str]) -> str:
        return "ok" if self._sm(a).put(int(a[1], 16)) else "full"

    def _ev_smget(self, c: int, a: list[str]) -> str:
        v = self._sm(a).get()
        return "empty" if v is None else "%x" % v

    def _ev_smtxlevel(self, c: int, a: list[str]) -> str:
        sm = self.sms[int(a[0])]
        return str(len(sm.tx) if sm else 0)

    def _ev_smrxlevel(self, c: int, a: list[str]) -> str:
        sm = self.sms[int(a[0])]
        return str(len(sm.rx) if sm else 0)

    def _ev_mem(self, c: int, a: list[str]) -> str | None:
        addr = int(a[1])
        if len(a) == 2:  # read
            for block, base in enumerate(_PIO_BASE):
                if addr == base:
                    sms = self.sms[block * 4 : block * 4 + 4]
                    return str(sum(1 << k for k, s in enumerate(sms) if s and s.enabled))
            return "0"
        value = int(a[2])
        for block, base in enumerate(_PIO_BASE):
            if addr & ~0x3000 != base:
                continue
            alias = addr & 0x3000
            for k in range(4):
                sm = self.sms[block * 4 + k]
                if sm is None:
                    continue
                bit = 1 << k
                en = value & bit
                if alias == _ALIAS_SET:
                    if en:
                        sm.set_enabled(True)
                elif alias == _ALIAS_CLR:
                    if en:
                        sm.set_enabled(False)
                elif alias == _ALIAS_XOR:
                    if en:
                        sm.set_enabled(not sm.enabled)
                else:
                    sm.set_enabled(bool(en))
                if alias != _ALIAS_CLR:
                    if value & (bit << 4):
                        sm.restart()
                    if value & (bit << 8):
                        sm.clkdiv_restart()
        return None

    def _ev_dmacfg(self, c: int, a: list[str]) -> None:
        ch = int(a[0])
        d = self.dma[ch]
        d.sm = None if a[1] == "None" else int(a[1])
        d.count = int(a[2])
        d.ctrl = int(a[3], 16)
        trigger = a[4] == "1"
        if a[5] != "-":
            d.words = [int(w, 16) for w in a[5:]]
        ring_size = (d.ctrl >> 6) & 0xF
        ring_words = 0
        if ring_size and not (d.ctrl >> 10) & 1:
            ring_words = (1 << ring_size) // 4
        d.feed = DmaFeed(d.words, ring_words=ring_words, count=d.count)
        d.feed.remaining = 0  # armed, not running, until triggered
        self._link_chains()
        if trigger and d.ctrl & 1:
            self._start_dma(ch)

    def _link_chains(self) -> None:
        for i, d in enumerate(self.dma):
            if d.feed is None:
                continue
            to = (d.ctrl >> 11) & 0xF
            d.feed.chain = self.dma[to].feed if to != i else None

    def _start_dma(self, ch: int) -> None:
        d = self.dma[ch]
        if d.feed is None or d.sm is None:
            return
        d.feed.trigger()
        d.active = True
        sm = self.sms[d.sm]
        if sm is not None:
            sm.attach_dma(d.feed)

    def _ev_dmaactive(self, c: int, a: list[str]) -> str | None:
        ch = int(a[0])
        d = self.dma[ch]
        if len(a) == 1:
            return "1" if d.feed is not None and d.feed.remaining > 0 else "0"
        if a[1] == "1":
            self._start_dma(ch)
        elif d.sm is not None:
            sm = self.sms[d.sm]
            if sm is not None and sm.dma is d.feed:
                sm.attach_dma(None)
            d.active = False
        return None

    def _ev_dmaabort(self, c: int, a: list[str]) -> None:
        self._ev_dmaactive(c, [a[0], "0"])
        self.dma[int(a[0])].feed = None

    def _ev_dmacount(self, c: int, a: list[str]) -> str:
        d = self.dma[int(a[0])]
        return str(d.feed.remaining if d.feed else 0)

    # I2C devices (the DAC) are attached by the supervisor.
    def _ev_i2cscan(self, c: int, a: list[str]) -> str:
        return " ".join(str(addr) for addr in sorted(self.i2c_devices))

    def _ev_i2cw(self, c: int, a: list[str]) -> str:
        dev = self.i2c_devices.get(int(a[1]))
        if dev is None:
            return "nak"
        data = b"" if a[2] == "-" else bytes.fromhex(a[2])
        dev.write(c, data)  # type: ignore[attr-defined]
        return "ack"

    def _ev_i2cr(self, c: int, a: list[str]) -> str:
        dev = self.i2c_devices.get(int(a[1]))
        if dev is None:
            return "nak"
        return dev.read(c, int(a[2])).hex()  # type: ignore[attr-defined]
