"""docs/protocol.md against the firmware: the same commands both ways, every example's replies,
and the error and suffix tables.

Markup the document follows (and this test relies on):

* every command entry starts with a level-3 heading holding only a code span with the header
  exactly as the firmware registers it, `#` written `<n>`: ``### `OUTPut<n>[:STATe]` ``;
* each entry has the fields **Syntax:**, **Parameters:**, **Default:**, **Reply:**, **Errors:**
  and **Example:**, and exactly one ```scpi block;
* ```scpi blocks anywhere in the document are examples: `> ` lines are sent, a `< ` line is
  the reply its line must give (see `picostim.labs` for placeholders); each block starts from
  `*RST;*CLS` and must leave the error queue empty;
* the error tables have rows `| code | message | ... |` with the message as the firmware
  gives it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
import sys
import time
import types
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from picostim.client import PicoStimError, ScpiClient
from picostim.labs import Block, Check, blocks, run_exchanges, scpi_exchanges
from picostim.pinmap import PINS
from picostim.sim import VirtualBoard

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "protocol.md"
BOARD = REPO / "board"
if str(BOARD) not in sys.path:
    sys.path.insert(0, str(BOARD))

from stim import errors as fw_errors  # noqa: E402
from stim import limits as fw_limits  # noqa: E402
from stim import safety as fw_safety  # noqa: E402
from stim import units as fw_units  # noqa: E402
from stim.segments import Settings  # noqa: E402

HEADING = re.compile(r"^### `([^`]+)`\s*$", re.M)
FIELDS = ("Syntax", "Parameters", "Default", "Reply", "Errors", "Example")


@functools.cache
def firmware() -> Any:
    """The firmware's `stim.instrument`, imported as CPython can: `rp2`'s PIO assembler is the
    virtual board's. Every other firmware module that imports here is imported too, so each
    error message a module defines is registered."""
    mp_dir = REPO / "host" / "picostim" / "sim" / "mp"
    sys.path.insert(0, str(mp_dir))
    try:
        rp2_asm = importlib.import_module("rp2_asm")
    finally:
        sys.path.remove(str(mp_dir))
    fake = types.ModuleType("rp2")
    fake.asm_pio = rp2_asm.asm_pio  # type: ignore[attr-defined]
    fake.PIO = rp2_asm.PIOConst  # type: ignore[attr-defined]
    saved = sys.modules.get("rp2")
    sys.modules["rp2"] = fake
    try:
        instrument = importlib.import_module("stim.instrument")
        for f in sorted((BOARD / "stim").glob("*.py")):
            try:
                importlib.import_module("stim." + f.stem)
            except ImportError:
                pass  # needs the board's own modules (machine, micropython): no commands there
    finally:
        if saved is None:
            sys.modules.pop("rp2", None)
        else:
            sys.modules["rp2"] = saved
    return instrument


class _Stub:
    """Stands for any hardware object the Instrument may keep a reference to."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    def __getattr__(self, name: str) -> _Stub:
        return _Stub()

    def __call__(self, *args: Any, **kw: Any) -> _Stub:
        return _Stub()


def firmware_headers() -> list[str]:
    """Every header the firmware's parser has registered, as the firmware writes them."""
    leads = [_Stub(index=i, settings=Settings(), enabled=False, running=False) for i in range(4)]
    inst = firmware().Instrument(_Stub(leads=leads))
    return list(inst.parser.headers())


def _dec(num: int, den: int) -> str:
    return format((Decimal(num) / Decimal(den)).normalize(), "f")


def doc_form(pattern: str) -> str:
    return pattern.replace("#", "<n>")


TEXT = DOC.read_text()


def entries() -> dict[str, str]:
    """Heading -> the text of its entry (up to the next heading of level 3 or less)."""
    out: dict[str, str] = {}
    marks = list(HEADING.finditer(TEXT))
    for m in marks:
        end = TEXT.find("\n#", m.end())
        body = TEXT[m.end() : end if end >= 0 else len(TEXT)]
        assert m.group(1) not in out, "%s is documented twice" % m.group(1)
        out[m.group(1)] = body
    return out


ENTRIES = entries()


def test_every_documented_command_is_in_the_firmware() -> None:
    registered = {doc_form(h) for h in firmware_headers()}
    extra = [h for h in ENTRIES if h not in registered]
    assert not extra, "documented but not registered by the firmware: %s" % extra


