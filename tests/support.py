"""Helpers shared by the tests (on the path through pytest.ini's `pythonpath`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

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
