"""Pure safety logic: button debounce, heartbeat, soft-start ramp, session timer, status LED.

Nothing here touches hardware or reads the clock: every method takes `now` (ticks_ms) and
compares times only with ticks_diff, so the same code runs on the Pico, the virtual board
and in CPython unit tests.
"""

import time

# MicroPython's tick arithmetic (wrapping); plain integers under CPython, which never wrap.
ticks_diff = getattr(time, "ticks_diff", None) or (lambda a, b: a - b)
ticks_add = getattr(time, "ticks_add", None) or (lambda a, b: a + b)
ticks_ms = getattr(time, "ticks_ms", None) or (lambda: int(time.time() * 1000))
ticks_us = getattr(time, "ticks_us", None) or (lambda: int(time.time() * 1_000_000))


# Device-specific error codes (positive, as SCPI-1999 reserves them for the instrument).
INTERLOCK_OPEN = 201
HOST_LOST = 202
SESSION_OVER = 203
FAULT_LATCHED = 204
INTERLOCK_STILL_OPEN = 205
LIMITS_LOCKED = 210
WRONG_PASSCODE = 211
PASSCODE_WAIT = 212
PRESET_EMPTY = 220
PRESET_CORRUPT = 221
WATCHDOG_RESET = 230

MESSAGES = {
    INTERLOCK_OPEN: "Interlock opened; outputs stopped",
    HOST_LOST: "Host heartbeat lost; outputs stopped",
    SESSION_OVER: "Session time used up; outputs stopped",
    FAULT_LATCHED: "Fault latched; read and clear SYST:FAUL first",
    INTERLOCK_STILL_OPEN: "Interlock open; close it first",
    LIMITS_LOCKED: "Limits are locked",
    WRONG_PASSCODE: "Wrong passcode",
    PASSCODE_WAIT: "Too many wrong passcodes; wait",
    PRESET_EMPTY: "Preset empty",
    PRESET_CORRUPT: "Preset corrupt; defaults loaded",
    WATCHDOG_RESET: "Watchdog reset",
}


class Debouncer:
    """A push button: `update(level, now)` returns "short", "long" or None.

    A press must hold its level for `debounce_ms` to count. Releasing before `long_press_ms`
    is a short press; holding that long reports "long" once, while still held.
    """

    debounce_ms = 30
    long_press_ms = 2000

    def __init__(self, pressed_level=0):
        self.pressed_level = pressed_level
        self._raw = None
        self._since = 0
        self.pressed = False
        self._down_at = 0
        self._long_sent = False

    def update(self, level, now):
        if level != self._raw:
            self._raw = level
            self._since = now
            return None
        if ticks_diff(now, self._since) < self.debounce_ms:
            return None
        down = level == self.pressed_level
        if down and not self.pressed:
            self.pressed = True
            self._down_at = now
            self._long_sent = False
            return None
        if down and not self._long_sent:
            if ticks_diff(now, self._down_at) >= self.long_press_ms:
                self._long_sent = True
                return "long"
            return None
        if not down and self.pressed:
            self.pressed = False
            if not self._long_sent:
                return "short"
        return None


class Heartbeat:
    """Host-loss timeout: any received line feeds it; 0 s switches it off."""

    def __init__(self):
        self.timeout_ms = 0
        self._last = 0

    def set(self, timeout_ms, now):
        self.timeout_ms = timeout_ms
        self._last = now

    def feed(self, now):
        self._last = now

    def expired(self, now):
        return self.timeout_ms > 0 and ticks_diff(now, self._last) > self.timeout_ms


class Ramp:
    """Soft start of one lead's amplitude (DAC codes).

    Rises go at `target / ramp_ms` codes per ms, from wherever the level is; decreases and
    stops take effect at once.
    """

    def __init__(self, ramp_ms=2000):
        self.ramp_ms = ramp_ms
        self.target = 0
        self._from = 0
        self._t0 = 0
        self._level = 0

    def restart(self, now):
        """Output starts: from 0 up to the target."""
        self._from = 0
        self._level = 0
        self._t0 = now

    def set_target(self, code, now):
        cur = self.value(now)
        self.target = code
        if code <= cur:
            self._from = code
            self._level = code
        else:
            self._from = cur
        self._t0 = now

    def stop(self):
        self._from = 0
        self._level = 0

    def value(self, now):
        if self._level >= self.target and self._from >= self.target:
            return self.target
        if self.ramp_ms <= 0:
            v = self.target
        else:
            step = self.target * ticks_diff(now, self._t0) // self.ramp_ms
            v = min(self.target, self._from + max(0, step))
        self._level = v
        return v


class SessionTimer:
    """Trial-period on-time: counts while output runs; 0 s limit means no limit."""

    def __init__(self):
        self.limit_ms = 0
        self.used_ms = 0
        self._last = None

    def tick(self, running, now):
        if running and self._last is not None:
            self.used_ms += max(0, ticks_diff(now, self._last))
        self._last = now if running else None

    def remaining_ms(self):
        if not self.limit_ms:
            return None
        return max(0, self.limit_ms - self.used_ms)

    def over(self):
        return self.limit_ms > 0 and self.used_ms >= self.limit_ms


# Status LED patterns: (period ms, on ms)
LED_OFF, LED_ON, LED_FAULT, LED_LOCKED = 0, 1, 2, 3
_PATTERNS = {LED_FAULT: (200, 100), LED_LOCKED: (2000, 100)}


def led_level(state, now):
    """0/1 for the status LED: off, steady on, fast blink for a fault, a blip when locked."""
    if state == LED_ON:
        return 1
    if state == LED_OFF:
        return 0
    period, on = _PATTERNS[state]
    return 1 if now % period < on else 0