def test_every_firmware_command_is_documented() -> None:
    missing = [doc_form(h) for h in firmware_headers() if doc_form(h) not in ENTRIES]
    assert not missing, "registered by the firmware but missing from docs/protocol.md: %s" % (
        missing
    )


@pytest.mark.parametrize("header", sorted(ENTRIES))
def test_entry_has_every_field_and_one_example(header: str) -> None:
    body = ENTRIES[header]
    for f in FIELDS:
        assert "- **%s:**" % f in body, "%s: no **%s:** field" % (header, f)
    assert len(blocks(body, header, ("scpi",))) == 1, "%s: needs exactly one scpi example" % header
    syntax = body.split("- **Syntax:**", 1)[1].split("\n- **", 1)[0]
    # The syntax line names the command in its documented form (brackets and <n> included).
    assert header in syntax or header + "?" in syntax, "%s: syntax line %r" % (header, syntax)


def _error_rows() -> dict[int, str]:
    section = TEXT.split("## Error codes", 1)[1]
    rows = re.findall(r"^\| (-?\d+) \| ([^|]+?) \|", section, re.M)
    return {int(code): msg for code, msg in rows}


def test_error_table_messages_are_the_firmwares() -> None:
    firmware()  # registers the device-specific messages
    rows = _error_rows()
    assert rows, "no error table"
    for code, msg in rows.items():
        assert fw_errors.message(code) == msg, "code %d: firmware says %r" % (
            code,
            fw_errors.message(code),
        )


def test_every_device_code_is_in_the_error_table() -> None:
    rows = _error_rows()
    missing = [c for c in fw_safety.MESSAGES if c not in rows]
    assert not missing, "device codes missing from the table: %s" % missing


def test_codes_named_by_entries_are_in_the_error_table() -> None:
    rows = _error_rows()
    for header, body in ENTRIES.items():
        errs = body.split("- **Errors:**", 1)[1].split("\n- **", 1)[0]
        for code in re.findall(r"(?<![\w.])(-[1-4]\d\d|2\d\d)(?![\w.])", errs):
            assert int(code) in rows, "%s names error %s, not in the error table" % (header, code)


def test_suffix_table_is_the_firmwares() -> None:
    table = dict(re.findall(r"\| `([A-Z]{1,2})` \| (1E[-+]\d\d)", TEXT))
    assert {k: int(v.split("E")[1]) for k, v in table.items()} == dict(fw_units._MULTIPLIERS)


def test_default_limits_are_the_firmwares() -> None:
    lim = fw_limits.Limits()
    defaults = {
        "SYSTem:LIMit:CURRent": "%s mA" % _dec(lim.max_code * 3, 2_000),
        "SYSTem:LIMit:FREQuency": "%s kHz" % _dec(lim.max_freq_hz, 1000),
        "SYSTem:LIMit:DUTY": "%d" % lim.max_duty_pct,
        "SYSTem:LIMit:SHANnon": "%.2f" % (lim.shannon_k100 / 100),
        "SYSTem:LIMit:AREA": "%s cm2" % _dec(lim.area_um2, 100_000_000),
        "SYSTem:LIMit:CHARge": "%s uC" % _dec(lim.max_charge_pc, 1_000_000),
    }
    for header, value in defaults.items():
        assert ("- **Default:** %s" % value) in ENTRIES[header], "%s: default %s" % (header, value)


# --------------------------------------------------------------------------- the examples


def restore_commands() -> list[str]:
    """Put back what *RST leaves alone, to the firmware's own defaults."""
    lim = fw_limits.Limits()
    amps = _dec(lim.max_code * 3, 2_000_000)
    return [
        "OUTP:GLOB OFF",
        "SYST:HEAR 0;:SYST:SESS:LIM 0;*ESE 0;*SRE 0",
        "SYST:LIM:CURR %s;FREQ %d;DUTY %d" % (amps, lim.max_freq_hz, lim.max_duty_pct),
        "SYST:LIM:SHAN %s;AREA %s;CHAR %s"
        % (
            _dec(lim.shannon_k100, 100),
            _dec(lim.area_um2, 100_000_000),
            _dec(lim.max_charge_pc, 10**12),
        ),
        "*RST;*CLS",
    ]


