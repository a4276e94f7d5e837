"""PicoStim's hardware documents, generated from the one pin map (`board/stim/pins.py`).

    python -m picostim.hwdocs            # (re)write every file under hardware/
    python -m picostim.hwdocs --check    # regenerate in memory; fail if a committed file
                                         # differs or the electrical rule check finds anything

Nothing here names a GPIO number: every one comes from the pin map. What this module does
hold are facts of the parts themselves: the Raspberry Pi Pico's header (which GPIO is on which
of its 40 pins) and the pins of the other chips of the reference build.

The reference build is described once, as a netlist (`reference_build`): parts with typed pins
(input, output, open drain, power, passive) joined by named nets. The schematic drawing, the
bill of materials, the pinout's pull-resistor column and the electrical rule check (`erc`) all
read that one netlist.

PicoStim is a teaching and test instrument: never connect it to a person or an animal.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

import schemdraw
from schemdraw import elements as elm
from schemdraw.backends import svg as svg_backend
from schemdraw.segments import Segment, SegmentCircle, SegmentPoly, SegmentText

from picostim.pinmap import PINS, PINS_FILE

REPO = Path(__file__).resolve().parents[2]
HW_DIR = REPO / "hardware"
REGEN = ".venv/bin/python -m picostim.hwdocs"
SAFETY = (
    "PicoStim is a teaching and test instrument. Never connect it, or anything wired to it, "
    "to a person or an animal: its outputs are for oscilloscopes, logic analysers and test "
    "loads only."
)

# --------------------------------------------------------------------------- the Pico board

#: The Raspberry Pi Pico's 40 header pins, pin 1 first (a fact of the board, from its
#: datasheet). Seen from above with the USB connector at the top, pins 1-20 run down the left
#: edge and pins 21-40 run up the right edge (pin 40, VBUS, is top right).
PICO_HEADER: tuple[str, ...] = (
    "GP0", "GP1", "GND", "GP2", "GP3", "GP4", "GP5", "GND", "GP6", "GP7",
    "GP8", "GP9", "GND", "GP10", "GP11", "GP12", "GP13", "GND", "GP14", "GP15",
    "GP16", "GP17", "GND", "GP18", "GP19", "GP20", "GP21", "GND", "GP22", "RUN",
    "GP26", "GP27", "AGND", "GP28", "ADC_VREF", "3V3(OUT)", "3V3_EN", "GND", "VSYS", "VBUS",
)  # fmt: skip
#: GPIOs wired on the Pico board itself rather than to a header pin.
PICO_ONBOARD: dict[int, str] = {
    23: "SMPS power-save",
    24: "VBUS sense",
    25: "on-board LED",
    29: "VSYS/3 (ADC3)",
}
PIN_3V3 = PICO_HEADER.index("3V3(OUT)") + 1
PIN_VBUS = PICO_HEADER.index("VBUS") + 1
GND_PINS: tuple[int, ...] = tuple(i + 1 for i, n in enumerate(PICO_HEADER) if n == "GND")


def pico_pin(gpio: int) -> int | None:
    """The Pico header pin (1-40) of a GPIO, or None for a GPIO wired on the board only."""
    name = f"GP{gpio}"
    return PICO_HEADER.index(name) + 1 if name in PICO_HEADER else None


def pin_text(gpio: int) -> str:
    """'pin 4', or where an on-board GPIO goes."""
    pin = pico_pin(gpio)
    return f"pin {pin}" if pin else f"on board ({PICO_ONBOARD.get(gpio, 'no header pin')})"


def nearest_gnd(pin: int) -> int:
    """The GND header pin on the same edge of the Pico nearest to `pin`."""
    same_edge = [g for g in GND_PINS if (g <= 20) == (pin <= 20)]
    return min(same_edge, key=lambda g: (abs(g - pin), g))


def _pico_keys() -> list[str]:
    """Netlist pin names of the Pico's header: its own names, GND_<pin> for the repeated GND."""
    counts = Counter(PICO_HEADER)
    return [n if counts[n] == 1 else f"{n}_{i + 1}" for i, n in enumerate(PICO_HEADER)]


PICO_KEYS: tuple[str, ...] = tuple(_pico_keys())


def i2c_pins_ok(bus: int, sda: int, scl: int) -> bool:
    """True if `sda`/`scl` can carry I2C<bus> on the RP2040 (its GPIO function table)."""
    return (
        sda % 2 == 0
        and scl % 2 == 1
        and (sda // 2) % 2 == bus
        and (scl // 2) % 2 == bus
        and pico_pin(sda) is not None
        and pico_pin(scl) is not None
    )


# --------------------------------------------------------------------------- signals


@dataclass(frozen=True)
class Signal:
    """One use of a GPIO by PicoStim, as the pin map gives it."""

    name: str  # net and capture name: ch1_a, sync, arm1, ...
    key: str  # where the pin map holds it: LEAD_A[0], SYNC, ...
    gpio: int
    direction: str  # "out", "in", "in/out"
    kind: str  # "gate" (an output gate: needs its pull-down), "input", "i2c", "led"
    meaning: str
    internal_pull: str | None = None  # the firmware's internal pull: "up", "down"
    pull: tuple[str, str] | None = None  # the board's own: ("down" | "up", catalogue key)
    lead: int | None = None  # 1-based

    @property
    def pin(self) -> int | None:
        return pico_pin(self.gpio)


#: Pin-map names that are not GPIOs of their own.
_NOT_GPIO = {"I2C_ID", "DAC_ADDR"}
_DESCRIBED = {
    "LEAD_A", "LEAD_B", "SYNC", "ARM", "TRIGGER", "INTERLOCK", "BUTTON", "I2C_SDA", "I2C_SCL",
    "LED",
} | _NOT_GPIO  # fmt: skip


def name_tables(pins: Mapping[str, Any] = PINS) -> dict[str, tuple[tuple[str, int], ...]]:
    """The pin map's naming tables (OUTPUT_NAMES, ...): tuples of (name, GPIO) pairs."""
    return {
        key: value
        for key, value in pins.items()
        if isinstance(value, tuple)
        and value
        and all(isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], str) for e in value)
    }


def lead_count(pins: Mapping[str, Any] = PINS) -> int:
    return len(pins["LEAD_A"])


def signals(pins: Mapping[str, Any] = PINS) -> list[Signal]:
    """Every GPIO the pin map uses, with what it means; fails on a name it does not describe."""
    tables = name_tables(pins)
    unknown = sorted(set(pins) - _DESCRIBED - set(tables))
    if unknown:
        raise ValueError(f"the pin map has names hwdocs does not describe: {unknown}")
    names = {gpio: name for table in tables.values() for name, gpio in table}
    bus, addr = pins["I2C_ID"], pins["DAC_ADDR"]
    out: list[Signal] = []
    for i, (a, b) in enumerate(zip(pins["LEAD_A"], pins["LEAD_B"], strict=True)):
        n = i + 1
        for key, gpio, phase, letter in (("LEAD_A", a, 1, "a"), ("LEAD_B", b, 2, "b")):
            out.append(
                Signal(
                    names.get(gpio, f"ch{n}_{letter}"),
                    f"{key}[{i}]",
                    gpio,
                    "out",
                    "gate",
                    f"high = phase {phase} ({letter.upper()}) of lead {n}'s pulse is on; "
                    "low = rest",
                    pull=("down", "R100K"),
                    lead=n,
                )
            )
    out.append(
        Signal(
            names.get(pins["SYNC"], "sync"),
            "SYNC",
            pins["SYNC"],
            "out",
            "gate",
            f"scope trigger: a {_us(SYNC_PULSE_S)} high pulse as the sync source lead's phase A starts (first "
            "pulse of a train, or every pulse with OUTP:SYNC:MODE PULS); low otherwise",
            pull=("down", "R100K"),
        )
    )
    for i, gpio in enumerate(pins["ARM"]):
        out.append(
            Signal(
                names.get(gpio, f"arm{i + 1}"),
                f"ARM[{i}]",
                gpio,
                "out",
                "gate",
                f"high = lead {i + 1} armed: may start pulses, output stage enabled, "
                "'enabled' LED on; low = lead off",
                pull=("down", "R100K"),
                lead=i + 1,
            )
        )
    out += [
        Signal(
            names.get(pins["TRIGGER"], "trigger"),
            "TRIGGER",
            pins["TRIGGER"],
            "in",
            "input",
            "rising edge = external trigger (3.3 V logic, not 5 V tolerant)",
            internal_pull="down",
            pull=("down", "R10K"),
        ),
        Signal(
            names.get(pins["INTERLOCK"], "interlock"),
            "INTERLOCK",
            pins["INTERLOCK"],
            "in",
            "input",
            "high = loop closed, outputs allowed; low = loop open or a wire broken: "
            "every output rests (fail-safe)",
            internal_pull="down",
            pull=("down", "R10K"),
        ),
        Signal(
            names.get(pins["BUTTON"], "button"),
            "BUTTON",
            pins["BUTTON"],
            "in",
            "input",
            "low = on/off button pressed (to GND); high = released",
            internal_pull="up",
        ),
        Signal(
            names.get(pins["I2C_SDA"], "i2c_sda"),
            "I2C_SDA",
            pins["I2C_SDA"],
            "in/out",
            "i2c",
            f"I2C{bus} data to the MCP4728 DAC at 0x{addr:02X} (open drain)",
            pull=("up", "R4K7"),
        ),
        Signal(
            names.get(pins["I2C_SCL"], "i2c_scl"),
            "I2C_SCL",
            pins["I2C_SCL"],
            "out",
            "i2c",
            f"I2C{bus} clock to the MCP4728 DAC (open drain)",
            pull=("up", "R4K7"),
        ),
        Signal(
            names.get(pins["LED"], "led"), "LED", pins["LED"], "out", "led", "high = status LED on"
        ),
    ]
    return out


def check_pinmap(pins: Mapping[str, Any] = PINS) -> list[str]:
    """What is wrong with the pin map for the reference build (empty: nothing)."""
    problems: list[str] = []
    try:
        sigs = signals(pins)
    except (ValueError, KeyError) as e:
        return [f"pin map: {e}"]
    seen: dict[int, str] = {}
    for s in sigs:
        if s.gpio in seen:
            problems.append(f"GP{s.gpio} is used twice: {seen[s.gpio]} and {s.key}")
        seen[s.gpio] = s.key
        if not 0 <= s.gpio <= 29:
            problems.append(f"{s.key} = {s.gpio} is not an RP2040 GPIO")
        elif s.kind != "led" and s.pin is None:
            problems.append(f"{s.key} = GP{s.gpio} has no Pico header pin")
    a, b = list(pins["LEAD_A"]), list(pins["LEAD_B"])
    for i, (pa, pb) in enumerate(zip(a, b, strict=False)):
        if pb != pa + 1:
            problems.append(f"lead {i + 1}: LEAD_B must be LEAD_A + 1 (PIO pin group)")
    if not len(a) == len(b) == len(pins["ARM"]):
        problems.append("LEAD_A, LEAD_B and ARM must have one entry per lead")
    if not 1 <= len(a) <= 4:
        problems.append("the MCP4728 has 4 channels: 1 to 4 leads")
    if not i2c_pins_ok(pins["I2C_ID"], pins["I2C_SDA"], pins["I2C_SCL"]):
        problems.append(f"I2C_SDA/I2C_SCL are not SDA/SCL pins of I2C{pins['I2C_ID']}")
    if not 0x60 <= pins["DAC_ADDR"] <= 0x67:
        problems.append("DAC_ADDR is not an MCP4728 address (0x60-0x67)")
    used = {s.gpio for s in sigs}
    pairs = [pair for table in name_tables(pins).values() for pair in table]
    if len({n for n, _ in pairs}) != len(pairs) or len({g for _, g in pairs}) != len(pairs):
        problems.append("the naming tables repeat a name or a GPIO")
    if not {g for _, g in pairs} <= used:
        problems.append("a naming table names a GPIO the pin map does not use")
    captured = {s.gpio for s in sigs if s.key.startswith(("LEAD_", "SYNC"))}
    if not captured <= set(dict(pins["OUTPUT_NAMES"]).values()):
        problems.append("OUTPUT_NAMES must name every LEAD_A, LEAD_B and SYNC pin")
    return problems


