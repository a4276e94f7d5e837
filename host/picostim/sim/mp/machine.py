"""Simulated `machine` module of the virtual board (runs inside MicroPython).

It offers the part of the rp2 port's `machine` API that PicoStim's firmware uses, with the
same names and behaviour, and reports every hardware effect to the supervisor, which keeps
the pin levels, the PIO blocks and the watchdog of the virtual RP2040.
"""

import sys

import _simlink as _L

PWRON_RESET = 1
WDT_RESET = 3
SOFT_RESET = 5  # not returned by reset_cause on rp2; soft resets keep the last cause

_reset_cause = PWRON_RESET


def _read_env():
    global _reset_cause
    import os

    c = os.getenv("PICOSTIM_RESET_CAUSE")
    if c:
        _reset_cause = int(c)


_read_env()


def reset_cause():
    return _reset_cause


def unique_id():
    import os

    uid = os.getenv("PICOSTIM_UID") or "e66038b7138f5e2d"
    return bytes(int(uid[i : i + 2], 16) for i in range(0, len(uid), 2))


def freq(*args):
    if args:
        raise ValueError("the virtual board runs at 125 MHz")
    return 125_000_000


def reset():
    """Hard reset: the supervisor restarts the board (PIO and GPIO back to power-on state)."""
    _L.request("reset")
    sys.exit(0)


def soft_reset():
    _L.request("soft_reset")
    sys.exit(0)


def idle():
    _L.poll_inputs()


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


def bootloader(*args):
    raise OSError("no bootloader on the virtual board")


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    _irqs = {}  # pin -> (handler, trigger, Pin)

    def __init__(self, id, mode=-1, pull=-1, *, value=None, alt=-1):
        if isinstance(id, str):
            if id != "LED":
                raise ValueError("unknown pin %s" % id)
            id = 25
        if not 0 <= id < 30:
            raise ValueError("invalid pin")
        self._id = id
        self._mode = Pin.IN
        self._pull = None
        self._value = 0
        self.init(mode, pull, value=value, alt=alt)

    def init(self, mode=-1, pull=-1, *, value=None, alt=-1):
        if value is not None:
            self._value = 1 if value else 0
        if mode != -1:
            self._mode = mode
        if pull != -1:
            self._pull = pull
        if mode == Pin.ALT:
            _L.send("pinalt", self._id, alt)
        else:
            _L.send(
                "pin",
                self._id,
                self._mode,
                -1 if self._pull is None else self._pull,
                self._value,
            )

    def value(self, v=None):
        if v is None:
            if self._mode == Pin.OUT:
                return self._value
            _L.poll_inputs()
            lv = _L.levels.get(self._id)
            if lv is None:
                return 1 if self._pull == Pin.PULL_UP else 0
            return lv
        v = 1 if v else 0
        if v != self._value:
            self._value = v
            if self._mode == Pin.OUT:
                _L.send("pinv", self._id, v)

    __call__ = value

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    high = on
    low = off

    def toggle(self):
        self.value(1 - self._value)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=False):
        Pin._irqs[self._id] = (handler, trigger, self)
        return None

    def __repr__(self):
        return "Pin(GPIO%d)" % self._id


def _fire_irqs(pin, level):
    ent = Pin._irqs.get(pin)
    if ent is None or ent[0] is None:
        return
    handler, trigger, obj = ent
    if (level and trigger & Pin.IRQ_RISING) or (not level and trigger & Pin.IRQ_FALLING):
        handler(obj)


_L.listen(_fire_irqs)


class Signal:
    def __init__(self, pin, *, invert=False):
        self._pin = pin
        self._inv = invert

    def value(self, v=None):
        if v is None:
            return self._pin.value() ^ self._inv
        self._pin.value((1 if v else 0) ^ self._inv)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class WDT:
    """The RP2040 watchdog: cannot be stopped once started; max timeout 8388 ms."""

    def __init__(self, id=0, timeout=5000):
        if timeout > 8388:
            raise ValueError("timeout too long")
        self._timeout = timeout
        self._last = None
        _L.send("wdt", timeout)

    def feed(self):
        import time

        _L.poll_inputs()
        now = time.ticks_ms()
        # Tell the supervisor at most every eighth of the timeout: cheap and still exact enough.
        if self._last is None or time.ticks_diff(now, self._last) >= self._timeout // 8:
            self._last = now
            _L.send("wdtfeed")


class _Mem:
    def __init__(self, width):
        self._w = width

    def __getitem__(self, addr):
        return int(_L.request("mem", self._w, addr) or 0)

    def __setitem__(self, addr, value):
        _L.send("mem", self._w, addr, value & 0xFFFFFFFF)


mem8 = _Mem(8)
mem16 = _Mem(16)
mem32 = _Mem(32)


class Timer:
    """Software timers, serviced whenever the firmware calls into `machine` (idle, WDT.feed,
    pin reads). The virtual board has no other way into a running MicroPython thread."""

    ONE_SHOT = 0
    PERIODIC = 1
    _active = []

    def __init__(self, id=-1, **kw):
        self._cb = None
        if kw:
            self.init(**kw)

    def init(self, *, mode=PERIODIC, freq=-1, period=-1, callback=None, tick_hz=1000):
        import time

        if freq > 0:
            period = int(1000 / freq)
            tick_hz = 1000
        self._period = int(period * 1000 // tick_hz)
        self._mode = mode
        self._cb = callback
        self._due = time.ticks_add(time.ticks_ms(), self._period)
        if self not in Timer._active:
            Timer._active.append(self)

    def deinit(self):
        if self in Timer._active:
            Timer._active.remove(self)


def _service_timers():
    import time

    now = time.ticks_ms()
    for t in list(Timer._active):
        if time.ticks_diff(now, t._due) >= 0:
            if t._mode == Timer.PERIODIC:
                t._due = time.ticks_add(t._due, t._period)
            else:
                t.deinit()
            if t._cb:
                t._cb(t)


_L.listen(lambda pin, level: None)


class I2C:
    """I2C bus of the virtual board. Devices on it are simulated by the supervisor."""

    def __init__(self, id, *, scl=None, sda=None, freq=400000, timeout=50000):
        self._id = id

    def scan(self):
        r = _L.request("i2cscan", self._id)
        return [int(a) for a in r.split()] if r else []

    def writeto(self, addr, buf, stop=True):
        r = _L.request("i2cw", self._id, addr, bytes(buf).hex() or "-")
        if r != "ack":
            raise OSError(5)  # EIO, as the rp2 port raises when no device acknowledges
        return len(buf)

    def readfrom(self, addr, nbytes, stop=True):
        r = _L.request("i2cr", self._id, addr, nbytes)
        if r.startswith("nak"):
            raise OSError(5)
        return bytes.fromhex(r)
