"""The SCPI core as a user meets it through the serial port (IEEE 488.2 / SCPI-1999)."""

from __future__ import annotations

import re

import pytest
from support import wait_until

from picostim.client import ScpiClient


def test_idn_has_four_fields_with_uid_and_version(inst: ScpiClient) -> None:
    fields = inst.query("*IDN?").split(",")
    assert len(fields) == 4
    assert fields[0] == "PicoStim"
    assert re.fullmatch(r"[0-9a-f]{16}", fields[2])
    assert re.fullmatch(r"\d+\.\d+\.\d+", fields[3])


def test_empty_error_queue(inst: ScpiClient) -> None:
    assert inst.query("SYST:ERR?") == '0,"No error"'


@pytest.mark.parametrize(
    "header", ["SYSTem:ERRor?", "SYST:ERR?", "syst:err?", "SYSTEM:ERROR:NEXT?"]
)
def test_header_forms(inst: ScpiClient, header: str) -> None:
    assert inst.query(header) == '0,"No error"'


def test_unknown_header_queues_113_and_next_line_works(inst: ScpiClient) -> None:
    inst.write("FOO:BAR 1")
    assert inst.query("SYST:ERR?").startswith("-113,")
    assert inst.query("SYST:ERR?") == '0,"No error"'


def test_partial_long_form_is_undefined(inst: ScpiClient) -> None:
    inst.write("SYSTE:ERR?")
    assert inst.query("SYST:ERR?").startswith("-113,")


def test_several_commands_on_one_line_join_replies(inst: ScpiClient) -> None:
    assert inst.query("*OPC?;SYST:ERR?") == '1;0,"No error"'


def test_crlf_line_endings_accepted(inst: ScpiClient) -> None:
    inst.link.write(b"*OPC?\r\n")
    assert inst.read_line() == "1"


def test_over_long_line_queues_363_and_parser_recovers(inst: ScpiClient) -> None:
    inst.write("SYST:ERR?" + "X" * 2000)
    assert inst.query("SYST:ERR?").startswith("-363,")
    assert inst.query("*OPC?") == "1"


def test_garbage_bytes_queue_102_and_parser_recovers(inst: ScpiClient) -> None:
    inst.link.write(b"\xff\xfe\x01garbage\n")
    assert inst.query("SYST:ERR?").startswith("-102,")
    assert inst.query("*OPC?") == "1"


def test_error_queue_overflow_reports_350(inst: ScpiClient) -> None:
    for _ in range(20):
        inst.write("NOPE")
    codes = [code for code, _ in inst.errors()]
    assert len(codes) == 16
    assert codes[-1] == -350
    assert set(codes[:-1]) == {-113}


def test_cls_empties_queue_and_esr(inst: ScpiClient) -> None:
    inst.write("NOPE")
    inst.write("*CLS")
    assert inst.query("SYST:ERR?") == '0,"No error"'
    assert inst.query("*ESR?") == "0"


def test_esr_reports_command_error_bit(inst: ScpiClient) -> None:
    inst.write("NOPE")
    assert int(inst.query("*ESR?")) & 0x20
    assert inst.query("*ESR?") == "0"


def test_self_test_passes(inst: ScpiClient) -> None:
    # *RST lets a pulse in flight end: *TST? waits up to 300 ms for it, and refuses with -221
    # while a longer one (a 2 s phase left by an earlier test) still plays.
    def self_test() -> str | None:
        reply = inst.query("*TST?;*OPC?")
        if reply == "1":
            assert [c for c, _ in inst.errors()] == [-221]
            return None
        return reply

    assert wait_until(self_test, 10, "*TST? run") == "0;1"


def test_thousand_back_to_back_queries(inst: ScpiClient) -> None:
    inst.link.write(b"*OPC?\n" * 1000)
    answers = [inst.read_line() for _ in range(1000)]
    assert answers == ["1"] * 1000