# --------------------------------------------------------------------------- netlist model


class PinType(Enum):
    IN = "input"
    OUT = "output"
    OD = "open drain"  # drives low only (I2C); may read too
    PWR_IN = "power input"
    PWR_OUT = "power output"
    PASSIVE = "passive"


@dataclass(frozen=True)
class PinDef:
    key: str  # unique within the part
    type: PinType
    number: str = ""
    side: str = "L"  # where the schematic draws it: L or R

    @property
    def name(self) -> str:
        return self.key.rsplit("_", 1)[0] if re.search(r"_\d+$", self.key) else self.key


@dataclass(frozen=True)
class Spec:
    """A catalogue entry: one real part, one line of the bill of materials."""

    prefix: str
    value: str
    description: str
    manufacturer: str
    mpn: str
    pins: tuple[PinDef, ...]
    note: str = ""
    symbol: str = "ic"  # how the schematic draws it: ic, R, C, LED, SW, TP, NFET
    ohms: float | None = None
    barrier: bool = False  # an isolator: its left and right pins are on two sides


def _ic(*pins: tuple[str, PinType, str, str]) -> tuple[PinDef, ...]:
    """Pins as (name, type, number, side); a repeated name gets its number appended."""
    counts = Counter(n for n, *_ in pins)
    return tuple(
        PinDef(n if counts[n] == 1 else f"{n}_{num}", t, num, side) for n, t, num, side in pins
    )


P = PinType
_TWO = (PinDef("1", P.PASSIVE, "1", "L"), PinDef("2", P.PASSIVE, "2", "L"))


def _resistor(
    value: str, text: str, ohms: float, mpn: str, tol: str = "1 %", note: str = ""
) -> Spec:
    return Spec(
        "R",
        value,
        f"Resistor {text} {tol} 0603 " + ("thick film" if tol == "1 %" else "thin film"),
        "Yageo",
        mpn,
        _TWO,
        note,
        "R",
        ohms,
    )


def _cap(value: str, desc: str, mpn: str) -> Spec:
    return Spec("C", value, desc, "Murata", mpn, _TWO, "", "C")


def _pico_spec() -> Spec:
    pins = []
    order = list(range(20)) + list(range(39, 19, -1))  # right edge drawn from pin 40 down
    for i in order:
        key, name = PICO_KEYS[i], PICO_HEADER[i]
        if name in ("GND", "AGND", "3V3(OUT)", "VBUS", "VSYS"):
            t = P.PWR_OUT
        elif name.startswith("GP"):
            t = P.IN  # set from the pin map's use in reference_build
        else:
            t = P.IN  # RUN, 3V3_EN, ADC_VREF
        pins.append(PinDef(key, t, str(i + 1), "L" if i < 20 else "R"))
    return Spec(
        "U",
        "Pico",
        "Raspberry Pi Pico microcontroller board (RP2040, 2 MB flash), with headers fitted",
        "Raspberry Pi",
        "SC0915",
        tuple(pins),
        "Powered from USB; its 3V3(OUT) pin powers side 1 of the isolators",
        barrier=False,
    )


CATALOGUE: dict[str, Spec] = {
    "PICO": _pico_spec(),
    "MCP4728": Spec(
        "U",
        "MCP4728",
        "Quad 12-bit I2C DAC with EEPROM, internal 2.048 V reference, MSOP-10",
        "Microchip",
        "MCP4728-E/UN",
        _ic(
            ("VDD", P.PWR_IN, "1", "L"),
            ("SCL", P.IN, "2", "L"),
            ("SDA", P.OD, "3", "L"),
            ("LDAC", P.IN, "4", "L"),
            ("RDY/BSY", P.OD, "5", "L"),
            ("VOUTA", P.OUT, "6", "R"),
            ("VOUTB", P.OUT, "7", "R"),
            ("VOUTC", P.OUT, "8", "R"),
            ("VOUTD", P.OUT, "9", "R"),
            ("VSS", P.PWR_IN, "10", "R"),
        ),
        "One channel per lead; firmware selects internal 2.048 V reference, gain 1 "
        "(0.5 mV per code)",
    ),
    "ISO7741F": Spec(
        "U",
        "ISO7741F",
        "Quad digital isolator 3 forward / 1 reverse, default-low outputs, 5 kVrms, SOIC-16 wide",
        "Texas Instruments",
        "ISO7741FDWR",
        _ic(
            ("VCC1", P.PWR_IN, "1", "L"),
            ("GND1", P.PWR_IN, "2", "L"),
            ("INA", P.IN, "3", "L"),
            ("INB", P.IN, "4", "L"),
            ("INC", P.IN, "5", "L"),
            ("OUTD", P.OUT, "6", "L"),
            ("EN1", P.IN, "7", "L"),
            ("GND1", P.PWR_IN, "8", "L"),
            ("VCC2", P.PWR_IN, "16", "R"),
            ("GND2", P.PWR_IN, "15", "R"),
            ("OUTA", P.OUT, "14", "R"),
            ("OUTB", P.OUT, "13", "R"),
            ("OUTC", P.OUT, "12", "R"),
            ("IND", P.IN, "11", "R"),
            ("EN2", P.IN, "10", "R"),
            ("GND2", P.PWR_IN, "9", "R"),
        ),
        "F = outputs low when side 1 is unpowered (fail-safe); do not fit the default-high "
        "ISO7741DWR. One per lead: A, B and ARM gates",
        barrier=True,
    ),
    "ISO1541": Spec(
        "U",
        "ISO1541",
        "Bidirectional I2C isolator (SDA bidirectional, SCL one-way), 2.5 kVrms, SOIC-8",
        "Texas Instruments",
        "ISO1541DR",
        _ic(
            ("VCC1", P.PWR_IN, "1", "L"),
            ("SDA1", P.OD, "2", "L"),
            ("SCL1", P.IN, "3", "L"),
            ("GND1", P.PWR_IN, "4", "L"),
            ("VCC2", P.PWR_IN, "8", "R"),
            ("SDA2", P.OD, "7", "R"),
            ("SCL2", P.OD, "6", "R"),
            ("GND2", P.PWR_IN, "5", "R"),
        ),
        "I2C needs an open-drain bidirectional isolator: a one-way isolator such as the "
        "ISO7741 cannot carry SDA",
        barrier=True,
    ),
    "OPA4197": Spec(
        "U",
        "OPA4197",
        "Quad 36 V precision rail-to-rail I/O op amp, TSSOP-14",
        "Texas Instruments",
        "OPA4197IPWR",
        _ic(
            ("+INA", P.IN, "3", "L"),
            ("-INA", P.IN, "2", "L"),
            ("+INB", P.IN, "5", "L"),
            ("-INB", P.IN, "6", "L"),
            ("+INC", P.IN, "10", "L"),
            ("-INC", P.IN, "9", "L"),
            ("+IND", P.IN, "12", "L"),
            ("-IND", P.IN, "13", "L"),
            ("V+", P.PWR_IN, "4", "R"),
            ("OUTA", P.OUT, "1", "R"),
            ("OUTB", P.OUT, "7", "R"),
            ("OUTC", P.OUT, "8", "R"),
            ("OUTD", P.OUT, "14", "R"),
            ("V-", P.PWR_IN, "11", "R"),
        ),
        "Unit n = lead n's current sink: holds the sense resistor at the DAC voltage",
    ),
    "DG412": Spec(
        "U",
        "DG412",
        "Quad SPST analog switch, normally open, +12 V single supply, SOIC-16",
        "Vishay Siliconix",
        "DG412DY-T1-E3",
        _ic(
            ("IN1", P.IN, "1", "L"),
            ("IN4", P.IN, "8", "L"),
            ("IN2", P.IN, "16", "L"),
            ("IN3", P.IN, "9", "L"),
            ("VL", P.PWR_IN, "12", "L"),
            ("V+", P.PWR_IN, "13", "L"),
            ("V-", P.PWR_IN, "4", "L"),
            ("GND", P.PWR_IN, "5", "L"),
            ("D1", P.PASSIVE, "2", "R"),
            ("S1", P.PASSIVE, "3", "R"),
            ("D2", P.PASSIVE, "15", "R"),
            ("S2", P.PASSIVE, "14", "R"),
            ("D3", P.PASSIVE, "10", "R"),
            ("S3", P.PASSIVE, "11", "R"),
            ("D4", P.PASSIVE, "7", "R"),
            ("S4", P.PASSIVE, "6", "R"),
        ),
        "H-bridge of one lead: S1+S4 close in phase 1, S2+S3 in phase 2",
    ),
    "AND2": Spec(
        "U",
        "74LVC2G08",
        "Dual 2-input AND gate, VSSOP-8",
        "Texas Instruments",
        "SN74LVC2G08DCUR",
        _ic(
            ("1A", P.IN, "1", "L"),
            ("1B", P.IN, "2", "L"),
            ("2A", P.IN, "5", "L"),
            ("2B", P.IN, "6", "L"),
            ("VCC", P.PWR_IN, "8", "R"),
            ("1Y", P.OUT, "7", "R"),
            ("2Y", P.OUT, "3", "R"),
            ("GND", P.PWR_IN, "4", "R"),
        ),
        "Gates each phase with the lead's ARM line: a disarmed lead cannot close its switches",
    ),
    "DCDC": Spec(
        "PS",
        "NME0512SC",
        "Isolated DC-DC converter 5 V to 12 V 1 W, 1 kVDC, SIP-4",
        "Murata Power Solutions",
        "NME0512SC",
        _ic(
            ("+VIN", P.PWR_IN, "2", "L"),
            ("-VIN", P.PWR_IN, "1", "L"),
            ("+VOUT", P.PWR_OUT, "4", "R"),
            ("-VOUT", P.PWR_OUT, "3", "R"),
        ),
        "Powers the whole output stage from USB VBUS across the isolation barrier",
        barrier=True,
    ),
    "LDO5": Spec(
        "U",
        "MCP1703A-5.0",
        "LDO regulator 5.0 V 250 mA, 16 V input, SOT-23A",
        "Microchip",
        "MCP1703A-5002E/CB",
        _ic(
            ("VIN", P.PWR_IN, "3", "L"),
            ("GND", P.PWR_IN, "1", "L"),
            ("VOUT", P.PWR_OUT, "2", "R"),
        ),
        "+5V_ISO for the DAC, isolator side 2, gates and switch logic",
    ),
    "NFET": Spec(
        "Q",
        "2N7002",
        "N-channel MOSFET 60 V 115 mA, SOT-23",
        "onsemi",
        "2N7002LT1G",
        _ic(("G", P.IN, "1", "L"), ("S", P.PASSIVE, "2", "L"), ("D", P.PASSIVE, "3", "L")),
        "Current-sink pass transistor, one per lead",
        symbol="NFET",
    ),
    "R100K": _resistor(
        "100k",
        "100 kohm",
        100e3,
        "RC0603FR-07100KL",
        note="Pull-down on each output gate: every gate rests low at power-up before firmware runs",
    ),
    "R10K": _resistor(
        "10k", "10 kohm", 10e3, "RC0603FR-0710KL", note="Input pull-downs (fail-safe low)"
    ),
    "R4K7": _resistor(
        "4k7", "4.7 kohm", 4.7e3, "RC0603FR-074K7L", note="I2C pull-ups, both sides"
    ),
    "R1K": _resistor("1k", "1 kohm", 1e3, "RC0603FR-071KL"),
    "R100": _resistor("100R", "100 ohm", 100.0, "RC0603FR-07100RL"),
    "R1K_P1": _resistor(
        "1k 0.1%",
        "1 kohm",
        1e3,
        "RT0603BRD071KL",
        tol="0.1 % 25 ppm/K",
        note="Three in parallel per lead = 333.3 ohm sense: 2.048 V full scale -> 6.144 mA, "
        "1.5 uA per DAC code",
    ),
    "C100N": _cap("100n", "Capacitor 100 nF 50 V X7R 0603", "GRM188R71H104KA93D"),
    "C1U": _cap("1u", "Capacitor 1 uF 25 V X5R 0603", "GRM188R61E105KA12D"),
    "C10U": _cap("10u", "Capacitor 10 uF 25 V X5R 0805", "GRM21BR61E106KA73L"),
    "LED": Spec(
        "D",
        "green",
        "LED green 0603",
        "Kingbright",
        "APT1608SGC",
        (PinDef("A", P.PASSIVE, "2"), PinDef("K", P.PASSIVE, "1")),
        "Lead 'enabled' LEDs, lit by the ARM lines",
        "LED",
    ),
    "BUTTON": Spec(
        "SW",
        "on/off",
        "Tactile switch 6 x 6 mm, through-hole",
        "Omron",
        "B3F-1000",
        _TWO,
        "On/off button to GND (the Pico's internal pull-up)",
        "SW",
    ),
    "HDR2": Spec(
        "J",
        "1x2 2.54",
        "Pin header 1 x 2, 2.54 mm",
        "Wurth Elektronik",
        "61300211121",
        _TWO,
        "Interlock loop and trigger input; close the interlock with the loop wire or a 2.54 mm "
        "shunt (e.g. Sullins SPC02SYAN)",
    ),
    "TERM2": Spec(
        "J",
        "lead out",
        "Terminal block 2 positions, 5.08 mm",
        "Phoenix Contact",
        "1935161",
        _TWO,
        "Lead outputs E+ / E- (isolated): for a test load, e.g. 1 kohm, only",
    ),
    "TP_YEL": Spec(
        "TP",
        "sync",
        "Test point, yellow, through-hole",
        "Keystone Electronics",
        "5004",
        (PinDef("1", P.PASSIVE, "1"),),
        "Scope trigger point",
        "TP",
    ),
    "TP_BLK": Spec(
        "TP",
        "ground",
        "Test point, black, through-hole",
        "Keystone Electronics",
        "5001",
        (PinDef("1", P.PASSIVE, "1"),),
        "Scope ground clips: GND and GND_ISO (never both at once)",
        "TP",
    ),
}