def _examples() -> list[Any]:
    out = []
    for b in blocks(TEXT, str(DOC), ("scpi",)):
        above = [m for m in HEADING.finditer(TEXT) if TEXT.count("\n", 0, m.start()) < b.lineno]
        name = above[-1].group(1) if above else "conventions"
        out.append(pytest.param(b, id="%s-L%d" % (name, b.lineno)))
    return out


@pytest.fixture(scope="module")
def doc_board(real_port: str | None) -> Iterator[VirtualBoard | None]:
    """A board of this module's own: the examples save and recall presets, which need a
    contiguous block of heap that a board worn by the whole suite may no longer have (a
    known limit of the 192 KiB heap on the 64-bit unix port)."""
    if real_port:
        yield None
        return
    with VirtualBoard() as board:
        yield board


SECTION = re.compile(r"^## (.+)$", re.M)


def wait_ready(client: ScpiClient, seconds: float = 30.0) -> None:
    """Poll *IDN? until the board answers (after a power cycle it boots first)."""
    deadline = time.monotonic() + seconds
    saved = client.link.timeout
    client.link.timeout = 0.5
    try:
        while True:
            client.link.reset_input_buffer()
            client.link.write(b"\n*IDN?\n")
            if client.link.readline().startswith(b"PicoStim,"):
                return
            assert time.monotonic() < deadline, "the board did not come back"
    finally:
        client.link.timeout = saved


_section_seen: list[str] = []


def _section(lineno: int) -> str:
    above = [m for m in SECTION.finditer(TEXT) if TEXT.count("\n", 0, m.start()) < lineno]
    return above[-1].group(1) if above else ""


@pytest.fixture
def doc_inst(
    doc_board: VirtualBoard | None, real_port: str | None, request: pytest.FixtureRequest
) -> Iterator[ScpiClient]:
    port = real_port or doc_board.port  # type: ignore[union-attr]
    block = (
        request.node.callspec.params.get("block") if hasattr(request.node, "callspec") else None
    )
    if doc_board is not None and block is not None:
        # Each section of the reference starts on a freshly powered board (flash kept): over
        # some 130 examples the 192 KiB heap of the 64-bit unix port fragments until a file
        # write can fail with -225, a known limit (docs/reliability.md), not the protocol.
        section = _section(block.lineno)
        if _section_seen and _section_seen[-1] != section:
            doc_board.power_cycle()
        _section_seen.append(section)
    with ScpiClient(port, timeout=5) as client:
        if doc_board is not None:
            wait_ready(client)
        client.write("*RST;*CLS")
        assert client.query("*OPC?") == "1"
        yield client


@pytest.fixture
def bench(doc_board: VirtualBoard | None) -> Iterator[None]:
    """On the virtual board: interlock closed and trigger low, as a bench at rest."""
    if doc_board is not None:
        doc_board.set_interlock(True)
        doc_board.set_input(PINS["TRIGGER"], 0)
    yield


@pytest.mark.parametrize("block", _examples())
def test_example(block: Block, bench: None, doc_inst: ScpiClient) -> None:
    inst = doc_inst
    inst.write("SYST:FAUL:CLE;*CLS")
    assert inst.query("SYST:LOCK?") == "0", "the board's limits are locked: cannot run examples"
    checks: list[Check] = []
    try:
        run_exchanges(inst, scpi_exchanges(block), str(DOC), checks)
        assert checks, "empty example"
        failed = [str(c) for c in checks if not c.ok]
        assert not failed, "\n".join(failed)
        assert inst.query("SYST:LOCK?") == "0", "the example must leave the limits unlocked"
    finally:
        with contextlib.suppress(PicoStimError, ValueError):  # a board that died has said so
            for line in restore_commands():
                inst.write(line)
            inst.errors()
    assert inst.query("*OPC?") == "1"


def test_restore_commands_are_accepted(inst: ScpiClient) -> None:
    for line in restore_commands():
        inst.command(line)
    lim = fw_limits.Limits()
    assert inst.query("SYST:LIM:DUTY?;FREQ?") == "%d;%s" % (
        lim.max_duty_pct,
        fw_units.format_fixed(lim.max_freq_hz, 1),
    )
