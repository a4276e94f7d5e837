"""Cycle-exact executor for one RP2040 PIO state machine.

The virtual board runs the PIO programs the board code loaded through this
module to produce the real output waveform. Behaviour follows chapter 3 of the
RP2040 datasheet; ``pioemu`` (rp2040-pio-emulator) serves as an independent
cross-check in the tests, which also name the places where it departs from the
datasheet.

Time is counted in system clock cycles. An instruction "executes at cycle c"
when the state machine's clock enable is high on system cycle c; the pin
levels it writes are recorded as edges at cycle c and hold from c onwards.
Pin reads at cycle c see the levels from before that cycle's writes.

Modelling choices (documented limits rather than accidents):

* Pin reads: a GPIO this state machine drives (its PINDIRS bit set) reads back
  its own output level; any other GPIO reads ``inputs.level(pin, cycle)``.
  GPIOs 30 and 31 do not exist on RP2040 and read as 0. The two-cycle
  input/output register stages and the input synchronisers are not modelled:
  ``InputTimeline`` gives the level as the state machine samples it.
* IRQ flags are local to the state machine (``irq_flags``); flags raised or
  cleared by other state machines are not modelled.
* OUT_STICKY / INLINE_OUT_EN and output priority between state machines are
  left to the caller, which combines the per-machine ``edges``.
* Only the integer part of the clock divider is modelled.

Speed: counted loops that jump to themselves (``jmp x--``/``jmp y--`` with
any delay and side-set), unconditional self-loops, delay countdowns and stalls
that nothing inside ``run_until`` can end (empty TX FIFO without DMA, full RX
FIFO, IRQ waits, ``wait`` on a level that only changes at the next input
change) are skipped in O(1). The recorded edges are identical to stepping
cycle by cycle, which ``fast_forward=False`` does.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from typing import Protocol

__all__ = [
    "FAST_FORWARD",
    "GPIO_COUNT",
    "ConstantInputs",
    "DmaFeed",
    "InputTimeline",
    "StateMachine",
    "StepInputs",
]

#: Default for ``StateMachine(fast_forward=None)``; tests flip it to compare.
FAST_FORWARD = True
#: GPIOs that exist on RP2040; the PIO input bus reads zeros above them.
GPIO_COUNT = 30

_MASK32 = 0xFFFF_FFFF

# Decoded operation codes (index of the instruction's function).
_JMP, _WAIT, _IN, _OUT, _PUSH, _PULL, _MOV, _IRQ, _SET = range(9)

# Outcome of executing one instruction.
_ADVANCE = 0  # completed; PC advances (with wrap) unless run from the exec latch
_JUMPED = 1  # completed; PC was written
_STALL = 2  # did not complete; retried on the next cycle
_EXEC_NEXT = 3  # OUT/MOV EXEC: PC advances, own delay ignored, latch runs next cycle

# A decoded instruction: (op, a, b, c, delay, side_mask, side_data).
Decoded = tuple[int, int, int, int, int, int, int]


def _bit_reverse_table() -> list[int]:
    table = []
    for value in range(256):
        rev = 0
        for bit in range(8):
            if value >> bit & 1:
                rev |= 1 << (7 - bit)
        table.append(rev)
    return table


_REV8 = _bit_reverse_table()


def _reverse32(value: int) -> int:
    """Bit n of the result is bit 31 - n of ``value`` (MOV ``::``)."""
    return (
        _REV8[value & 0xFF] << 24
        | _REV8[value >> 8 & 0xFF] << 16
        | _REV8[value >> 16 & 0xFF] << 8
        | _REV8[value >> 24 & 0xFF]
    )


def _rotl(value: int, shift: int) -> int:
    """Rotate a 32-bit value left: pin mappings wrap after GPIO31."""
    return (value << shift | value >> (32 - shift)) & _MASK32


def _field_mask(count: int) -> int:
    return (1 << count) - 1


# --------------------------------------------------------------------------- inputs


class InputTimeline(Protocol):
    """External pin levels over time, in system cycles."""

    def level(self, pin: int, cycle: int) -> int:
        """Level (0/1) of ``pin`` at ``cycle``."""
        ...

    def next_change(self, cycle: int) -> int | None:
        """First cycle > ``cycle`` at which any input changes, or None if none does."""
        ...


class ConstantInputs:
    """Inputs that never change; pins not listed read low."""

    def __init__(self, levels: dict[int, int] | None = None) -> None:
        self._levels = dict(levels or {})

    def level(self, pin: int, cycle: int) -> int:
        return self._levels.get(pin, 0)

    def next_change(self, cycle: int) -> int | None:
        return None


class StepInputs:
    """Inputs given as (cycle, pin, level) changes; a change holds from its cycle on."""

    def __init__(
        self,
        changes: Iterable[tuple[int, int, int]],
        initial: dict[int, int] | None = None,
    ) -> None:
        self._initial = dict(initial or {})
        per_pin: dict[int, tuple[list[int], list[int]]] = {}
        # Stable sort: of two changes to one pin at one cycle, the later one wins.
        for cycle, pin, level in sorted(changes, key=lambda change: change[0]):
            cycles, levels = per_pin.setdefault(pin, ([], []))
            if cycles and cycles[-1] == cycle:
                levels[-1] = level & 1
            else:
                cycles.append(cycle)
                levels.append(level & 1)
        self._per_pin = per_pin
        self._change_cycles = sorted({c for cycles, _ in per_pin.values() for c in cycles})

    def level(self, pin: int, cycle: int) -> int:
        entry = self._per_pin.get(pin)
        if entry is not None:
            index = bisect_right(entry[0], cycle) - 1
            if index >= 0:
                return entry[1][index]
        return self._initial.get(pin, 0)

    def next_change(self, cycle: int) -> int | None:
        index = bisect_right(self._change_cycles, cycle)
        if index < len(self._change_cycles):
            return self._change_cycles[index]
        return None


# --------------------------------------------------------------------------- DMA


class DmaFeed:
    """A DMA channel writing ``words`` to one state machine's TX FIFO, paced by its DREQ.

    It pushes a word whenever the FIFO has room, in the same cycle the room
    appears. With ``ring_words`` > 0 the read index wraps back to the start of
    its ring after every ``ring_words`` words (the RP2040 read ring). After
    ``count`` transfers the channel is done; if ``chain`` is set, that feed is
    triggered then (see ``trigger``), so chains may loop.
    """

    def __init__(
        self,
        words: list[int],
        ring_words: int = 0,
        count: int | None = None,
        chain: DmaFeed | None = None,
    ) -> None:
        self.words = [word & _MASK32 for word in words]
        self.ring_words = ring_words
        self.count = len(self.words) if count is None else count
        if ring_words < 0 or ring_words > len(self.words):
            raise ValueError("ring_words must be between 0 and len(words)")
        if ring_words == 0 and self.count > len(self.words):
            raise ValueError("count exceeds the words available without a ring")
        self.chain = chain
        self.remaining = self.count
        self.read_index = 0
        self._ring_start = 0

    def trigger(self) -> None:
        """Start the channel again if it had finished (chain trigger).

        The count is reloaded, as TRANS_COUNT is. The read index carries on
        around a ring, as READ_ADDR does; without a ring it goes back to the
        first word, which is what a control channel re-arming it would do.
        """
        if self.remaining <= 0:
            self.remaining = self.count
            if not self.ring_words:
                self.read_index = 0

    def next_word(self) -> int:
        """Perform one transfer and return the word it moves."""
        word = self.words[self.read_index]
        self.read_index += 1
        if self.ring_words and self.read_index == self._ring_start + self.ring_words:
            self.read_index = self._ring_start
        self.remaining -= 1
        return word


# --------------------------------------------------------------------------- state machine


class StateMachine:
    """One PIO state machine, configured by its EXECCTRL/SHIFTCTRL/PINCTRL words."""

    def __init__(
        self,
        instr_mem: list[int],
        *,
        execctrl: int,
        shiftctrl: int,
        pinctrl: int,
        clkdiv_int: int = 1,
        inputs: InputTimeline,
        pc: int = 0,
        sm_index: int = 0,
        fast_forward: bool | None = None,
    ) -> None:
        # Shared with the other state machines of the PIO block on purpose:
        # instructions are decoded through a cache keyed by the word, so a
        # program written later is seen. Short lists are padded to 32 slots.
        if len(instr_mem) < 32:
            instr_mem = list(instr_mem) + [0] * (32 - len(instr_mem))
        self.instr_mem = instr_mem
        self.inputs = inputs
        self.sm_index = sm_index & 3
        self.fast_forward = FAST_FORWARD if fast_forward is None else fast_forward

        self.cycle = 0
        self.enabled = False
        self.pc = pc & 31
        self.x = 0
        self.y = 0
        self.isr = 0
        self.isr_count = 0
        self.osr = 0
        self.osr_count = 32
        self.delay = 0
        self.stalled = False
        self.exec_latch: int | None = None
        self.irq_flags = 0
        self._irq_waiting = False

        self.tx: deque[int] = deque()
        self.rx: deque[int] = deque()
        self.pin_values = 0
        self.pin_dirs = 0
        self.edges: list[tuple[int, int, int]] = []
        self.dir_edges: list[tuple[int, int, int]] = []
        self.record = True

        self._dma: DmaFeed | None = None
        self._decoded: dict[int, Decoded] = {}
        self._fjoin = -1
        self._div_phase = 0
        self.configure(
            execctrl=execctrl, shiftctrl=shiftctrl, pinctrl=pinctrl, clkdiv_int=clkdiv_int
        )

    # ------------------------------------------------------------------ configuration

    def configure(self, *, execctrl: int, shiftctrl: int, pinctrl: int, clkdiv_int: int) -> None:
        """Decode the SMx_EXECCTRL/SHIFTCTRL/PINCTRL registers and the integer divider."""
        self.execctrl = execctrl
        self.shiftctrl = shiftctrl
        self.pinctrl = pinctrl
        self.clkdiv = clkdiv_int if clkdiv_int > 0 else 65536  # INT 0 means 65536

        self.side_en = bool(execctrl >> 30 & 1)
        self.side_pindir = bool(execctrl >> 29 & 1)
        self.jmp_pin = execctrl >> 24 & 31
        self.wrap_top = execctrl >> 12 & 31
        self.wrap_bottom = execctrl >> 7 & 31
        self.status_sel = execctrl >> 4 & 1
        self.status_n = execctrl & 15

        fjoin = shiftctrl >> 30 & 3
        if fjoin != self._fjoin:
            # "FIFOs are flushed when this bit is changed."
            self.tx.clear()
            self.rx.clear()
            self._fjoin = fjoin
        fjoin_rx, fjoin_tx = fjoin >> 1, fjoin & 1
        self.tx_depth = 0 if fjoin_rx else (8 if fjoin_tx else 4)
        self.rx_depth = 0 if fjoin_tx else (8 if fjoin_rx else 4)
        self.pull_thresh = (shiftctrl >> 25 & 31) or 32
        self.push_thresh = (shiftctrl >> 20 & 31) or 32
        self.out_shift_right = bool(shiftctrl >> 19 & 1)
        self.in_shift_right = bool(shiftctrl >> 18 & 1)
        self.autopull = bool(shiftctrl >> 17 & 1)
        self.autopush = bool(shiftctrl >> 16 & 1)

        self.sideset_count = min(pinctrl >> 29 & 7, 5)
        self.set_count = min(pinctrl >> 26 & 7, 5)
        self.out_count = min(pinctrl >> 20 & 63, 32)
        self.in_base = pinctrl >> 15 & 31
        self.sideset_base = pinctrl >> 10 & 31
        self.set_base = pinctrl >> 5 & 31
        self.out_base = pinctrl & 31

        self._out_mask = _rotl(_field_mask(self.out_count), self.out_base)
        self._set_mask = _rotl(_field_mask(self.set_count), self.set_base)
        self._decoded.clear()
        self._dma_fill()

    # ------------------------------------------------------------------ system interface

    def put(self, word: int) -> bool:
        """CPU write to the TX FIFO; False (and nothing written) if it is full."""
        if len(self.tx) >= self.tx_depth:
            return False
        self.tx.append(word & _MASK32)
        return True

    def get(self) -> int | None:
        """CPU read of the RX FIFO; None if it is empty."""
        return self.rx.popleft() if self.rx else None

    def attach_dma(self, feed: DmaFeed | None) -> None:
        """Let ``feed`` keep the TX FIFO topped up from now on (None detaches)."""
        self._dma = feed
        self._dma_fill()

    @property
    def dma(self) -> DmaFeed | None:
        """The feed currently writing the TX FIFO (follows chains)."""
        return self._dma

    def set_enabled(self, on: bool) -> None:
        """CTRL.SM_ENABLE. The clock divider keeps running while disabled."""
        self.enabled = bool(on)

    def restart(self) -> None:
        """CTRL.SM_RESTART: clear shift counters, ISR, delay, IRQ wait and latched instruction.

        PC, OSR contents and X/Y are kept, as the datasheet lists.
        """
        self.isr = 0
        self.isr_count = 0
        self.osr_count = 32
        self.delay = 0
        self.stalled = False
        self.exec_latch = None
        self._irq_waiting = False

    def clkdiv_restart(self) -> None:
        """CTRL.CLKDIV_RESTART: the divider's phase starts again at the current cycle."""
        self._div_phase = self.cycle % self.clkdiv

    def exec(self, instr: int) -> None:
        """SMx_INSTR write: run ``instr`` now, at ``self.cycle``, even if disabled.

        Delay cycles are ignored and PC does not advance. A stalling
        instruction is latched and retried on the following cycles (it
        replaces any latched OUT/MOV EXEC instruction). On an enabled machine
        the forced instruction takes the place of the one that cycle would
        have fetched, so the clock moves on by one cycle.
        """
        cycle = self.cycle
        self.exec_latch = None
        status = self._run_instruction(self._decode(instr & 0xFFFF), cycle, True)
        if status == _STALL:
            self.exec_latch = instr & 0xFFFF
        if self.enabled:
            self.cycle = cycle + 1

    # ------------------------------------------------------------------ running

    def run_until(self, cycle: int) -> None:
        """Advance to ``cycle`` (exclusive). A disabled machine only moves its clock."""
        if cycle <= self.cycle:
            return
        if not self.enabled:
            self.cycle = cycle
            return
        div = self.clkdiv
        now = self.cycle + (self._div_phase - self.cycle) % div
        while now < cycle:
            now += self._advance(now, cycle) * div
        self.cycle = cycle

    def _advance(self, now: int, target: int) -> int:
        """Run from enabled cycle ``now``; return how many SM cycles were used (>= 1)."""
        div = self.clkdiv
        avail = (target - now + div - 1) // div
        fast = self.fast_forward
        if self.delay:
            if fast and not self._refill_pending():
                used = min(self.delay, avail)
                self.delay -= used
                return used
            self.delay -= 1
            if self.autopull:
                self._background_refill()
            return 1
        if fast and self.exec_latch is None:
            used = self._skip_self_loop(now, avail)
            if used:
                return used
        self._tick(now)
        if fast and self.stalled and avail > 1:
            return 1 + self._skip_stall(now, avail - 1)
        return 1

    def _tick(self, now: int) -> None:
        """One SM cycle with no delay pending: fetch (latch or memory) and execute."""
        latched = self.exec_latch
        if latched is not None:
            word = latched
            self.exec_latch = None
        else:
            word = self.instr_mem[self.pc]
        decoded = self._decoded.get(word)
        if decoded is None:
            decoded = self._decode(word)
        status = self._run_instruction(decoded, now, latched is not None)
        if status == _STALL:
            if latched is not None:
                self.exec_latch = latched
        elif status != _JUMPED and latched is None:
            pc = self.pc
            self.pc = self.wrap_bottom if pc == self.wrap_top else (pc + 1) & 31
        if status == _ADVANCE or status == _JUMPED:
            self.delay = decoded[4]
        if self.autopull and decoded[0] != _OUT:
            self._background_refill()

    # ------------------------------------------------------------------ fast-forward

    def _refill_pending(self) -> bool:
        """True if the background autopull would change the OSR on the next cycle."""
        return self.autopull and self.osr_count >= self.pull_thresh and bool(self.tx)

    def _side_in_effect(self, mask: int, data: int) -> bool:
        current = self.pin_dirs if self.side_pindir else self.pin_values
        return current & mask == data

    def _skip_self_loop(self, now: int, avail: int) -> int:
        """Batch the iterations of a JMP to itself whose outcome is known; SM cycles used."""
        pc = self.pc
        word = self.instr_mem[pc]
        decoded = self._decoded.get(word)
        if decoded is None:
            decoded = self._decode(word)
        op, cond, addr, _, delay, side_mask, side_data = decoded
        if op != _JMP or addr != pc:
            return 0
        # The first iteration may change pins (and a jmp pin may read them):
        # leave it to a normal step.
        if side_mask and not self._side_in_effect(side_mask, side_data):
            return 0
        if self._refill_pending():
            return 0
        period = 1 + delay
        most = avail // period
        if most == 0:
            return 0
        if cond == 0:
            count = most
        elif cond == 1:
            count = most if self.x == 0 else 0
        elif cond == 2:
            count = min(self.x, most)
            self.x -= count
        elif cond == 3:
            count = most if self.y == 0 else 0
        elif cond == 4:
            count = min(self.y, most)
            self.y -= count
        elif cond == 5:
            count = most if self.x != self.y else 0
        elif cond == 6:
            count = self._pin_loop_iterations(now, period, most)
        else:
            count = most if self.osr_count < self.pull_thresh else 0
        if count:
            self.stalled = False
            self.delay = 0
        return count * period

    def _pin_loop_iterations(self, now: int, period: int, most: int) -> int:
        """Iterations of ``jmp pin self`` taken before the pin can change."""
        pin = self.jmp_pin
        if not self._read_gpio(pin, now):
            return 0
        if self.pin_dirs >> pin & 1:
            return most  # our own output: constant while we loop
        change = self.inputs.next_change(now)
        if change is None:
            return most
        span = period * self.clkdiv
        return min(most, (change - now + span - 1) // span)

    def _skip_stall(self, now: int, most: int) -> int:
        """After a stalled cycle at ``now``: further SM cycles that stay stalled unchanged."""
        if self._refill_pending():
            return 0
        word = self.exec_latch if self.exec_latch is not None else self.instr_mem[self.pc]
        decoded = self._decoded.get(word)
        if decoded is None:
            decoded = self._decode(word)
        op, a, b, c = decoded[0], decoded[1], decoded[2], decoded[3]
        # An empty TX FIFO stays empty: a DMA feed with words left would have
        # refilled it in the cycle it emptied.
        if op == _PULL:
            return most if not self.tx else 0
        if op == _OUT:
            # The stalled cycle may have refilled the OSR; then the OUT runs next.
            return most if self.osr_count >= self.pull_thresh and not self.tx else 0
        if op == _PUSH or op == _IN:
            return most if len(self.rx) >= self.rx_depth else 0
        if op == _IRQ:
            return most if self.irq_flags >> c & 1 else 0
        if op != _WAIT:
            return 0
        polarity, source, index = a, b, c
        if source == 2:
            return most if (self.irq_flags >> index & 1) != polarity else 0
        pin = index if source == 0 else (self.in_base + index) & 31
        if self._read_gpio(pin, now) == polarity:
            return 0  # side-set just changed the pin we wait on: re-evaluate
        if pin >= GPIO_COUNT or self.pin_dirs >> pin & 1:
            return most
        change = self.inputs.next_change(now)
        if change is None:
            return most
        # Stalled on every enabled cycle before the change.
        return min(most, (change - now + self.clkdiv - 1) // self.clkdiv - 1)

    # ------------------------------------------------------------------ decoding

    def _decode(self, word: int) -> Decoded:
        """Split an instruction word into operation, operands, delay and side-set."""
        field = word >> 8 & 31
        count = self.sideset_count
        delay = field & _field_mask(5 - count)
        side_mask = side_data = 0
        if count:
            value = field >> (5 - count)
            bits = count
            enabled = True
            if self.side_en:
                enabled = bool(value >> (count - 1))
                bits = count - 1
                value &= _field_mask(bits)
            if enabled and bits:
                side_mask = _rotl(_field_mask(bits), self.sideset_base)
                side_data = _rotl(value, self.sideset_base)

        kind = word >> 13
        low5 = word & 31
        if kind == 0:
            op, a, b, c = _JMP, word >> 5 & 7, low5, 0
        elif kind == 1:
            op, a, b, c = _WAIT, word >> 7 & 1, word >> 5 & 3, low5
            if b == 2:
                c = self._irq_index(low5)
        elif kind == 2:
            op, a, b, c = _IN, word >> 5 & 7, low5 or 32, 0
        elif kind == 3:
            op, a, b, c = _OUT, word >> 5 & 7, low5 or 32, 0
        elif kind == 4:
            op = _PULL if word & 0x80 else _PUSH
            a, b, c = word >> 6 & 1, word >> 5 & 1, 0
        elif kind == 5:
            op, a, b, c = _MOV, word >> 5 & 7, word >> 3 & 3, word & 7
        elif kind == 6:
            op, a, b, c = _IRQ, word >> 6 & 1, word >> 5 & 1, self._irq_index(low5)
        else:
            op, a, b, c = _SET, word >> 5 & 7, low5, 0
        decoded = (op, a, b, c, delay, side_mask, side_data)
        self._decoded[word] = decoded
        return decoded

    def _irq_index(self, index: int) -> int:
        """IRQ flag number; with the MSB set the SM number is added modulo 4."""
        flag = index & 7
        if index & 0x10:
            flag = (flag & 4) | ((flag + self.sm_index) & 3)
        return flag

    # ------------------------------------------------------------------ execution

    def _run_instruction(self, decoded: Decoded, now: int, from_latch: bool) -> int:
        """Execute one decoded instruction at cycle ``now``, side-set included; record edges."""
        old_values = self.pin_values
        old_dirs = self.pin_dirs
        status = self._execute(decoded, now, from_latch)
        side_mask = decoded[5]
        if side_mask:
            # Side-set wins over OUT/SET on overlapping pins, and happens even on a stall.
            if self.side_pindir:
                self.pin_dirs = self.pin_dirs & ~side_mask | decoded[6]
            else:
                self.pin_values = self.pin_values & ~side_mask | decoded[6]
        self.stalled = status == _STALL
        if self.record:
            if self.pin_values != old_values:
                self._record(self.edges, now, old_values, self.pin_values)
            if self.pin_dirs != old_dirs:
                self._record(self.dir_edges, now, old_dirs, self.pin_dirs)
        return status

    @staticmethod
    def _record(edges: list[tuple[int, int, int]], now: int, old: int, new: int) -> None:
        diff = old ^ new
        while diff:
            low = diff & -diff
            pin = low.bit_length() - 1
            edges.append((now, pin, new >> pin & 1))
            diff ^= low

    def _execute(self, decoded: Decoded, now: int, from_latch: bool) -> int:
        op, a, b, c = decoded[0], decoded[1], decoded[2], decoded[3]
        if op == _JMP:
            return self._op_jmp(a, b, now)
        if op == _OUT:
            return self._op_out(a, b)
        if op == _SET:
            return self._op_set(a, b)
        if op == _MOV:
            return self._op_mov(a, b, c, now)
        if op == _PULL:
            return self._op_pull(a, b)
        if op == _IN:
            return self._op_in(a, b, now)
        if op == _PUSH:
            return self._op_push(a, b)
        if op == _WAIT:
            return self._op_wait(a, b, c, now)
        return self._op_irq(a, b, c)

    def _op_jmp(self, cond: int, addr: int, now: int) -> int:
        if cond == 0:
            taken = True
        elif cond == 1:
            taken = self.x == 0
        elif cond == 2:
            taken = self.x != 0
            self.x = (self.x - 1) & _MASK32
        elif cond == 3:
            taken = self.y == 0
        elif cond == 4:
            taken = self.y != 0
            self.y = (self.y - 1) & _MASK32
        elif cond == 5:
            taken = self.x != self.y
        elif cond == 6:
            taken = bool(self._read_gpio(self.jmp_pin, now))
        else:
            # !OSRE: compared against the pull threshold, not 32.
            taken = self.osr_count < self.pull_thresh
        if taken:
            self.pc = addr
            return _JUMPED
        return _ADVANCE

    def _op_wait(self, polarity: int, source: int, index: int, now: int) -> int:
        if source == 2:
            bit = 1 << index
            if (self.irq_flags & bit != 0) != bool(polarity):
                return _STALL
            if polarity:
                self.irq_flags &= ~bit  # WAIT 1 IRQ clears the flag it waited for
            return _ADVANCE
        if source == 3:
            return _ADVANCE  # reserved source: treated as already satisfied
        pin = index if source == 0 else (self.in_base + index) & 31
        return _ADVANCE if self._read_gpio(pin, now) == polarity else _STALL

    def _op_in(self, source: int, count: int, now: int) -> int:
        data = self._in_source(source, count, now)
        if count == 32:
            isr = data
        elif self.in_shift_right:
            isr = self.isr >> count | (data & _field_mask(count)) << (32 - count)
        else:
            isr = (self.isr << count | data & _field_mask(count)) & _MASK32
        total = min(32, self.isr_count + count)
        if self.autopush and total >= self.push_thresh:
            if len(self.rx) >= self.rx_depth:
                return _STALL  # nothing shifted: the IN retries when there is room
            self.rx.append(isr)
            self.isr = 0
            self.isr_count = 0
            return _ADVANCE
        self.isr = isr
        self.isr_count = total
        return _ADVANCE

    def _in_source(self, source: int, count: int, now: int) -> int:
        if source == 0:
            return self._read_in_pins(count, now)
        if source == 1:
            return self.x
        if source == 2:
            return self.y
        if source == 6:
            return self.isr
        if source == 7:
            return self.osr
        return 0  # NULL and the reserved sources

    def _op_out(self, dest: int, count: int) -> int:
        if self.autopull and self.osr_count >= self.pull_thresh:
            # An empty OSR is refilled on this cycle but cannot be shifted out
            # on the same one: the OUT stalls at least once.
            if self.tx:
                self.osr = self._pop_tx()
                self.osr_count = 0
            return _STALL
        osr = self.osr
        if count == 32:
            data = osr
            self.osr = 0
        elif self.out_shift_right:
            data = osr & _field_mask(count)
            self.osr = osr >> count
        else:
            data = osr >> (32 - count)
            self.osr = osr << count & _MASK32
        self.osr_count = min(32, self.osr_count + count)
        status = self._out_write(dest, data, count)
        if self.autopull and self.osr_count >= self.pull_thresh and self.tx:
            self.osr = self._pop_tx()
            self.osr_count = 0
        return status

    def _out_write(self, dest: int, data: int, count: int) -> int:
        if dest == 0:
            self._write_pins(self._out_mask, self.out_base, data)
        elif dest == 1:
            self.x = data
        elif dest == 2:
            self.y = data
        elif dest == 4:
            self._write_dirs(self._out_mask, self.out_base, data)
        elif dest == 5:
            self.pc = data & 31
            return _JUMPED
        elif dest == 6:
            self.isr = data
            self.isr_count = count
        elif dest == 7:
            self.exec_latch = data & 0xFFFF
            return _EXEC_NEXT
        return _ADVANCE

    def _op_push(self, if_full: int, block: int) -> int:
        if if_full and self.isr_count < self.push_thresh:
            return _ADVANCE
        if len(self.rx) >= self.rx_depth:
            if block:
                return _STALL
        else:
            self.rx.append(self.isr)
        self.isr = 0
        self.isr_count = 0
        return _ADVANCE

    def _op_pull(self, if_empty: int, block: int) -> int:
        # With autopull on, PULL is a no-op on a non-empty OSR (a fence against DMA).
        if (if_empty or self.autopull) and self.osr_count < self.pull_thresh:
            return _ADVANCE
        if self.tx:
            self.osr = self._pop_tx()
        elif block:
            return _STALL
        else:
            self.osr = self.x
        self.osr_count = 0
        return _ADVANCE

    def _op_mov(self, dest: int, operation: int, source: int, now: int) -> int:
        if source == 0:
            value = self._read_in_pins(32, now)
        elif source == 1:
            value = self.x
        elif source == 2:
            value = self.y
        elif source == 5:
            level = len(self.rx) if self.status_sel else len(self.tx)
            value = _MASK32 if level < self.status_n else 0
        elif source == 6:
            value = self.isr
        elif source == 7:
            value = self.osr
        else:
            value = 0  # NULL and the reserved source
        if operation == 1:
            value ^= _MASK32
        elif operation == 2:
            value = _reverse32(value)
        if dest == 0:
            self._write_pins(self._out_mask, self.out_base, value)
        elif dest == 1:
            self.x = value
        elif dest == 2:
            self.y = value
        elif dest == 4:
            self.exec_latch = value & 0xFFFF
            return _EXEC_NEXT
        elif dest == 5:
            self.pc = value & 31
            return _JUMPED
        elif dest == 6:
            self.isr = value
            self.isr_count = 0
        elif dest == 7:
            self.osr = value
            self.osr_count = 0
        return _ADVANCE

    def _op_irq(self, clear: int, wait: int, flag: int) -> int:
        bit = 1 << flag
        if clear:
            self.irq_flags &= ~bit
            return _ADVANCE
        if not wait:
            self.irq_flags |= bit
            return _ADVANCE
        if not self._irq_waiting:
            self.irq_flags |= bit
            self._irq_waiting = True
        if self.irq_flags & bit:
            return _STALL
        self._irq_waiting = False
        return _ADVANCE

    def _op_set(self, dest: int, data: int) -> int:
        if dest == 0:
            self._write_pins(self._set_mask, self.set_base, data)
        elif dest == 1:
            self.x = data
        elif dest == 2:
            self.y = data
        elif dest == 4:
            self._write_dirs(self._set_mask, self.set_base, data)
        return _ADVANCE

    # ------------------------------------------------------------------ pins and FIFOs

    def _write_pins(self, mask: int, base: int, data: int) -> None:
        self.pin_values = self.pin_values & ~mask | _rotl(data & _MASK32, base) & mask

    def _write_dirs(self, mask: int, base: int, data: int) -> None:
        self.pin_dirs = self.pin_dirs & ~mask | _rotl(data & _MASK32, base) & mask

    def _read_gpio(self, pin: int, now: int) -> int:
        if pin >= GPIO_COUNT:
            return 0
        if self.pin_dirs >> pin & 1:
            return self.pin_values >> pin & 1
        return self.inputs.level(pin, now) & 1

    def _read_in_pins(self, count: int, now: int) -> int:
        """IN data bus: GPIOs rotated right by IN_BASE, ``count`` bits of it."""
        base = self.in_base
        value = 0
        for bit in range(count):
            if self._read_gpio((base + bit) & 31, now):
                value |= 1 << bit
        return value

    def _pop_tx(self) -> int:
        word = self.tx.popleft()
        if self._dma is not None:
            self._dma_fill()
        return word

    def _background_refill(self) -> None:
        """Autopull on a non-OUT cycle: refill an exhausted OSR as soon as data arrives."""
        if self.osr_count >= self.pull_thresh and self.tx:
            self.osr = self._pop_tx()
            self.osr_count = 0

    def _dma_fill(self) -> None:
        """Let the DMA feed top the TX FIFO up, following chains as channels finish."""
        feed = self._dma
        hops = 0
        while feed is not None and len(self.tx) < self.tx_depth:
            if feed.remaining > 0:
                self.tx.append(feed.next_word())
                hops = 0
                continue
            following = feed.chain
            hops += 1
            if following is None or hops > 64:
                break  # finished; or a chain loop whose channels all have count 0
            following.trigger()
            feed = following
            self._dma = feed
