"""A captured waveform: the level of every PicoStim output over a time window, in cycles.

Cycles are counts of the 125 MHz system clock (8 ns) from the start of the capture window.

    wf.edges("ch1_a")        # [(cycle, level), ...]
    wf.pulses("ch1_a")       # [(rise, fall), ...] high intervals that begin and end in the window
    wf.write_vcd("out.vcd")  # for PulseView / GTKWave, 1 ns timescale
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from picostim.pinmap import SIGNALS as OUTPUTS

SYS_HZ = 125_000_000
NS_PER_CYCLE = 8


class Edge(NamedTuple):
    cycle: int
    level: int


class Waveform:
    def __init__(
        self,
        t0: int,
        t1: int,
        initial: dict[int, int],
        edges: Iterable[Iterable[int]],
        currents: dict[str, list[tuple[int, float]]] | None = None,
    ) -> None:
        self.t0 = t0
        self.t1 = t1
        self.initial = initial
        self._by_pin: dict[int, list[Edge]] = {}
        for c, pin, level in edges:
            self._by_pin.setdefault(pin, []).append(Edge(c - t0, level))
        self.currents = currents or {}

    @property
    def cycles(self) -> int:
        return self.t1 - self.t0

    @property
    def seconds(self) -> float:
        return self.cycles / SYS_HZ

    @staticmethod
    def names() -> list[str]:
        return list(OUTPUTS)

    def _pin(self, name: str) -> int:
        try:
            return OUTPUTS[name]
        except KeyError:
            raise KeyError("no output named %r (have %s)" % (name, ", ".join(OUTPUTS))) from None

    def initial_level(self, name: str) -> int:
        return self.initial.get(self._pin(name), 0)

    def edges(self, name: str) -> list[Edge]:
        """Every level change of one output, in order."""
        return list(self._by_pin.get(self._pin(name), []))

    def level(self, name: str, cycle: int) -> int:
        level = self.initial_level(name)
        for e in self._by_pin.get(self._pin(name), []):
            if e.cycle > cycle:
                break
            level = e.level
        return level

    def pulses(self, name: str) -> list[tuple[int, int]]:
        """(rise, fall) of every high interval that starts and ends inside the window."""
        out = []
        rise = None
        for e in self._by_pin.get(self._pin(name), []):
            if e.level:
                rise = e.cycle
            elif rise is not None:
                out.append((rise, e.cycle))
                rise = None
        return out

    def high_cycles(self, name: str) -> int:
        """Total cycles the output was high within the window."""
        total = 0
        level = self.initial_level(name)
        last = 0
        for e in self._by_pin.get(self._pin(name), []):
            if level:
                total += e.cycle - last
            level, last = e.level, e.cycle
        if level:
            total += self.cycles - last
        return total

    # ---------------------------------------------------------------- files

    def write_vcd(self, path: str | Path) -> None:
        """Write a VCD file: one wire per output, plus each lead's current as a real signal."""
        from vcd import VCDWriter

        with (
            open(path, "w") as f,
            VCDWriter(f, timescale="1 ns", date="", comment="PicoStim capture") as w,
        ):
            wires = {
                name: w.register_var(
                    "picostim", name, "wire", size=1, init=self.initial_level(name)
                )
                for name in OUTPUTS
            }
            reals = {
                name: w.register_var("picostim", name, "real", init=0.0)
                for name in sorted(self.currents)
            }
            changes: list[tuple[int, int, Any, Any]] = []
            for order, name in enumerate(OUTPUTS):
                for e in self._by_pin.get(OUTPUTS[name], []):
                    changes.append((e.cycle, order, wires[name], e.level))
            for order, (name, points) in enumerate(sorted(self.currents.items())):
                for c, amps in points:
                    changes.append((c - self.t0, 100 + order, reals[name], float(amps)))
            changes.sort(key=lambda ch: (ch[0], ch[1]))
            for c, _order, var, value in changes:
                w.change(var, max(0, c) * NS_PER_CYCLE, value)
            w.flush(self.cycles * NS_PER_CYCLE)

    def write_png(self, path: str | Path, names: list[str] | None = None) -> None:
        """A plot with one row per output and a labelled time axis."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = names or list(OUTPUTS)
        scale, unit = _time_unit(self.seconds)
        fig, axes = plt.subplots(len(names), 1, sharex=True, figsize=(10, 0.6 * len(names) + 1))
        if len(names) == 1:
            axes = [axes]
        for ax, name in zip(axes, names, strict=True):
            xs = [0.0]
            ys = [self.initial_level(name)]
            for e in self.edges(name):
                t = e.cycle / SYS_HZ * scale
                xs += [t, t]
                ys += [ys[-1], e.level]
            xs.append(self.seconds * scale)
            ys.append(ys[-1])
            ax.plot(xs, ys, drawstyle="default", linewidth=1)
            ax.set_ylim(-0.2, 1.2)
            ax.set_yticks([])
            ax.set_ylabel(name, rotation=0, ha="right", va="center")
        axes[-1].set_xlabel("time (%s)" % unit)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


def _time_unit(seconds: float) -> tuple[float, str]:
    if seconds >= 1:
        return 1.0, "s"
    if seconds >= 1e-3:
        return 1e3, "ms"
    return 1e6, "us"