GROUND_NETS = ("GND", "GND_ISO")
POWER_NETS = ("+3V3", "VBUS", "+12V_ISO", "+5V_ISO")


@dataclass
class Part:
    ref: str
    spec_key: str
    pins: dict[str, PinDef]
    group: str  # which block of the schematic draws it
    role: str = ""

    @property
    def spec(self) -> Spec:
        return CATALOGUE[self.spec_key]

    def __getitem__(self, key: str) -> tuple[str, str]:
        if key not in self.pins:
            raise KeyError(f"{self.ref} ({self.spec.mpn}) has no pin {key!r}")
        return (self.ref, key)


@dataclass
class Netlist:
    parts: dict[str, Part] = field(default_factory=dict)
    nets: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    no_connect: set[tuple[str, str]] = field(default_factory=set)
    internal_pull: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, spec_key: str, group: str, role: str = "", ref: str | None = None) -> Part:
        spec = CATALOGUE[spec_key]
        if ref is None:
            n = 1 + sum(1 for r in self.parts if re.fullmatch(spec.prefix + r"\d+", r))
            ref = f"{spec.prefix}{n}"
        if ref in self.parts:
            raise ValueError(f"duplicate reference {ref}")
        part = Part(ref, spec_key, {p.key: p for p in spec.pins}, group, role)
        self.parts[ref] = part
        return part

    def connect(self, net: str, *nodes: tuple[str, str]) -> None:
        for ref, key in nodes:
            self.parts[ref][key]  # noqa: B018 -- validates the pin
        self.nets.setdefault(net, []).extend(nodes)

    def two(self, spec_key: str, net1: str, net2: str, group: str, role: str = "") -> Part:
        """A two-pin part between two nets (pin 1 / anode on net1)."""
        part = self.add(spec_key, group, role)
        k1, k2 = (p.key for p in part.spec.pins)
        self.connect(net1, part[k1])
        self.connect(net2, part[k2])
        return part

    def nc(self, *nodes: tuple[str, str]) -> None:
        self.no_connect.update(nodes)

    def net_of(self, ref: str, key: str) -> str | None:
        for net, nodes in self.nets.items():
            if (ref, key) in nodes:
                return net
        return None

    def pin_nets(self) -> dict[tuple[str, str], list[str]]:
        out: dict[tuple[str, str], list[str]] = {}
        for net, nodes in self.nets.items():
            for node in nodes:
                out.setdefault(node, []).append(net)
        return out

    def pin(self, node: tuple[str, str]) -> PinDef:
        return self.parts[node[0]].pins[node[1]]


# --------------------------------------------------------------------------- reference build


def reference_build(pins: Mapping[str, Any] = PINS) -> Netlist:
    """The reference build of PicoStim as a netlist, wired from the pin map."""
    sigs = signals(pins)
    by_key = {s.key: s for s in sigs}
    nl = Netlist()
    pico = nl.add("PICO", "pico", "microcontroller", ref="U1")
    header = dict(zip(PICO_HEADER, PICO_KEYS, strict=False))
    used: set[str] = set()
    for s in sigs:
        if s.pin is None:
            continue  # the on-board LED
        key = PICO_KEYS[s.pin - 1]
        t = {"gate": P.OUT, "input": P.IN, "i2c": P.OD}[s.kind]
        pico.pins[key] = replace(pico.pins[key], type=t)
        nl.connect(s.name, pico[key])
        if s.internal_pull:
            nl.internal_pull[pico[key]] = s.internal_pull
        used.add(key)
    for key, name in zip(PICO_KEYS, PICO_HEADER, strict=True):
        if name in ("GND", "AGND"):
            nl.connect("GND", pico[key])
            used.add(key)
    nl.connect("+3V3", pico[header["3V3(OUT)"]])
    nl.connect("VBUS", pico[header["VBUS"]])
    used |= {header["3V3(OUT)"], header["VBUS"]}
    nl.nc(*(pico[k] for k in PICO_KEYS if k not in used))

    # Pico side: pull-downs on every output gate, LEDs, inputs, I2C pull-ups, sync.
    gates = [s for s in sigs if s.kind == "gate"]
    for s in gates:
        nl.two("R100K", s.name, "GND", "pico", f"{s.name} pull-down")
    for s in gates:
        if s.key.startswith("ARM"):
            nl.two("R1K", s.name, f"{s.name}_led", "pico", "LED resistor")
            nl.two("LED", f"{s.name}_led", "GND", "pico", f"lead {s.lead} enabled")
    button = by_key["BUTTON"]
    nl.two("BUTTON", button.name, "GND", "pico", "on/off")
    itl = by_key["INTERLOCK"]
    nl.two("R1K", "+3V3", f"{itl.name}_loop", "pico", "loop current limit")
    nl.two("HDR2", f"{itl.name}_loop", itl.name, "pico", "interlock loop")
    nl.two("R10K", itl.name, "GND", "pico", "interlock pull-down")
    trg = by_key["TRIGGER"]
    nl.two("HDR2", f"{trg.name}_in", "GND", "pico", "trigger input")
    nl.two("R1K", f"{trg.name}_in", trg.name, "pico", "trigger series")
    nl.two("R10K", trg.name, "GND", "pico", "trigger pull-down")
    sync = by_key["SYNC"]
    nl.two("R100", sync.name, f"{sync.name}_out", "pico", "sync series")
    tp = nl.add("TP_YEL", "pico", "sync")
    nl.connect(f"{sync.name}_out", tp["1"])
    tp = nl.add("TP_BLK", "pico", "GND")
    nl.connect("GND", tp["1"])
    sda, scl = by_key["I2C_SDA"], by_key["I2C_SCL"]
    nl.two("R4K7", sda.name, "+3V3", "pico", "I2C pull-up")
    nl.two("R4K7", scl.name, "+3V3", "pico", "I2C pull-up")

    # Isolation barrier and the isolated supplies.
    ps = nl.add("DCDC", "iso", "isolated supply")
    nl.connect("VBUS", ps["+VIN"])
    nl.connect("GND", ps["-VIN"])
    nl.connect("+12V_ISO", ps["+VOUT"])
    nl.connect("GND_ISO", ps["-VOUT"])
    nl.two("C10U", "VBUS", "GND", "iso", "DC-DC input")
    nl.two("C10U", "+12V_ISO", "GND_ISO", "iso", "DC-DC output")
    ldo = nl.add("LDO5", "iso", "+5V_ISO")
    nl.connect("+12V_ISO", ldo["VIN"])
    nl.connect("GND_ISO", ldo["GND"])
    nl.connect("+5V_ISO", ldo["VOUT"])
    nl.two("C1U", "+12V_ISO", "GND_ISO", "iso", "LDO input")
    nl.two("C1U", "+5V_ISO", "GND_ISO", "iso", "LDO output")
    iso = nl.add("ISO1541", "iso", "I2C isolator")
    nl.connect("+3V3", iso["VCC1"])
    nl.connect("GND", iso["GND1"])
    nl.connect(sda.name, iso["SDA1"])
    nl.connect(scl.name, iso["SCL1"])
    nl.connect("+5V_ISO", iso["VCC2"])
    nl.connect("GND_ISO", iso["GND2"])
    nl.connect("SDA_ISO", iso["SDA2"])
    nl.connect("SCL_ISO", iso["SCL2"])
    nl.two("C100N", "+3V3", "GND", "iso", "decoupling")
    nl.two("C100N", "+5V_ISO", "GND_ISO", "iso", "decoupling")
    nl.two("R4K7", "SDA_ISO", "+5V_ISO", "iso", "I2C pull-up")
    nl.two("R4K7", "SCL_ISO", "+5V_ISO", "iso", "I2C pull-up")
    dac = nl.add("MCP4728", "iso", f"DAC at 0x{pins['DAC_ADDR']:02X}")
    nl.connect("+5V_ISO", dac["VDD"])
    nl.connect("GND_ISO", dac["VSS"])
    nl.connect("SDA_ISO", dac["SDA"])
    nl.connect("SCL_ISO", dac["SCL"])
    nl.connect("GND_ISO", dac["LDAC"])  # outputs follow each write at once
    nl.nc(dac["RDY/BSY"])
    nl.two("C100N", "+5V_ISO", "GND_ISO", "iso", "decoupling")
    nl.two("C10U", "+5V_ISO", "GND_ISO", "iso", "DAC bulk")
    opa = nl.add("OPA4197", "iso", "current sinks")
    nl.connect("+12V_ISO", opa["V+"])
    nl.connect("GND_ISO", opa["V-"])
    nl.two("C100N", "+12V_ISO", "GND_ISO", "iso", "decoupling")
    tp = nl.add("TP_BLK", "iso", "GND_ISO")
    nl.connect("GND_ISO", tp["1"])

    n_leads = lead_count(pins)
    for ch in "ABCD"[n_leads:]:  # unused channels: DAC open, op-amp unit a grounded follower
        nl.nc(dac[f"VOUT{ch}"])
        nl.connect("GND_ISO", opa[f"+IN{ch}"])
        nl.connect(f"UNUSED_{ch}", opa[f"-IN{ch}"], opa[f"OUT{ch}"])

    for i in range(n_leads):
        n, ch, g = i + 1, "ABCD"[i], f"lead{i + 1}"
        a, b, arm = by_key[f"LEAD_A[{i}]"], by_key[f"LEAD_B[{i}]"], by_key[f"ARM[{i}]"]
        L = f"L{n}_"
        gate_iso = nl.add("ISO7741F", g, "gate isolator")
        nl.connect("+3V3", gate_iso["VCC1"], gate_iso["EN1"])
        nl.connect("GND", gate_iso["GND1_2"], gate_iso["GND1_8"])
        nl.connect(a.name, gate_iso["INA"])
        nl.connect(b.name, gate_iso["INB"])
        nl.connect(arm.name, gate_iso["INC"])
        nl.nc(gate_iso["OUTD"])
        nl.connect("+5V_ISO", gate_iso["VCC2"], gate_iso["EN2"])
        nl.connect("GND_ISO", gate_iso["GND2_9"], gate_iso["GND2_15"], gate_iso["IND"])
        nl.connect(L + "A", gate_iso["OUTA"])
        nl.connect(L + "B", gate_iso["OUTB"])
        nl.connect(L + "ARM", gate_iso["OUTC"])
        nl.two("C100N", "+3V3", "GND", g, "decoupling")
        nl.two("C100N", "+5V_ISO", "GND_ISO", g, "decoupling")
        gate = nl.add("AND2", g, "phase AND arm")
        nl.connect(L + "A", gate["1A"])
        nl.connect(L + "ARM", gate["1B"], gate["2B"])
        nl.connect(L + "B", gate["2A"])
        nl.connect(L + "PH1", gate["1Y"])
        nl.connect(L + "PH2", gate["2Y"])
        nl.connect("+5V_ISO", gate["VCC"])
        nl.connect("GND_ISO", gate["GND"])
        nl.two("C100N", "+5V_ISO", "GND_ISO", g, "decoupling")
        sw = nl.add("DG412", g, "H-bridge")
        nl.connect(L + "PH1", sw["IN1"], sw["IN4"])
        nl.connect(L + "PH2", sw["IN2"], sw["IN3"])
        nl.connect("+12V_ISO", sw["V+"], sw["D1"], sw["D2"])
        nl.connect("+5V_ISO", sw["VL"])
        nl.connect("GND_ISO", sw["V-"], sw["GND"])
        nl.connect(L + "E+", sw["S1"], sw["D3"])
        nl.connect(L + "E-", sw["S2"], sw["D4"])
        nl.connect(L + "SINK", sw["S3"], sw["S4"])
        nl.two("C100N", "+12V_ISO", "GND_ISO", g, "decoupling")
        nl.two("C100N", "+5V_ISO", "GND_ISO", g, "decoupling")
        nl.connect(L + "DAC", dac[f"VOUT{ch}"], opa[f"+IN{ch}"])
        nl.connect(L + "DRIVE", opa[f"OUT{ch}"])
        nl.two("R100", L + "DRIVE", L + "GATE", g, "gate resistor")
        q = nl.add("NFET", g, "current sink")
        nl.connect(L + "GATE", q["G"])
        nl.connect(L + "SINK", q["D"])
        nl.connect(L + "SENSE", q["S"], opa[f"-IN{ch}"])
        for _ in range(3):
            nl.two("R1K_P1", L + "SENSE", "GND_ISO", g, "sense 333.3 ohm")
        nl.two("TERM2", L + "E+", L + "E-", g, f"lead {n} output")
    return nl


