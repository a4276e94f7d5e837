# ruff: noqa: F821
"""The simulated rp2 PIO assembler against adafruit_pioasm, and under MicroPython."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import adafruit_pioasm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

MP_DIR = Path(__file__).resolve().parents[1] / "host" / "picostim" / "sim" / "mp"


def _load_rp2_asm():
    """Load rp2_asm by path: putting MP_DIR on sys.path would expose the simulated
    ``machine``/``rp2`` modules to every other test in the session."""
    if "rp2_asm" in sys.modules:
        return sys.modules["rp2_asm"]
    spec = importlib.util.spec_from_file_location("rp2_asm", MP_DIR / "rp2_asm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rp2_asm"] = module
    spec.loader.exec_module(module)
    return module


rp2_asm = _load_rp2_asm()
PIOASMError = rp2_asm.PIOASMError
PIOConst = rp2_asm.PIOConst
asm_pio = rp2_asm.asm_pio
asm_pio_encode = rp2_asm.asm_pio_encode

SENTINEL = "module globals are back"


# --------------------------------------------------------------------------- DSL bodies
# Each body is paired with the pioasm text that should assemble to the same words.


def p_jmp():
    label("top")
    jmp("top")
    jmp(not_x, "top")
    jmp(x_dec, "end")
    jmp(not_y, "top")
    jmp(y_dec, "top")
    jmp(x_not_y, "end")
    jmp(pin, "top")
    jmp(not_osre, "top")
    label("end")
    nop()


T_JMP = """
top:
    jmp top
    jmp !x top
    jmp x-- end
    jmp !y top
    jmp y-- top
    jmp x!=y end
    jmp pin top
    jmp !osre top
end:
    nop
"""


def p_wait_in_out():
    wait(1, gpio, 5)
    wait(0, pin, 3)
    wait(1, irq, 2)
    wait(0, irq, rel(3))
    in_(pins, 1)
    in_(x, 32)
    in_(y, 7)
    in_(null, 24)
    in_(isr, 3)
    in_(osr, 16)
    out(pins, 2)
    out(x, 32)
    out(y, 1)
    out(null, 30)
    out(pindirs, 4)
    out(pc, 5)
    out(isr, 8)
    out(exec, 16)


T_WAIT_IN_OUT = """
    wait 1 gpio 5
    wait 0 pin 3
    wait 1 irq 2
    wait 0 irq 3 rel
    in pins, 1
    in x, 32
    in y, 7
    in null, 24
    in isr, 3
    in osr, 16
    out pins, 2
    out x, 32
    out y, 1
    out null, 30
    out pindirs, 4
    out pc, 5
    out isr, 8
    out exec, 16
"""


def p_push_pull():
    push()
    push(iffull)
    push(noblock)
    push(iffull, noblock)
    push(block)
    push(iffull, block)
    pull()
    pull(ifempty)
    pull(noblock)
    pull(ifempty, noblock)
    pull(block)
    pull(ifempty, block)


T_PUSH_PULL = """
    push
    push iffull
    push noblock
    push iffull noblock
    push block
    push iffull block
    pull
    pull ifempty
    pull noblock
    pull ifempty noblock
    pull block
    pull ifempty block
"""


def p_mov_irq_set():
    mov(x, y)
    mov(pins, invert(x))
    mov(y, reverse(isr))
    mov(exec, x)
    mov(pc, y)
    mov(isr, status)
    mov(osr, null)
    mov(x, pins)
    mov(y, osr)
    irq(3)
    irq(block, 2)
    irq(clear, 1)
    irq(rel(2))
    irq(block, rel(1))
    irq(clear, rel(0))
    irq(noblock, 5)
    set(pins, 0)
    set(x, 31)
    set(y, 7)
    set(pindirs, 1)
    word(0xE081)


T_MOV_IRQ_SET = """
    mov x, y
    mov pins, ~x
    mov y, ::isr
    mov exec, x
    mov pc, y
    mov isr, status
    mov osr, null
    mov x, pins
    mov y, osr
    irq 3
    irq wait 2
    irq clear 1
    irq 2 rel
    irq wait 1 rel
    irq clear 0 rel
    irq 5
    set pins, 0
    set x, 31
    set y, 7
    set pindirs, 1
    set pindirs, 1
"""


def p_delays_wrap():
    set(x, 1)[5]
    wrap_target()
    label("again")
    nop()[31]
    set(pins, 1)[1]
    jmp(x_dec, "again")[7]
    wrap()
    out(pins, 1)


T_DELAYS_WRAP = """
    set x, 1 [5]
