"""The MCP4728 quad DAC of the virtual board, on its I2C bus.

It decodes the multi-write (0b01000) and fast-write (0b00) commands the firmware sends and
keeps each channel's code over time, so captures show each lead's current as set, with the
reference build's scale: internal 2.048 V reference, gain 1, 333.3 ohm current source, i.e.
1.5 uA per code.
"""

from __future__ import annotations

AMPS_PER_CODE = 1.5e-6


class Mcp4728:
    def __init__(self) -> None:
        self.codes = [0, 0, 0, 0]
        self.history: list[list[tuple[int, int]]] = [[(0, 0)] for _ in range(4)]
        self.writes = 0

    def power_on(self, cycle: int) -> None:
        for ch in range(4):
            self._set(ch, 0, cycle)

    def _set(self, ch: int, code: int, cycle: int) -> None:
        self.codes[ch] = code
        hist = self.history[ch]
        if hist[-1][1] != code:
            hist.append((cycle, code))

    def write(self, cycle: int, data: bytes) -> None:
        self.writes += 1
        i = 0
        while i < len(data):
            cmd = data[i]
            if cmd >> 3 == 0b01000:  # multi-write: channel in bits 2:1, then 2 data bytes
                if i + 3 > len(data):
                    return
                code = (data[i + 1] & 0x0F) << 8 | data[i + 2]
                self._set((cmd >> 1) & 3, code, cycle)
                i += 3
            elif cmd >> 6 == 0:  # fast write: 2 bytes for each of the four channels
                if i + 8 > len(data):
                    return
                for ch in range(4):
                    self._set(ch, (data[i + 2 * ch] & 0x0F) << 8 | data[i + 2 * ch + 1], cycle)
                i += 8
            else:
                return

    def read(self, cycle: int, n: int) -> bytes:
        out = bytearray()
        for ch in range(4):
            code = self.codes[ch]
            out += bytes((0xC0 | ch << 4, 0x80 | code >> 8, code & 0xFF))
        return bytes(out[:n])

    def window(self, t0: int, t1: int) -> dict[str, list[tuple[int, float]]]:
        """Each lead's current as (cycle, amperes) steps: the level at t0, then changes."""
        out = {}
        for ch in range(4):
            pts: list[tuple[int, float]] = []
            level = 0
            for c, code in self.history[ch]:
                if c <= t0:
                    level = code
                elif c < t1:
                    pts.append((c, code * AMPS_PER_CODE))
            out["ch%d_current" % (ch + 1)] = [(t0, level * AMPS_PER_CODE)] + pts
        return out

    def prune(self, before: int) -> None:
        for hist in self.history:
            while len(hist) > 1 and hist[1][0] <= before:
                del hist[0]