# --------------------------------------------------------------------------- ERC

_DRIVERS = {P.OUT, P.OD, P.PWR_OUT}


def _resistor_neighbours(nl: Netlist, net: str) -> list[tuple[Part, str]]:
    """(resistor, net at its other end) for each resistor with a pin on `net`."""
    out = []
    for ref, key in nl.nets.get(net, []):
        part = nl.parts[ref]
        if part.spec.ohms is None:
            continue
        other = next(k for k in part.pins if k != key)
        far = nl.net_of(ref, other)
        if far is not None:
            out.append((part, far))
    return out


def erc(nl: Netlist, pins: Mapping[str, Any] = PINS) -> list[str]:
    """Electrical rule check of a netlist: a list of problems, empty when clean.

    Checks: every pin is on exactly one net or carries a no-connect flag (and no flagged pin
    is connected); no net has a single pin; no net has two push-pull outputs (or power
    outputs of two parts) driving it, nor an output fighting an open-drain pin; every net with
    an input has a driver (an output, an open-drain or power pin, an internal pull, or a
    resistor from a driven net); every power input has a power output on its net; every
    open-drain net has a pull-up; every output gate of the pin map has its 100 kohm pull-down
    to GND and every other declared pull resistor is there.
    """
    problems: list[str] = []
    pin_nets = nl.pin_nets()
    for part in nl.parts.values():
        for key in part.pins:
            nets = pin_nets.get((part.ref, key), [])
            flagged = (part.ref, key) in nl.no_connect
            if not nets and not flagged:
                problems.append(f"unconnected pin {part.ref}.{key}")
            if nets and flagged:
                problems.append(f"{part.ref}.{key} has a no-connect flag but is on {nets[0]}")
            if len(nets) > 1:
                problems.append(f"{part.ref}.{key} is on several nets: {', '.join(nets)}")

    def driven(net: str) -> bool:
        nodes = nl.nets[net]
        return any(nl.pin(n).type in _DRIVERS for n in nodes) or any(
            n in nl.internal_pull for n in nodes
        )

    for net, nodes in sorted(nl.nets.items()):
        types = [nl.pin(n).type for n in nodes]
        if len(set(nodes)) < 2:
            problems.append(f"net {net} has a single pin")
        # Push-pull outputs: any two fight. Power outputs: the pins of one part are one source.
        push = [f"{ref}.{key}" for (ref, key), t in zip(nodes, types, strict=True) if t is P.OUT]
        power = {ref for (ref, key), t in zip(nodes, types, strict=True) if t is P.PWR_OUT}
        if len(push) + len(power) > 1:
            who = ", ".join(sorted(push) + sorted(power))
            problems.append(f"net {net}: outputs drive outputs ({who})")
        if push and P.OD in types:
            problems.append(f"net {net}: a push-pull output fights an open-drain pin")
        if P.IN in types and not driven(net):
            if not any(driven(far) for _, far in _resistor_neighbours(nl, net)):
                problems.append(f"net {net} has inputs but no driver")
        if P.PWR_IN in types and not power:
            problems.append(f"net {net} feeds power inputs but has no power output")
        if P.OD in types and not push:
            ups = [r for r, far in _resistor_neighbours(nl, net) if far in POWER_NETS]
            if not ups:
                problems.append(f"open-drain net {net} has no pull-up")

    for s in signals(pins):
        if s.pull is None:
            continue
        direction, spec_key = s.pull
        rail = ("GND",) if direction == "down" else POWER_NETS
        want = CATALOGUE[spec_key]
        found = [
            r
            for r, far in _resistor_neighbours(nl, s.name)
            if far in rail and r.spec.ohms == want.ohms
        ]
        if not found:
            what = "output gate" if s.kind == "gate" else "signal"
            problems.append(
                f"{what} {s.name} (GP{s.gpio}) lacks its {want.value} pull-{direction} "
                f"to {'GND' if direction == 'down' else 'a supply'}"
            )
    return problems


# --------------------------------------------------------------------------- BOM

_PREFIX_ORDER = ("U", "PS", "Q", "R", "C", "D", "SW", "J", "TP")


def ref_key(ref: str) -> tuple[int, str, int]:
    m = re.fullmatch(r"([A-Z]+)(\d+)", ref)
    if not m:
        return (len(_PREFIX_ORDER), ref, 0)
    p, n = m.group(1), int(m.group(2))
    return (_PREFIX_ORDER.index(p) if p in _PREFIX_ORDER else len(_PREFIX_ORDER), p, n)


BOM_COLUMNS = (
    "reference",
    "quantity",
    "description",
    "manufacturer",
    "manufacturer part number",
    "notes",
)


def bom_rows(nl: Netlist) -> list[dict[str, str]]:
    groups: dict[str, list[str]] = {}
    for part in nl.parts.values():
        groups.setdefault(part.spec_key, []).append(part.ref)
    rows = []
    for key, refs in groups.items():
        spec = CATALOGUE[key]
        refs.sort(key=ref_key)
        rows.append(
            {
                "reference": " ".join(refs),
                "quantity": str(len(refs)),
                "description": spec.description,
                "manufacturer": spec.manufacturer,
                "manufacturer part number": spec.mpn,
                "notes": spec.note,
            }
        )
    rows.sort(key=lambda r: ref_key(r["reference"].split()[0]))
    return rows


def bom_csv(nl: Netlist) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=BOM_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(bom_rows(nl))
    return buf.getvalue()


# --------------------------------------------------------------------------- netlist text


def netlist_text(nl: Netlist, pins: Mapping[str, Any] = PINS) -> str:
    lines = [
        "# PicoStim reference build: netlist",
        f"# Generated from {_rel(PINS_FILE)} by `{REGEN}`: do not edit.",
        "# Pins are part.pin(number); pin types: " + ", ".join(t.value for t in PinType) + ".",
        "",
        "## Parts",
    ]
    for ref in sorted(nl.parts, key=ref_key):
        part = nl.parts[ref]
        lines.append(
            f"{ref:<5} {part.spec.mpn:<20} {part.spec.value:<12} {part.role} ({part.group})"
        )
    lines += ["", "## Nets"]
    for net in sorted(nl.nets, key=_net_key):
        nodes = sorted(nl.nets[net], key=lambda n: (ref_key(n[0]), n[1]))
        text = " ".join(_node_text(nl, n) for n in nodes)
        lines.append(f"{net}: {text}")
    lines += ["", "## No-connect flags"]
    nc = sorted(nl.no_connect, key=lambda n: (ref_key(n[0]), _pin_num(nl, n)))
    lines.append(" ".join(_node_text(nl, n) for n in nc))
    lines += ["", "## Internal pulls (set by the firmware)"]
    for node, pull in sorted(nl.internal_pull.items()):
        lines.append(f"{_node_text(nl, node)}: pull-{pull}")
    problems = erc(nl, pins) + check_pinmap(pins)
    n_pins = sum(len(p.pins) for p in nl.parts.values())
    lines += ["", "## Electrical rule check"]
    if problems:
        lines += [f"- {p}" for p in problems]
    else:
        lines.append(f"clean: {len(nl.parts)} parts, {len(nl.nets)} nets, {n_pins} pins")
    return "\n".join(lines) + "\n"


def _pin_num(nl: Netlist, node: tuple[str, str]) -> int:
    num = nl.pin(node).number
    return int(num) if num.isdigit() else 0


def _node_text(nl: Netlist, node: tuple[str, str]) -> str:
    pin = nl.pin(node)
    ref, key = node
    if pin.key == pin.number:
        return f"{ref}.{key}"
    return f"{ref}.{pin.name}({pin.number})" if pin.number else f"{ref}.{pin.name}"


def _net_key(net: str) -> tuple[int, str]:
    if net in GROUND_NETS or net in POWER_NETS:
        return (0, net)
    return (1 if net[0].islower() else 2, net)


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- drawing


class _Art(elm.Element):
    """Segments given in drawing coordinates."""

    def __init__(self, segments: Sequence[Any]) -> None:
        super().__init__()
        self.segments.extend(segments)


