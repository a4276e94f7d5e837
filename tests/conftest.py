"""Fixtures: the same tests run on the virtual board (default) or a real one (--port)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from picostim.client import ScpiClient
from picostim.sim import VirtualBoard


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--port",
        default=None,
        help="run against a real PicoStim on this serial port instead of the virtual board",
    )


@pytest.fixture(scope="session")
def real_port(request: pytest.FixtureRequest) -> str | None:
    return request.config.getoption("--port")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def session_board(real_port: str | None) -> Iterator[VirtualBoard | None]:
    if real_port:
        yield None
        return
    with VirtualBoard() as vb:
        yield vb


@pytest.fixture
def vb(session_board: VirtualBoard | None) -> VirtualBoard:
    """The virtual board's bench controls; tests that need them skip on real hardware."""
    if session_board is None:
        pytest.skip("needs the virtual board's simulated bench")
    return session_board


@pytest.fixture
def port(session_board: VirtualBoard | None, real_port: str | None) -> str:
    return real_port or session_board.port  # type: ignore[union-attr]


@pytest.fixture
def inst(port: str) -> Iterator[ScpiClient]:
    """A connected instrument, reset to defaults with an empty error queue."""
    with ScpiClient(port, timeout=5) as client:
        client.write("*RST;*CLS")
        assert client.query("*OPC?") == "1"
        yield client