.wrap_target
again:
    nop [31]
    set pins, 1 [1]
    jmp x-- again [7]
.wrap
    out pins, 1
"""


def p_sideset2():
    wrap_target()
    out(pins, 1).side(0)
    jmp("skip").side(3)[7]
    nop().side(1)[2]
    label("skip")
    set(x, 4)[1].side(2)


T_SIDESET2 = """
.side_set 2
.wrap_target
    out pins, 1 side 0
    jmp skip side 3 [7]
    nop side 1 [2]
skip:
    set x, 4 side 2 [1]
"""


def p_sideset_opt():
    pull(noblock).side(0)
    mov(x, osr)
    mov(y, isr)
    label("count")
    jmp(x_not_y, "noset")
    jmp("skip").side(1)
    label("noset")
    nop()[7]
    label("skip")
    jmp(y_dec, "count")


T_SIDESET_OPT = """
.side_set 1 opt
    pull noblock side 0
    mov x, osr
    mov y, isr
count:
    jmp x!=y noset
    jmp skip side 1
noset:
    nop [7]
skip:
    jmp y-- count
"""


def p_sideset_opt3():
    nop().side(7)[1]
    set(pins, 3)
    out(pins, 2).side(5)


T_SIDESET_OPT3 = """
.side_set 3 opt
    nop side 7 [1]
    set pins, 3
    out pins, 2 side 5
"""


def p_drg_segment():
    pull(block)
    out(pins, 2)
    out(y, 30)
    label("loop")
    jmp(y_dec, "loop")


T_DRG_SEGMENT = """
    pull block
    out pins, 2
    out y, 30
loop:
    jmp y-- loop