class Sheet:
    """Drawing primitives in schemdraw units (y up), rendered to one SVG by schemdraw."""

    def __init__(self) -> None:
        self.segs: list[Any] = []
        self.d = schemdraw.Drawing(canvas="svg", show=False)
        self.d.config(fontsize=9, lw=1.1, font="sans-serif", margin=0.5, bgcolor="white")

    def line(self, *pts: tuple[float, float], color: str = "black", lw: float = 1.1) -> None:
        self.segs.append(Segment(list(pts), color=color, lw=lw))

    def dashed(self, *pts: tuple[float, float], color: str = "black", lw: float = 1.0) -> None:
        self.segs.append(Segment(list(pts), color=color, lw=lw, ls="--"))

    def text(
        self,
        xy: tuple[float, float],
        s: str,
        size: float = 9,
        ha: str = "left",
        va: str = "center",
        color: str = "black",
        rot: float = 0,
    ) -> None:
        self.segs.append(
            SegmentText(xy, s, align=(ha, va), fontsize=size, color=color, rotation=rot)  # type: ignore[arg-type]
        )

    def rect(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        color: str = "black",
        fill: str | None = None,
        lw: float = 1.1,
        ls: str = "-",
    ) -> None:
        pts = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        self.segs.append(SegmentPoly(pts, color=color, fill=fill, lw=lw, ls=ls))  # type: ignore[arg-type]

    def circle(
        self, xy: tuple[float, float], r: float, color: str = "black", fill: str | None = None
    ) -> None:
        self.segs.append(SegmentCircle(xy, r, color=color, fill=fill or False))

    def element(self, e: elm.Element) -> None:
        self.d.add(e)

    def svg(self, comment: str) -> str:
        # Plain <text> elements and schemdraw's own text-size estimate, so the files do not
        # depend on whether an optional font package (ziamath) happens to be installed.
        old = schemdraw.svgconfig.text, svg_backend.ziamath
        schemdraw.svgconfig.text = "text"
        svg_backend.ziamath = None
        try:
            self.d.add(_Art(self.segs).at((0, 0)).theta(0))
            data = self.d.get_imagedata("svg").decode()
        finally:
            schemdraw.svgconfig.text, svg_backend.ziamath = old
        head, sep, rest = data.partition(">")
        return f"{head}{sep}<!-- {comment} -->{rest}\n"


def tw(s: str, size: float = 9) -> float:
    """Approximate width of a text in drawing units."""
    return len(s) * size * 0.56 / 36


def _supply(sh: Sheet, x: float, y: float, net: str, up: bool) -> None:
    """A power or ground symbol at the end of a vertical lead at (x, y)."""
    if net == "GND":
        sh.line((x, y), (x, y - 0.2))
        for i, w in enumerate((0.3, 0.19, 0.08)):
            sh.line((x - w, y - 0.2 - 0.08 * i), (x + w, y - 0.2 - 0.08 * i))
    elif net == "GND_ISO":
        sh.line((x, y), (x, y - 0.2))
        sh.segs.append(
            SegmentPoly([(x - 0.25, y - 0.2), (x + 0.25, y - 0.2), (x, y - 0.45)], color="#b35900")
        )
        sh.text((x + 0.3, y - 0.35), "GND_ISO", 7, color="#b35900")
    else:
        d = 0.2 if up else -0.2
        sh.line((x, y), (x, y + d))
        sh.line((x - 0.22, y + d), (x + 0.22, y + d))
        color = "#b35900" if net.endswith("_ISO") else "#b00000"
        sh.text((x, y + d * 1.4), net, 8, "center", "bottom" if up else "top", color)


def _net_color(net: str) -> str:
    return "#b35900" if "ISO" in net or net.startswith("L") and net[1].isdigit() else "#0b4f9c"


@dataclass
class Cell:
    w: float
    h: float
    draw: Callable[[Sheet, float, float], None]  # (sheet, x left, y top)


def ic_cell(nl: Netlist, part: Part, title: str = "") -> Cell:
    """An IC box: pins on its two sides, each lead ending in its net's name."""
    spec = part.spec
    left = [p for p in part.pins.values() if p.side == "L"]
    right = [p for p in part.pins.values() if p.side == "R"]
    dy = 0.42
    rows = max(len(left), len(right))
    bw = max(1.6, max((tw(p.name, 8) for p in left), default=0) + 0.15)
    bw += max(1.0, max((tw(p.name, 8) for p in right), default=0) + 0.15)
    bw = max(bw, tw(spec.value, 9) + 0.4)
    lead = 0.5

    def label(p: PinDef) -> str:
        net = nl.net_of(part.ref, p.key)
        return net or ""

    lw_ = max((tw(label(p), 8) for p in left), default=0)
    rw_ = max((tw(label(p), 8) for p in right), default=0)
    bh = rows * dy + 0.35
    w = lw_ + 0.25 + lead + bw + lead + 0.25 + rw_
    h = bh + 1.0

    def draw(sh: Sheet, x: float, y: float) -> None:
        x0 = x + lw_ + 0.25 + lead
        x1 = x0 + bw
        y0 = y - 0.55
        sh.rect(x0, y0, x1, y0 - bh, fill="#fffbe6")
        sh.text(((x0 + x1) / 2, y0 + 0.08), f"{part.ref}  {spec.value}", 9, "center", "bottom")
        if title:
            sh.text(((x0 + x1) / 2, y0 - bh - 0.08), title, 7, "center", "top", "#555555")
        if spec.barrier:
            xm = (x0 + x1) / 2
            sh.dashed((xm, y0), (xm, y0 - bh), color="#b35900")
        for side, pins_ in (("L", left), ("R", right)):
            for i, p in enumerate(pins_):
                py = y0 - 0.3 - i * dy
                xe = x0 - lead if side == "L" else x1 + lead
                xb = x0 if side == "L" else x1
                sh.line((xb, py), (xe, py))
                inner = (xb + 0.07, py) if side == "L" else (xb - 0.07, py)
                sh.text(inner, p.name, 8, "left" if side == "L" else "right")
                if p.number:
                    nx = (xb + xe) / 2
                    sh.text((nx, py + 0.03), p.number, 6, "center", "bottom", "#666666")
                net = label(p)
                if (part.ref, p.key) in nl.no_connect:
                    s = 0.08
                    sh.line((xe - s, py - s), (xe + s, py + s))
                    sh.line((xe - s, py + s), (xe + s, py - s))
                elif net:
                    tx = xe - 0.08 if side == "L" else xe + 0.08
                    sh.text((tx, py), net, 8, "right" if side == "L" else "left", "center",
                            _net_color(net))  # fmt: skip

    return Cell(w, h, draw)


def two_cell(nl: Netlist, part: Part) -> Cell:
    """A vertical two-pin part (or a one-pin test point) with its nets at its ends."""
    spec = part.spec
    keys = [p.key for p in spec.pins]
    nets = [nl.net_of(part.ref, k) or "" for k in keys]
    if spec.symbol in ("R", "C", "SW") and (nets[1] in POWER_NETS or nets[0] in GROUND_NETS):
        nets.reverse()  # supply rails on top, grounds below
    length = 1.5
    labels = [n for n in nets if n not in GROUND_NETS]
    w = max([0.9 + tw(part.ref, 8), 0.9 + tw(spec.value, 8)] + [tw(n, 8) + 0.3 for n in labels])
    w = max(w, 1.5)
    h = length + 1.2

    def end(sh: Sheet, x: float, y: float, net: str, up: bool) -> None:
        if net in GROUND_NETS or net in POWER_NETS:
            _supply(sh, x, y, net, up)
        else:
            sh.line((x, y), (x, y + (0.15 if up else -0.15)))
            yy = y + (0.2 if up else -0.2)
            sh.text((x, yy), net, 8, "center", "bottom" if up else "top", _net_color(net))

    def draw(sh: Sheet, x: float, y: float) -> None:
        cx = x + 0.35
        top, bot = y - 0.45, y - 0.45 - length
        if spec.symbol == "TP":
            sh.circle((cx, top - 0.12), 0.12, fill="#ffd400" if spec.value == "sync" else "#222")
            sh.line((cx, top - 0.24), (cx, bot))
            end(sh, cx, bot, nets[0], False)
        else:
            e: elm.Element
            if spec.symbol == "C":
                e = elm.Capacitor()
            elif spec.symbol == "LED":
                e = elm.LED(fill="#39b54a")
            elif spec.symbol == "SW":
                e = elm.Button()
            elif spec.symbol == "R":
                e = elm.Resistor()
            else:  # connector
                e = elm.Line()
            sh.element(e.at((cx, top)).down().length(length).scale(0.7))
            if spec.symbol not in ("C", "LED", "SW", "R"):
                sh.circle((cx, top - 0.3), 0.07, fill="white")
                sh.circle((cx, bot + 0.3), 0.07, fill="white")
                sh.rect(cx - 0.15, top - 0.12, cx + 0.15, bot + 0.12, color="#555555")
            end(sh, cx, top, nets[0], True)
            end(sh, cx, bot, nets[1], False)
        tx = cx + 0.3
        sh.text((tx, (top + bot) / 2 + 0.14), part.ref, 8)
        sh.text((tx, (top + bot) / 2 - 0.14), spec.value, 7, color="#444444")

    return Cell(w, h, draw)


def mosfet(sh: Sheet, gx: float, yc: float) -> tuple[float, float, float]:
    """An N-channel MOSFET, gate lead from (gx, yc - 0.25); returns (x, drain y, source y)."""
    xp, xc, xd = gx + 0.45, gx + 0.57, gx + 0.9
    sh.line((gx, yc - 0.25), (xp, yc - 0.25))
    sh.line((xp, yc - 0.35), (xp, yc + 0.35))
    for y0 in (0.4, 0.1, -0.2):
        sh.line((xc, yc + y0), (xc, yc + y0 - 0.2))
    sh.line((xc, yc + 0.3), (xd, yc + 0.3), (xd, yc + 0.9))
    sh.line((xc, yc - 0.3), (xd, yc - 0.3), (xd, yc - 0.9))
    sh.line((xd, yc), (xd, yc - 0.3))
    sh.segs.append(Segment([(xd, yc), (xc, yc)], arrow="->", arrowwidth=0.12, arrowlength=0.15))
    return (xd, yc + 0.9, yc - 0.9)


def nfet_cell(nl: Netlist, part: Part) -> Cell:
    nets = {k: nl.net_of(part.ref, k) or "" for k in ("G", "D", "S")}
    w = tw(nets["G"], 8) + 1.9
    h = 3.0

    def draw(sh: Sheet, x: float, y: float) -> None:
        gx = x + tw(nets["G"], 8) + 0.15
        yc = y - 1.5
        xd = mosfet(sh, gx, yc)[0]
        sh.text((gx - 0.08, yc - 0.25), nets["G"], 8, "right", "center", _net_color(nets["G"]))
        sh.text((xd, yc + 0.98), nets["D"], 8, "center", "bottom", _net_color(nets["D"]))
        sh.text((xd, yc - 0.98), nets["S"], 8, "center", "top", _net_color(nets["S"]))
        sh.text((xd + 0.15, yc + 0.14), part.ref, 8)
        sh.text((xd + 0.15, yc - 0.14), part.spec.value, 7, color="#444444")

    return Cell(w, h, draw)


def part_cell(nl: Netlist, part: Part) -> Cell:
    if part.spec.symbol == "NFET":
        return nfet_cell(nl, part)
    if part.spec.symbol == "ic" and part.spec_key not in ("HDR2", "TERM2"):
        return ic_cell(nl, part, part.role)
    return two_cell(nl, part)


def flow(sh: Sheet, cells: Sequence[Cell], x: float, y: float, width: float) -> float:
    """Places cells left to right, wrapping at `width`; returns the height used."""
    cx, cy, row_h = x, y, 0.0
    for c in cells:
        if cx > x and cx + c.w > x + width:
            cx, cy, row_h = x, cy - row_h - 0.2, 0.0
        c.draw(sh, cx, cy)
        cx += c.w + 0.25
        row_h = max(row_h, c.h)
    return y - (cy - row_h)


def block(
    sh: Sheet,
    title: str,
    cells: Sequence[Cell],
    x: float,
    y: float,
    width: float,
    color: str,
    fill: str,
    first: Cell | None = None,
) -> float:
    """A framed block of cells with a title; returns its height.

    `first`, if given, stands on its own at the left and the other cells flow beside it.
    """
    x0 = x + 0.3 + (first.w + 0.6 if first else 0)
    inner = flow(_NullSheet(), cells, x0, y - 0.8, width - 0.3 - (x0 - x))
    h = max(inner, first.h if first else 0) + 1.1
    sh.rect(x, y, x + width, y - h, color=color, fill=fill, lw=1.4, ls="--")
    sh.text((x + 0.3, y - 0.35), title, 11, color=color)
    if first:
        first.draw(sh, x + 0.3, y - 0.8)
    flow(sh, cells, x0, y - 0.8, width - 0.3 - (x0 - x))
    return h


