"""PyVISA (pyvisa-py backend) talks to PicoStim like any other SCPI instrument."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pyvisa = pytest.importorskip("pyvisa")


@pytest.fixture
def visa(port: str) -> Iterator[object]:
    rm = pyvisa.ResourceManager("@py")
    res = rm.open_resource("ASRL%s::INSTR" % port)
    res.read_termination = "\n"
    res.write_termination = "\n"
    res.timeout = 5000
    res.write("*RST;*CLS")
    yield res
    res.close()
    rm.close()


def test_idn_via_pyvisa(visa: object) -> None:
    fields = visa.query("*IDN?").split(",")  # type: ignore[attr-defined]
    assert len(fields) == 4 and fields[0] == "PicoStim"


def test_error_queue_via_pyvisa(visa: object) -> None:
    assert visa.query("SYST:ERR?") == '0,"No error"'  # type: ignore[attr-defined]
    visa.write("BOGUS:HEADER")  # type: ignore[attr-defined]
    assert visa.query("SYST:ERR?").startswith("-113,")  # type: ignore[attr-defined]


def test_thousand_queries_via_pyvisa(visa: object) -> None:
    for i in range(1000):
        assert visa.query("*OPC?") == "1", i  # type: ignore[attr-defined]