"""

CASES = {
    "jmp": (p_jmp, {}, T_JMP),
    "wait_in_out": (p_wait_in_out, {}, T_WAIT_IN_OUT),
    "push_pull": (p_push_pull, {}, T_PUSH_PULL),
    "mov_irq_set": (p_mov_irq_set, {}, T_MOV_IRQ_SET),
    "delays_wrap": (p_delays_wrap, {}, T_DELAYS_WRAP),
    "sideset2": (p_sideset2, {"sideset_init": (PIOConst.OUT_LOW,) * 2}, T_SIDESET2),
    "sideset_opt": (p_sideset_opt, {"sideset_init": PIOConst.OUT_LOW}, T_SIDESET_OPT),
    "sideset_opt3": (p_sideset_opt3, {"sideset_init": (PIOConst.OUT_LOW,) * 3}, T_SIDESET_OPT3),
    "sideset_pindir": (
        p_sideset_opt,
        {"sideset_init": PIOConst.OUT_LOW, "side_pindir": True},
        ".side_set 1 opt pindirs\n" + T_SIDESET_OPT.split("\n", 2)[2],
    ),
    "drg_segment": (p_drg_segment, {"out_init": (PIOConst.OUT_LOW,) * 2}, T_DRG_SEGMENT),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_adafruit_pioasm(name: str) -> None:
    body, kwargs, text = CASES[name]
    prog = asm_pio(**kwargs)(body)
    reference = adafruit_pioasm.Program(text)
    assert list(prog[0]) == list(reference.assembled)
    execctrl = prog[3]
    kw = reference.pio_kwargs
    assert execctrl >> 12 & 31 == kw.get("wrap", len(reference.assembled) - 1)
    assert execctrl >> 7 & 31 == kw.get("wrap_target", 0)
    assert bool(execctrl >> 30 & 1) == bool(kw["sideset_enable"])
    assert bool(execctrl >> 29 & 1) == bool(kw.get("sideset_pindirs", False))
    assert execctrl & ~(1 << 30 | 1 << 29 | 31 << 12 | 31 << 7) == 0


def test_program_list_layout() -> None:
    prog = asm_pio(
        out_init=(PIOConst.OUT_LOW, PIOConst.OUT_HIGH),
        set_init=PIOConst.OUT_LOW,
        sideset_init=(PIOConst.OUT_LOW,),
        in_shiftdir=PIOConst.SHIFT_RIGHT,
        out_shiftdir=PIOConst.SHIFT_RIGHT,
        autopush=True,
        autopull=True,
        push_thresh=8,
        pull_thresh=32,
        fifo_join=PIOConst.JOIN_TX,
    )(p_drg_segment)
    assert len(prog) == 8
    assert prog[0].typecode == "H"
    assert prog[1:3] == [-1, -1]
    # No instruction has .side(): the side-set is optional (SIDE_EN).
    assert prog[3] == 1 << 30 | 3 << 12
    assert prog[4] == 1 << 30 | 0 << 25 | 8 << 20 | 1 << 19 | 1 << 18 | 1 << 17 | 1 << 16
    assert prog[5:] == [(2, 3), 2, (2,)]


def test_empty_program_like_the_rp2_port() -> None:
    def empty():
        pass

    prog = asm_pio()(empty)
    assert (list(prog[0]), prog[3]) == ([], 0)


def test_chaining_order_and_chained_side_then_delay() -> None:
    def a():
        nop()[3].side(1)

    def b():
        nop().side(1)[3]

    kw = {"sideset_init": PIOConst.OUT_LOW}
    assert list(asm_pio(**kw)(a)[0]) == list(asm_pio(**kw)(b)[0]) == [0xB342]


def test_globals_restored_after_success_and_error() -> None:
    asm_pio()(p_jmp)
    assert globals()["SENTINEL"] == "module globals are back"

    def bad():
        jmp("nowhere")

    with pytest.raises(PIOASMError, match="unknown label nowhere"):
        asm_pio()(bad)
    assert globals()["SENTINEL"] == "module globals are back"
    assert globals()["asm_pio"] is rp2_asm.asm_pio


def _bad_duplicate():
    label("a")
    nop()
    label("a")


def _bad_delay_side():
    nop().side(1)
    nop()[8]  # optional 1-pin side-set leaves 3 delay bits


def _bad_delay():
    nop()[32]


def _bad_side_value():
    nop().side(4)


def _bad_in_count():
    in_(pins, 0)


def _bad_out_count():
    out(x, 33)


def _bad_set_value():
    set(x, 32)


def _bad_wrap():
    wrap()


@pytest.mark.parametrize(
    ("body", "kwargs", "message"),
    [
        (_bad_duplicate, {}, "duplicate label a"),
        (_bad_delay_side, {"sideset_init": 0}, "delay 8 too large"),
        (_bad_delay, {}, "delay 32 too large"),
        (_bad_side_value, {"sideset_init": (0, 0)}, "side-set value 4 too large"),
        (_bad_side_value, {}, "no sideset_init"),
        (_bad_in_count, {}, "bad bit count 0"),
        (_bad_out_count, {}, "bad bit count 33"),
        (_bad_set_value, {}, "set value 32 out of range"),
        (_bad_wrap, {}, "wrap before any instruction"),
    ],
)
def test_errors(body, kwargs, message: str) -> None:
    with pytest.raises(PIOASMError, match=message):
        asm_pio(**kwargs)(body)
    assert globals()["SENTINEL"] == "module globals are back"


# --------------------------------------------------------------------------- single instructions

CONDS = [("", None), ("!x", "not_x"), ("x--", "x_dec"), ("!y", "not_y"), ("y--", "y_dec")]
CONDS += [("x!=y", "x_not_y"), ("pin", "pin"), ("!osre", "not_osre")]
IN_SRC = ["pins", "x", "y", "null", "isr", "osr"]
OUT_DST = ["pins", "x", "y", "null", "pindirs", "pc", "isr", "exec"]
MOV_DST = ["pins", "x", "y", "exec", "pc", "isr", "osr"]
MOV_SRC = ["pins", "x", "y", "null", "status", "isr", "osr"]
SET_DST = ["pins", "x", "y", "pindirs"]


@st.composite
def instruction_pair(draw: st.DrawFn) -> tuple[str, str]:
    """One instruction as (DSL text, pioasm text)."""
    kind = draw(st.sampled_from(["jmp", "wait", "in", "out", "push", "pull", "mov", "irq", "set"]))
    if kind == "jmp":
        text, name = draw(st.sampled_from(CONDS))
        addr = draw(st.integers(0, 31))
        return (f"jmp({name}, {addr})" if name else f"jmp({addr})", f"jmp {text} {addr}")
    if kind == "wait":
        pol = draw(st.integers(0, 1))
        src = draw(st.sampled_from(["gpio", "pin", "irq"]))
        if src == "irq":
            idx = draw(st.integers(0, 7))
            if draw(st.booleans()):
                return f"wait({pol}, irq, rel({idx}))", f"wait {pol} irq {idx} rel"
            return f"wait({pol}, irq, {idx})", f"wait {pol} irq {idx}"
        idx = draw(st.integers(0, 31))
        return f"wait({pol}, {src}, {idx})", f"wait {pol} {src} {idx}"
    if kind in ("in", "out"):
        where = draw(st.sampled_from(IN_SRC if kind == "in" else OUT_DST))
        count = draw(st.integers(1, 32))
        fn = "in_" if kind == "in" else "out"
        return f"{fn}({where}, {count})", f"{kind} {where}, {count}"
    if kind in ("push", "pull"):
        cond = draw(st.booleans())
        mode = draw(st.sampled_from(["", "block", "noblock"]))
        flag = "iffull" if kind == "push" else "ifempty"
        args = [a for a in ((flag if cond else ""), mode) if a]
        return f"{kind}({', '.join(args)})", f"{kind} {' '.join(args)}"
    if kind == "mov":
        dst = draw(st.sampled_from(MOV_DST))
        src = draw(st.sampled_from(MOV_SRC))
        op = draw(st.sampled_from(["", "invert", "reverse"]))
        sym = {"": "", "invert": "~", "reverse": "::"}[op]
        dsl_src = f"{op}({src})" if op else src
        return f"mov({dst}, {dsl_src})", f"mov {dst}, {sym}{src}"
    if kind == "irq":
        mode = draw(st.sampled_from(["", "wait", "clear"]))
        idx = draw(st.integers(0, 7))
        rel_ = draw(st.booleans())
        dsl_idx = f"rel({idx})" if rel_ else str(idx)
        dsl_mode = {"": "", "wait": "block, ", "clear": "clear, "}[mode]
        asm = f"irq {mode} {idx}{' rel' if rel_ else ''}".replace("  ", " ")
        return f"irq({dsl_mode}{dsl_idx})", asm
    dst = draw(st.sampled_from(SET_DST))
    value = draw(st.integers(0, 31))
    return f"set({dst}, {value})", f"set {dst}, {value}"


@settings(max_examples=300, deadline=None)
@given(
    pair=instruction_pair(),
    pins=st.integers(0, 4),
    opt=st.booleans(),
    data=st.data(),
)
def test_encode_matches_adafruit(pair: tuple[str, str], pins: int, opt: bool, data) -> None:
    dsl, asm = pair
    opt = opt and pins > 0
    bits = pins + opt
    header = f".side_set {pins}{' opt' if opt else ''}\n" if pins else ""
    side = None
    if pins and (not opt or data.draw(st.booleans())):
        side = data.draw(st.integers(0, (1 << pins) - 1))
    delay = data.draw(st.integers(0, 31 >> bits))
    if side is not None:
        dsl += f".side({side})"
        asm += f" side {side}"
    dsl += f"[{delay}]"
    asm += f" [{delay}]"
    expected = adafruit_pioasm.assemble(header + asm)[0]
    # asm_pio_encode takes PINCTRL_SIDESET_COUNT, which includes the enable bit.
    assert asm_pio_encode(dsl, bits, opt) == expected


def test_encode_rejects_several_instructions() -> None:
    with pytest.raises(PIOASMError, match="exactly 1 instruction"):
        asm_pio_encode("nop()\nnop()", 0)


# --------------------------------------------------------------------------- MicroPython

MP_SCRIPT = """
import rp2_asm
from rp2_asm import asm_pio, asm_pio_encode, PIOConst

