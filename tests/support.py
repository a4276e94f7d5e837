"""Helpers shared by the tests (on the path through pytest.ini's `pythonpath`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import serial

T = TypeVar("T")


def wait_until(cond: Callable[[], T], timeout: float = 5.0, what: str = "condition") -> T:
    """Poll `cond` until it returns something true, and return that; fail at the deadline.

    Time passes only here, against a deadline: no test sleeps its way past a race.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, "%s not reached within %.1f s" % (what, timeout)
        time.sleep(0.005)


def read_until(link: serial.Serial, ending: bytes, timeout: float = 10.0) -> bytes:
    """Raw bytes from the port up to `ending` (a prompt, a banner); fail at the deadline."""
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(ending):
        assert time.monotonic() < deadline, "no %r on the port; got %r" % (ending, data[-300:])
        data += link.read(1)
    return data