class _NullSheet(Sheet):
    """Measures only: draws nothing."""

    def __init__(self) -> None:
        self.segs = []

    def element(self, e: elm.Element) -> None:
        pass


def _split_cells(nl: Netlist, parts: Iterable[Part]) -> list[Cell]:
    parts = list(parts)
    ics = [
        p for p in parts if p.spec.symbol in ("ic", "NFET") and p.spec_key not in ("HDR2", "TERM2")
    ]
    rest = [p for p in parts if p not in ics]
    return [part_cell(nl, p) for p in ics] + [part_cell(nl, p) for p in rest]


SHEET_W = 56.0


def schematic_svg(nl: Netlist, pins: Mapping[str, Any] = PINS) -> str:
    sh = Sheet()
    sigs = signals(pins)
    by_key = {s.key: s for s in sigs}
    x, y = 0.0, 0.0
    sh.text((x, y), "PicoStim reference build: schematic", 16, va="bottom")
    sh.text((x, y - 0.45), SAFETY, 9, va="top", color="#b00000")
    sh.text(
        (x, y - 0.9),
        f"Generated from {_rel(PINS_FILE)} by `{REGEN}`. Net names join pins; blue nets are "
        "referenced to GND (the Pico, USB), orange ones to GND_ISO (the isolated output "
        "stage). Dashed lines through a part mark the isolation barrier.",
        8,
        va="top",
        color="#444444",
    )
    y -= 1.6
    groups: dict[str, list[Part]] = {}
    for part in nl.parts.values():
        groups.setdefault(part.group, []).append(part)
    pico = nl.parts["U1"]
    h = block(
        sh,
        "Pico side: gates rest low through their pull-downs, interlock loop, inputs, sync, "
        "I2C (all referenced to GND)",
        _split_cells(nl, [p for p in groups["pico"] if p is not pico]),
        x,
        y,
        SHEET_W,
        "#0b4f9c",
        "#f3f8ff",
        first=ic_cell(nl, pico, "Raspberry Pi Pico, seen from above (USB at the top)"),
    )
    y -= h + 0.5
    dac_addr = pins["DAC_ADDR"]
    h = block(
        sh,
        f"Isolation and the isolated supplies; MCP4728 DAC at 0x{dac_addr:02X} (internal "
        "2.048 V reference, gain 1) and the four current-sink amplifiers",
        _split_cells(nl, groups["iso"]),
        x,
        y,
        SHEET_W,
        "#b35900",
        "#fff8f0",
    )
    y -= h + 0.5
    for i in range(lead_count(pins)):
        a, b, arm = by_key[f"LEAD_A[{i}]"], by_key[f"LEAD_B[{i}]"], by_key[f"ARM[{i}]"]
        title = (
            f"Lead {i + 1}: gates {a.name} GP{a.gpio} ({pin_text(a.gpio)}), {b.name} GP{b.gpio} "
            f"({pin_text(b.gpio)}), {arm.name} GP{arm.gpio} ({pin_text(arm.gpio)}); "
            f"DAC channel {'ABCD'[i]}: I = V(DAC) / 333.3 ohm = 1.5 uA per code"
        )
        h = block(
            sh,
            title,
            _split_cells(nl, groups[f"lead{i + 1}"]),
            x,
            y,
            SHEET_W,
            "#b35900",
            "#fff8f0",
        )
        y -= h + 0.5
    h = how_a_lead_works(sh, nl, x, y)
    y -= h + 0.5
    notes = [
        "How a lead works. The MCP4728 channel sets V(DAC) = code x 0.5 mV (2.048 V reference, "
        "gain 1). The op amp unit drives the MOSFET until the sense resistor (3 x 1 kohm 0.1 % "
        "in parallel = 333.3 ohm) carries V(DAC) / 333.3 ohm: 1.5 uA per code, 6.14 mA at "
        "full scale.",
        "Phase 1 (A gate high and ARM high -> PH1): S1 joins +12V_ISO to E+ and S4 joins E- to "
        "the sink, so the current flows E+ -> load -> E-. Phase 2 (B and ARM -> PH2): S2 and S3 "
        "reverse it. With both gates low every switch is open: the lead rests.",
        "Compliance: about 12 V - 2.05 V - switch and MOSFET drops, i.e. loads up to about 1.5 "
        "kohm at full scale. Probe grounds are common to each other: never clip them to GND "
        "and GND_ISO at the same time (that bridges the isolation).",
        f"Pico pins used: 3V3(OUT) pin {PIN_3V3} (isolators side 1, interlock loop, I2C pull-ups), "
        f"VBUS pin {PIN_VBUS} (isolated DC-DC), GND pins "
        + ", ".join(str(p) for p in GND_PINS)
        + f". Status LED: GP{by_key['LED'].gpio} on the Pico board.",
    ]
    for i, line in enumerate(notes):
        sh.text((x, y - 0.45 * i), line, 9, va="top")
    return sh.svg(f"Generated from {_rel(PINS_FILE)} by `{REGEN}`: do not edit.")


def how_a_lead_works(sh: Sheet, nl: Netlist, x: float, y: float) -> float:
    """Lead 1's output stage wired out as a circuit, from its netlist parts; returns height."""
    lead = [p for p in nl.parts.values() if p.group == "lead1"]

    def ref(key: str, role: str | None = None) -> str:
        return next(p.ref for p in lead if p.spec_key == key and role in (None, p.role))

    sw, q, rg = ref("DG412"), ref("NFET"), ref("R100")
    rs = [p.ref for p in lead if p.spec_key == "R1K_P1"]
    iso, gate, term = ref("ISO7741F"), ref("AND2"), ref("TERM2")
    dac = next(p.ref for p in nl.parts.values() if p.spec_key == "MCP4728")
    opa = next(p.ref for p in nl.parts.values() if p.spec_key == "OPA4197")
    h = 11.0
    sh.rect(x, y, x + SHEET_W, y - h, color="#b35900", fill="#fffdf8", lw=1.4, ls="--")
    sh.text(
        (x + 0.3, y - 0.35),
        "How a lead works: lead 1's output stage drawn out (leads 2-4 are alike; all on GND_ISO)",
        11,
        color="#b35900",
    )
    L, R = x + 15.0, x + 20.0
    T, M, B = y - 1.6, y - 3.9, y - 6.0
    xm = (L + R) / 2
    sh.line((L, T), (R, T))
    _supply(sh, xm, T, "+12V_ISO", True)
    sh.line((L, B), (R, B))
    for (x0, y0, y1), name, ph in (
        ((L, T, M), "S1", "PH1"),
        ((R, T, M), "S2", "PH2"),
        ((L, M, B), "S3", "PH2"),
        ((R, M, B), "S4", "PH1"),
    ):
        sh.element(elm.Switch().endpoints((x0, y0), (x0, y1)))
        side = -1 if x0 == L else 1
        ha = "right" if side < 0 else "left"
        sh.text((x0 + side * 0.45, (y0 + y1) / 2 + 0.15), f"{sw} {name}", 8, ha)
        sh.text(
            (x0 + side * 0.45, (y0 + y1) / 2 - 0.15),
            f"closed while {ph}",
            7,
            ha,
            "center",
            "#b35900",
        )
    sh.element(elm.Resistor().endpoints((L, M), (R, M)))
    for xx, name, side in ((L, "E+", -1), (R, "E-", 1)):
        sh.circle((xx, M), 0.07, fill="black")
        sh.text((xx + side * 0.2, M), name, 10, "right" if side < 0 else "left")
    sh.text((xm, M - 0.35), f"test load on {term} (e.g. 1 kohm)", 8, "center", "top")
    sh.circle((xm, B), 0.07, fill="black")
    sh.text((xm + 0.1, B + 0.1), "L1_SINK", 8, color="#b35900", va="bottom")
    xd, yd, ys = mosfet(sh, xm - 0.9, B - 1.8)
    sh.line((xm, B), (xd, yd))
    sh.text((xd + 0.15, B - 1.8), q, 8)
    # Sense resistors: three in parallel from the source to GND_ISO.
    sh.circle((xd, ys), 0.07, fill="black")
    xs = [xd + 0.9 * i for i in range(len(rs))]
    sh.line((xd, ys), (xs[-1], ys))
    yb = ys - 1.3
    for xx, r in zip(xs, rs, strict=True):
        sh.element(elm.Resistor().endpoints((xx, ys), (xx, yb)).scale(0.6))
        sh.text((xx + 0.2, ys - 0.3), r, 7)
    sh.line((xd, yb), (xs[-1], yb))
    _supply(sh, xd, yb, "GND_ISO", False)
    sh.text((xs[-1] + 0.3, ys - 0.8), "3 x 1 kohm 0.1 %\n= 333.3 ohm", 7, va="center")
    # The op amp unit: + from the DAC, - from the sense node, out through the gate resistor.
    gy = B - 1.8 - 0.25
    op = elm.Opamp(leads=True).flip().anchor("out").at((xm - 3.8, gy)).right().scale(0.8)
    sh.element(op)
    outp, inp, inm = op.absanchors["out"], op.absanchors["in2"], op.absanchors["in1"]
    sh.element(elm.Resistor().endpoints((outp[0], outp[1]), (xm - 0.9, gy)).scale(0.6))
    sh.text(((outp[0] + xm - 0.9) / 2, gy + 0.3), rg, 7, "center", "bottom")
    sh.line((inp[0], inp[1]), (inp[0] - 1.2, inp[1]))
    sh.text((inp[0] - 1.3, inp[1]), f"L1_DAC ({dac} VOUTA)", 8, "right", color="#b35900")
    fb_x, fb_y = inm[0] - 0.5, gy - 1.2
    sh.line(
        (inm[0], inm[1]), (fb_x, inm[1]), (fb_x, fb_y), (xd - 0.5, fb_y), (xd - 0.5, ys), (xd, ys)
    )
    center = op.absanchors["center"]
    sh.text((center[0], gy + 1.0), f"{opa} unit A", 8, "center", "bottom")
    # The gate chain.
    tx = x + 0.4
    lines = [
        f"ch1_a, ch1_b, arm1 (Pico) -> {iso} ISO7741F -> L1_A, L1_B, L1_ARM",
        f"{gate}: PH1 = L1_A AND L1_ARM, PH2 = L1_B AND L1_ARM",
        "phase 1: S1 + S4 closed: I flows E+ -> load -> E-",
        "phase 2: S2 + S3 closed: I flows E- -> load -> E+",
        "rest (both gates low, or ARM low): all four open",
        "I = V(DAC) / 333.3 ohm = code x 1.5 uA (max 6.14 mA)",
    ]
    for i, line in enumerate(lines):
        sh.text((tx, y - 1.2 - 0.42 * i), line, 9)
    return h


# --------------------------------------------------------------------------- pinout

_KIND_COLOR = {
    "gate": "#c0392b",
    "input": "#1f5fa8",
    "i2c": "#7d3c98",
    "power": "#d35400",
    "ground": "#333333",
    "led": "#2e7d32",
}
_KIND_FILL = {
    "gate": "#fde3e0",
    "input": "#e1ecf9",
    "i2c": "#efe2f5",
    "power": "#fdebd9",
    "ground": "#e6e6e6",
    "led": "#e2f3e3",
}


def short_role(s: Signal, pins: Mapping[str, Any] = PINS) -> str:
    if s.key.startswith("LEAD_"):
        return f"lead {s.lead} phase {s.key[5]}"
    return {
        "SYNC": "scope sync",
        "TRIGGER": "ext. trigger",
        "INTERLOCK": "interlock loop",
        "BUTTON": "on/off button",
        "I2C_SDA": f"I2C{pins['I2C_ID']} SDA (DAC)",
        "I2C_SCL": f"I2C{pins['I2C_ID']} SCL (DAC)",
        "LED": "status LED",
    }.get(s.key, f"lead {s.lead} arm" if s.key.startswith("ARM") else s.key)