@asm_pio(sideset_init=PIOConst.OUT_LOW, out_init=(PIOConst.OUT_LOW,) * 2, out_shiftdir=1,
         autopull=True, pull_thresh=8)
def prog():
    wrap_target()
    pull(noblock).side(0)
    label("count")
    out(pins, 2)
    jmp(x_not_y, "count")[3]
    mov(y, reverse(isr)).side(1)
    irq(block, rel(1))
    wait(1, irq, 2)
    set(x, 31)[7]
    out(exec, 16)
    wrap()
    in_(pins, 32)

print(list(prog[0]))
print(prog[3], prog[4])
print(asm_pio_encode("set(pins, 1)", 0), asm_pio_encode("nop().side(1)[3]", 2, True))
"""


def _micropython() -> str | None:
    candidates = [Path(sys.executable).with_name("micropython"), Path("/tmp/v/bin/micropython")]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    return shutil.which("micropython")


def test_same_output_under_micropython(tmp_path: Path) -> None:
    binary = _micropython()
    if binary is None:
        pytest.skip("no MicroPython unix port available")
    script = tmp_path / "asm_check.py"
    script.write_text(MP_SCRIPT)
    outputs = []
    for command, env in (
        ([binary, str(script)], dict(os.environ, MICROPYPATH=str(MP_DIR))),
        ([sys.executable, str(script)], dict(os.environ, PYTHONPATH=str(MP_DIR))),
    ):
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr + done.stdout
        outputs.append(done.stdout)
    micropython_out, cpython_out = outputs
    assert micropython_out == cpython_out
    words = json.loads(micropython_out.splitlines()[0])
    assert len(words) == 9 and words[0] == 0x8080 | 1 << 12
