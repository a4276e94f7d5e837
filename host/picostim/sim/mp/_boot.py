"""Boot sequence of the virtual board (runs inside MicroPython, as `micropython -i -m _boot`).

It does what the rp2 port does at every reset and soft reset: mount the flash (LittleFS2,
formatted first if it holds no filesystem) at "/", make it the working directory and where
imports come from (sys.path `['', '.frozen', '/lib']`), run boot.py if there is one, then
main.py, unless this is a soft reboot from the raw REPL (mpremote's), after which the rp2 port
goes straight back to the raw REPL. After boot.py it tells the supervisor, which holds the
serial input until then: a Ctrl-C (mpremote's first byte) then reaches main.py or the REPL,
never a process that is still starting.

The simulated `machine` and `rp2` modules come from the host directory in MICROPYPATH; they
are imported before "/" becomes the flash, which hides the host's files. On a Pico those
modules live in flash, not on the heap: the supervisor gives this process a heap larger by
PICOSTIM_SIM_RESERVE bytes, and whatever of that reserve the simulator's own modules do not
use is held back (`_simlink.heap_reserve`), so the firmware gets the heap a Pico gives it.
"""

import gc
import os
import sys

gc.collect()
_before = gc.mem_alloc()

import _simlink  # noqa: E402
import machine  # noqa: E402, F401
import rp2  # noqa: E402, F401
from _flashbdev import mount  # noqa: E402

# Load the PIO assembler once and drop it again: the names it interns stay in the qstr pool
# for good, and are counted here, on the simulator's side, instead of on the firmware's.
rp2._asm()
rp2._drop_asm()
gc.collect()
_reserve = int(os.getenv("PICOSTIM_SIM_RESERVE") or 0) - (gc.mem_alloc() - _before)
_simlink.heap_reserve = bytearray(_reserve) if _reserve > 0 else None


def _run(path):
    try:
        f = open(path)
    except OSError:
        return
    with f:
        src = f.read()
    try:
        # In __main__'s globals (this module runs as __main__), as the rp2 port runs boot.py
        # and main.py: the REPL that follows sees what they defined.
        exec(compile(src, path, "exec"), globals())
    except SystemExit:
        raise  # a soft reboot, for the supervisor
    except BaseException as e:  # printed as pyexec_file prints it; the REPL follows
        sys.print_exception(e)


def _boot():
    image = os.getenv("PICOSTIM_FLASH")
    if image:
        try:
            mount(image)
            os.chdir("/")
            sys.path[:] = ["", ".frozen", "/lib"]
        except Exception as e:  # the board still comes up, with its REPL, as a Pico would
            sys.print_exception(e)
    run_main = os.getenv("PICOSTIM_RUN_MAIN") != "0"
    _run("boot.py")
    _simlink.send("up")
    if run_main:
        _run("main.py")


_boot()