def _header_uses(pins: Mapping[str, Any]) -> dict[int, tuple[str, str]]:
    """Header pin -> (label, kind) for every pin the reference build uses."""
    uses: dict[int, tuple[str, str]] = {}
    for s in signals(pins):
        if s.pin is not None:
            uses[s.pin] = (f"{s.name}: {short_role(s, pins)} ({s.direction})", s.kind)
    uses[PIN_3V3] = ("+3V3: isolators, interlock loop", "power")
    uses[PIN_VBUS] = ("VBUS: isolated DC-DC", "power")
    for g in GND_PINS:
        uses[g] = ("GND", "ground")
    uses[PICO_HEADER.index("AGND") + 1] = ("GND", "ground")
    return uses


def pinout_svg(pins: Mapping[str, Any] = PINS) -> str:
    sh = Sheet()
    uses = _header_uses(pins)
    dy, top = 0.62, -1.3
    bx0, bx1 = 0.0, 5.2
    bottom = top - 19 * dy - 1.5
    sh.text((bx0 - 7.5, 2.3), "PicoStim on the Raspberry Pi Pico: pinout", 16, va="bottom")
    sh.text((bx0 - 7.5, 1.85), "Seen from above, USB at the top. A teaching and test instrument only: never connect "
        "it to a person or an animal.", 8,
            va="bottom", color="#b00000")  # fmt: skip
    sh.rect(bx0, 0.2, bx1, bottom, color="#1e5b2e", fill="#2f8f4e", lw=1.6)
    sh.rect(1.9, 0.75, 3.3, -0.25, color="#555555", fill="#c8c8c8")
    sh.text((2.6, 0.25), "USB", 8, "center")
    sh.text((2.6, bottom + 0.55), "Raspberry Pi Pico (RP2040)", 10, "center", color="white")
    led = next(s for s in signals(pins) if s.kind == "led")
    sh.circle((1.3, -0.35), 0.12, fill="#7CFC00")
    sh.text((1.3, -0.6), f"LED GP{led.gpio}", 6, "center", "top", "white")
    for i in range(20):
        y = top - i * dy
        for pin, side in ((i + 1, "L"), (40 - i, "R")):
            name = PICO_HEADER[pin - 1]
            label, kind = uses.get(pin, ("", ""))
            px = bx0 + 0.3 if side == "L" else bx1 - 0.3
            color = _KIND_COLOR.get(kind, "#bbbbbb")
            sh.circle((px, y), 0.17, color="#caa000", fill="#f1d36b" if label else "#e0e0e0")
            nx = px + 0.3 if side == "L" else px - 0.3
            sh.text((nx, y), f"{pin}", 7, "left" if side == "L" else "right", color="#ffffff")
            mx = px + 0.75 if side == "L" else px - 0.75
            sh.text((mx, y), name, 8, "left" if side == "L" else "right", color="white")
            if not label:
                continue
            sgn = -1 if side == "L" else 1
            edge = bx0 if side == "L" else bx1
            sh.line((px + sgn * 0.17, y), (edge + sgn * 0.6, y), color=color, lw=1.4)
            w = tw(label, 8) + 0.3
            x0 = edge + sgn * 0.6
            x1 = x0 + sgn * w
            sh.rect(min(x0, x1), y - 0.2, max(x0, x1), y + 0.2, color=color, fill=_KIND_FILL[kind])
            sh.text(((x0 + x1) / 2, y), label, 8, "center", color=color)
    ly = bottom - 0.7
    for i, (kind, what) in enumerate(
        (
            ("gate", "output gate: 100 kohm pull-down, rests low"),
            ("input", "input"),
            ("i2c", "I2C (4.7 kohm pull-ups)"),
            ("power", "power"),
            ("ground", "ground"),
        )
    ):
        lx = bx0 - 7.5 + (i % 3) * 6.7
        yy = ly - (i // 3) * 0.45
        sh.rect(lx, yy - 0.15, lx + 0.4, yy + 0.15, color=_KIND_COLOR[kind], fill=_KIND_FILL[kind])
        sh.text((lx + 0.55, yy), what, 8)
    sh.text(
        (bx0 - 7.5, ly - 1.0),
        f"Each lead's B gate is its A gate + 1. Generated from {_rel(PINS_FILE)}.",
        8,
        color="#444444",
    )
    return sh.svg(f"Generated from {_rel(PINS_FILE)} by `{REGEN}`: do not edit.")


def pull_text(nl: Netlist, s: Signal) -> str:
    parts = []
    for r, far in _resistor_neighbours(nl, s.name):
        if far in GROUND_NETS:
            parts.append(f"{_ohms(r.spec.ohms)} to {far} ({r.ref})")
        elif far in POWER_NETS:
            parts.append(f"{_ohms(r.spec.ohms)} to {far} ({r.ref})")
    if s.internal_pull:
        parts.append(f"internal pull-{s.internal_pull} (firmware)")
    return "; ".join(parts) if parts else "none"


def _ohms(v: float | None) -> str:
    if v is None:
        return "?"
    if v >= 1e3:
        return f"{v / 1e3:g} kohm"
    return f"{v:g} ohm"


def _md_header(title: str) -> list[str]:
    return [
        f"# {title}",
        "",
        f"> **{SAFETY}**",
        "",
        f"<!-- Generated from {_rel(PINS_FILE)} by `{REGEN}`: do not edit; change the pin map "
        "and regenerate. -->",
        "",
    ]


def pinout_md(nl: Netlist, pins: Mapping[str, Any] = PINS) -> str:
    sigs = signals(pins)
    out = _md_header("PicoStim pinout")
    out += [
        f"Every GPIO below comes from the one pin map, `{_rel(PINS_FILE)}`; the Pico pin is its "
        "place on the Raspberry Pi Pico's 40-pin header (pin 1 top left, seen from above with "
        "the USB connector at the top; see [pinout.svg](pinout.svg)).",
        "",
        "## Signals",
        "",
        "| signal | pin map | GPIO | Pico pin | direction | level meaning | pull resistor |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in sigs:
        pin = str(s.pin) if s.pin else "on the board"
        out.append(
            f"| `{s.name}` | `{s.key}` | GP{s.gpio} | {pin} | {s.direction} | {s.meaning} | "
            f"{pull_text(nl, s)} |"
        )
    bus, addr = pins["I2C_ID"], pins["DAC_ADDR"]
    out += [
        "",
        "- Each lead's B gate is its A gate + 1: the lead's PIO state machine drives the two as "
        "one pin group, so the biphasic pulse's two phases are switched in the same clock cycle.",
        "- Every output gate (lead A/B, sync, ARM) has a 100 kohm pull-down to GND, so from "
        "power-up until the firmware drives them, all gates read low: no lead can switch.",
        "- The interlock reads high only while its loop ties it to 3V3; an open loop or a broken "
        "wire reads low through its 10 kohm pull-down and the firmware's internal one: fail-safe.",
        f"- I2C{bus} carries the MCP4728 DAC at 0x{addr:02X} (the MCP4728's factory address is "
        "0x60; another one must first be written to its EEPROM).",
        "- All inputs are 3.3 V logic: the RP2040's GPIOs are not 5 V tolerant.",
        "",
        "## Power pins used",
        "",
        "| Pico pin | name | use |",
        "| --- | --- | --- |",
        f"| {PIN_3V3} | 3V3(OUT) | +3V3: side 1 of the isolators, interlock loop, I2C pull-ups "
        "(and the interlock jumper on a bare Pico) |",
        f"| {PIN_VBUS} | VBUS | 5 V from USB into the isolated DC-DC of the output stage |",
        f"| {', '.join(str(g) for g in GND_PINS)} | GND | ground of the Pico side; scope ground "
        "clips |",
        "",
        "## The header at a glance",
        "",
        "| PicoStim | name | pin | | pin | name | PicoStim |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    uses = _header_uses(pins)
    for i in range(20):
        lp, rp = i + 1, 40 - i
        lu = uses.get(lp, ("", ""))[0]
        ru = uses.get(rp, ("", ""))[0]
        out.append(
            f"| {lu} | {PICO_HEADER[lp - 1]} | {lp} | | {rp} | {PICO_HEADER[rp - 1]} | {ru} |"
        )
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- scope wiring

#: The firmware's default pulse (SOURce<n>:PULSe:WIDTh, :GAP, :FREQuency at *RST) and the
#: length of its sync pulse.
DEFAULT_WIDTH_S = 200e-6
DEFAULT_GAP_S = 50e-6
DEFAULT_FREQ_HZ = 20.0
SYNC_PULSE_S = 1e-6


def _us(s: float) -> str:
    return f"{s * 1e6:g} us"


def scope_wiring_md(pins: Mapping[str, Any] = PINS) -> str:
    sigs = {s.key: s for s in signals(pins)}
    a, b, sync, arm = sigs["LEAD_A[0]"], sigs["LEAD_B[0]"], sigs["SYNC"], sigs["ARM[0]"]
    itl = sigs["INTERLOCK"]

    def where(s: Signal) -> str:
        assert s.pin is not None
        return f"pin {s.pin} (GP{s.gpio})"

    def gnd(s: Signal) -> str:
        assert s.pin is not None
        return f"pin {nearest_gnd(s.pin)}"

    pulse = 2 * DEFAULT_WIDTH_S + DEFAULT_GAP_S
    period_ms = 1e3 / DEFAULT_FREQ_HZ
    out = _md_header("Wiring an oscilloscope to PicoStim")
    out += [
        "The gate signals are 3.3 V logic on the Pico's own pins, so a bare Pico running the "
        "firmware is enough to see every pulse. Pin numbers are the Pico's header pins (pin 1 "
        "top left, USB at the top: see [pinout.svg](pinout.svg)).",
        "",
        "## Probes",
        "",
        "| scope input | signal | Pico pin | ground clip | what it shows |",
        "| --- | --- | --- | --- | --- |",
        f"| CH1 | `{a.name}` | {where(a)} | {gnd(a)} | lead 1 phase A (first phase) |",
        f"| CH2 | `{b.name}` | {where(b)} | {gnd(b)} | lead 1 phase B (second phase) |",
        f"| CH3 (4-channel scope) or EXT TRIG | `{sync.name}` | {where(sync)} | {gnd(sync)} | "
        f"sync: a {_us(SYNC_PULSE_S)} pulse as lead 1's phase A starts |",
        f"| CH4 (4-channel scope) | `{arm.name}` | {where(arm)} | {gnd(arm)} | lead 1 armed "
        "(high while the lead may pulse) |",
        "",
        "With a two-channel scope use CH1 and CH2 and put the sync on the EXT TRIG input if the "
        "scope has one; otherwise trigger on CH1. Clip every probe's ground to a Pico GND pin "
        f"({', '.join(str(g) for g in GND_PINS)}); the nearest one is listed. Use 10:1 probes "
        "set to DC coupling.",
        "",
        "The other leads, for moving the probes:",
        "",
        "| lead | phase A | phase B | ARM |",
        "| --- | --- | --- | --- |",
    ]
    for i in range(lead_count(pins)):
        la, lb, lr = sigs[f"LEAD_A[{i}]"], sigs[f"LEAD_B[{i}]"], sigs[f"ARM[{i}]"]
        out.append(
            f"| {i + 1} | `{la.name}` {where(la)} | `{lb.name}` {where(lb)} | "
            f"`{lr.name}` {where(lr)} |"
        )
    out += [
        "",
        "## Close the interlock",
        "",
        "With the interlock open every output rests: the firmware and each lead's state "
        "machine check it before every pulse. For bench use close the loop:",
        "",
        f"- bare Pico: a jumper wire from 3V3(OUT), pin {PIN_3V3}, to `{itl.name}`, {where(itl)};",
        "- reference build: fit the loop wire, or a 2.54 mm shunt, on the interlock header "
        "(see [schematic.svg](schematic.svg)).",
        "",
        f"Use only 3V3(OUT) for this: VBUS (pin {PIN_VBUS}) and VSYS are 5 V, and the RP2040's "
        "GPIOs are not 5 V tolerant.",
        "",
        "## Start the default pulse",
        "",
        "```",
        "*RST",
        "OUTP:SYNC:MODE PULS",
        "OUTP1 ON",
        "OUTP:GLOB ON",
        "```",
        "",
        "`OUTP:SYNC:MODE PULS` makes the sync fire at every pulse of its source lead (lead 1, "
        "`OUTP:SYNC:SOUR`), which gives a steady display; by default (`TRA`) it fires only at "
        "the first pulse of each train.",
        "",
        f"The default pulse is biphasic: phase A {_us(DEFAULT_WIDTH_S)}, a {_us(DEFAULT_GAP_S)} "
        f"gap, phase B {_us(DEFAULT_WIDTH_S)} ({_us(pulse)} in all), repeated at "
        f"{DEFAULT_FREQ_HZ:g} Hz ({period_ms:g} ms period).",
        "",
        "## Scope settings",
        "",
        "| setting | value |",
        "| --- | --- |",
        "| vertical, each channel | 1 V/div, DC; shift each trace to its own band (e.g. CH1 "
        "+2 div, CH2 -2 div) |",
        f"| timebase | 50 us/div: 500 us across 10 divisions holds the whole {_us(pulse)} "
        "pulse; trigger point 1 div from the left |",
        f"| zoomed out | 10 ms/div: two pulses {period_ms:g} ms apart |",
        f"| trigger | edge, rising, source `{sync.name}` (CH3 or EXT), level 1.6 V (half of "
        "3.3 V) |",
        "| trigger mode | Normal. With the sync in its default train mode use Single to catch "
        f"the start of one train; without a sync, trigger on `{a.name}` (CH1) rising at 1.6 V |",
        "| acquisition | at least 1 MSa/s for the 200 us phases; 250 MSa/s or more to see the "
        "8 ns timing steps |",
        "",
        "## The biphasic pulse as A - B",
        "",
        "The output stage drives current one way while phase A is high and the other way while "
        "phase B is high, so the pulse a lead delivers has the shape of A minus B. Turn on the "
        "scope's math channel as CH1 - CH2 at 2 V/div: it reads +3.3 V for phase A "
        f"({_us(DEFAULT_WIDTH_S)}), 0 V during the {_us(DEFAULT_GAP_S)} gap and -3.3 V for phase "
        f"B ({_us(DEFAULT_WIDTH_S)}). Equal areas above and below zero are the charge balance. "
        "`SOUR1:PULS:POL INV` swaps the two phases; `SOUR1:PULS:SHAP MON` plays phase A only.",
        "",
        "## The isolated output (reference build)",
        "",
        "On the reference build each lead's terminal block (E+ / E-) is on the isolated side. "
        "Put a test load across it, e.g. 1 kohm: the current is 1.5 uA per DAC code (6.14 mA at "
        "full scale), so the load shows 1.5 mV per code. Measure across the load with a "
        "differential probe, or with two probes and the math channel with both grounds on the "
        "GND_ISO test point. Probe grounds are joined inside the scope (and usually to mains "
        "earth): never clip one to GND and another to GND_ISO at the same time, since that "
        "bridges the isolation barrier.",
    ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- Wokwi


def wokwi_diagram(pins: Mapping[str, Any] = PINS) -> dict[str, Any]:
    """A Wokwi simulator diagram: the Pico, LEDs on the outputs, the button and interlock."""
    sigs = {s.key: s for s in signals(pins)}
    parts: list[dict[str, Any]] = [
        {"type": "wokwi-pi-pico", "id": "pico", "top": 0, "left": 0, "attrs": {}}
    ]
    conns: list[list[Any]] = []
    gnd_index = {
        p: i + 1 for i, p in enumerate(sorted((*GND_PINS, PICO_HEADER.index("AGND") + 1)))
    }

    def gnd(pin: int) -> str:
        return f"pico:GND.{gnd_index[nearest_gnd(pin)]}"

    colors = {"A": "red", "B": "blue", "S": "yellow", "R": "green"}
    gates = [s for s in sigs.values() if s.kind == "gate"]
    for i, s in enumerate(gates):
        assert s.pin is not None
        side = "left" if s.pin <= 20 else "right"
        letter = "S" if s.key == "SYNC" else "R" if s.key.startswith("ARM") else s.key[5]
        lid = f"led_{s.name}"
        parts.append(
            {
                "type": "wokwi-led",
                "id": lid,
                "top": -40 + 28 * i,
                "left": -120 if side == "left" else 140,
                "rotate": 270 if side == "left" else 90,
                "attrs": {"color": colors[letter], "label": s.name},
            }
        )
        conns.append([f"pico:GP{s.gpio}", f"{lid}:A", "green", []])
        conns.append([f"{lid}:C", gnd(s.pin), "black", []])
    btn, itl, trg = sigs["BUTTON"], sigs["INTERLOCK"], sigs["TRIGGER"]
    assert btn.pin and itl.pin and trg.pin
    parts += [
        {
            "type": "wokwi-pushbutton",
            "id": "btn_onoff",
            "top": 300,
            "left": 160,
            "attrs": {"color": "green", "label": "on/off", "bounce": "0"},
        },
        {
            "type": "wokwi-slide-switch",
            "id": "sw_interlock",
            "top": 240,
            "left": 180,
            "attrs": {"value": "1", "label": "interlock"},
        },
        {
            "type": "wokwi-pushbutton",
            "id": "btn_trigger",
            "top": 360,
            "left": 160,
            "attrs": {"color": "yellow", "label": "trigger", "bounce": "0"},
        },
    ]
    conns += [
        [f"pico:GP{btn.gpio}", "btn_onoff:1.l", "green", []],
        ["btn_onoff:2.l", gnd(btn.pin), "black", []],
        ["pico:3V3", "sw_interlock:3", "red", []],
        [f"pico:GP{itl.gpio}", "sw_interlock:2", "orange", []],
        ["pico:3V3", "btn_trigger:1.l", "red", []],
        [f"pico:GP{trg.gpio}", "btn_trigger:2.l", "violet", []],
    ]
    return {
        "version": 1,
        "author": "PicoStim",
        "editor": "wokwi",
        "parts": parts,
        "connections": conns,
        "dependencies": {},
    }


def wokwi_json(pins: Mapping[str, Any] = PINS) -> str:
    return json.dumps(wokwi_diagram(pins), indent=2) + "\n"


# --------------------------------------------------------------------------- README

FILES: dict[str, str] = {
    "pinout.md": "table of every signal: GPIO, Pico pin, direction, level meaning, pull resistor",
    "pinout.svg": "the Pico's 40 pins with PicoStim's signals",
    "schematic.svg": "the reference build: Pico side, isolation, DAC, current sinks, H-bridges",
    "netlist.txt": "the reference build as a netlist, with its electrical rule check",
    "bom.csv": "bill of materials of the reference build",
    "scope-wiring.md": "how to wire an oscilloscope and close the interlock",
    "wokwi/diagram.json": "Wokwi simulator diagram: the Pico with LEDs, button and interlock",
}


def readme_md(pins: Mapping[str, Any] = PINS) -> str:
    out = _md_header("PicoStim hardware")
    out += [
        f"Everything in this folder is generated from the one pin map, `{_rel(PINS_FILE)}`, by "
        "`host/picostim/hwdocs.py`; change the pin map or that module, never these files.",
        "",
        "| file | what |",
        "| --- | --- |",
    ]
    out += [f"| [{name}]({name}) | {what} |" for name, what in FILES.items()]
    out += [
        "",
        "## Regenerate",
        "",
        "```sh",
        f"{REGEN}            # rewrite every file here",
        f"{REGEN} --check    # fail if a file here is stale or the rule check finds anything",
        "```",
        "",
        "`make test` runs the check too (`tests/test_hardware.py`). The drawings are made with "
        "schemdraw, pinned to one version in `host/pyproject.toml` so that the generated SVG "
        "files are the same on every machine.",
        "",
        "## The reference build",
        "",
        "The gate signals come straight from the Pico's pins: a bare Pico already shows every "
        "pulse on a scope ([scope-wiring.md](scope-wiring.md)). The reference build adds, per "
        "lead, a current sink and an H-bridge behind an isolation barrier:",
        "",
        "- Pico side: a 100 kohm pull-down on every output gate (all rest low at power-up, "
        "before the firmware runs), the interlock loop (3V3 through the loop to its pin, 10 kohm "
        "pull-down: an open loop or broken wire reads low), the on/off button to GND, the "
        "trigger input and the sync test point.",
        "- Isolation: an isolated DC-DC converter (5 V from USB to +12V_ISO) powers the whole "
        "output stage; ISO7741F digital isolators carry each lead's A, B and ARM gates and an "
        "ISO1541 carries the I2C bus.",
        f"- Current: one MCP4728 channel per lead (I2C{pins['I2C_ID']} address "
        f"0x{pins['DAC_ADDR']:02X}, internal 2.048 V reference, gain 1) sets an op amp + MOSFET "
        "current sink across a 333.3 ohm sense resistor: 1.5 uA per DAC code, 6.14 mA at full "
        "scale.",
        "- Biphasic output: a DG412 quad switch per lead is an H-bridge; phase A (gated by ARM) "
        "closes S1 and S4, phase B closes S2 and S3, reversing the current through the load.",
        "",
        "## Wokwi",
        "",
        "[wokwi/diagram.json](wokwi/diagram.json) wires a simulated Pico for wokwi.com: start a "
        "MicroPython project for the Raspberry Pi Pico, replace its `diagram.json` with this "
        "one and add the firmware files of `board/`. An LED shows each output gate (red: phase "
        "A, blue: phase B, yellow: sync, green: ARM), the slide switch is the interlock loop "
        "(right: closed), the green button is on/off and the yellow one the external trigger.",
        "",
        "## Electrical rule check",
        "",
        "The netlist model in `hwdocs.py` types every pin (input, output, open drain, power, "
        "passive); its electrical rule check reports unconnected pins, outputs driving outputs, "
        "inputs and power inputs with no driver, open-drain nets with no pull-up, and any output "
        "gate lacking its pull-down.",
    ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- main


def generate(pins: Mapping[str, Any] = PINS) -> dict[str, str]:
    """Every generated file: path under hardware/ -> text."""
    nl = reference_build(pins)
    files = {
        "README.md": readme_md(pins),
        "pinout.md": pinout_md(nl, pins),
        "pinout.svg": pinout_svg(pins),
        "schematic.svg": schematic_svg(nl, pins),
        "netlist.txt": netlist_text(nl, pins),
        "bom.csv": bom_csv(nl),
        "scope-wiring.md": scope_wiring_md(pins),
        "wokwi/diagram.json": wokwi_json(pins),
    }
    assert set(files) == set(FILES) | {"README.md"}
    return files


def problems(pins: Mapping[str, Any] = PINS) -> list[str]:
    """The pin map's problems, then the reference build's ERC findings."""
    found = check_pinmap(pins)
    return found or erc(reference_build(pins), pins)


def stale(files: Mapping[str, str], root: Path = HW_DIR) -> list[str]:
    """Generated files whose committed copy is missing or differs."""
    out = []
    for name, text in files.items():
        path = root / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m picostim.hwdocs", description=__doc__.split("\n")[0]
    )
    ap.add_argument(
        "--check", action="store_true", help="fail if hardware/ is stale or the ERC fails"
    )
    args = ap.parse_args(argv)
    found = problems()
    for p in found:
        print(f"ERC: {p}", file=sys.stderr)
    files = generate()
    if args.check:
        old = stale(files)
        for name in old:
            print(f"stale: hardware/{name} (run {REGEN})", file=sys.stderr)
        if not old and not found:
            print(f"hardware/: {len(files)} files up to date, ERC clean")
        return 1 if old or found else 0
    for name in stale(files):
        path = HW_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[name], encoding="utf-8")
        print(f"wrote hardware/{name}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
