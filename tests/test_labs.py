"""The teaching-lab worksheets (docs/labs/): run on the virtual board, every promise checked.

The worksheets' `scpi`, `bench` and `expect` blocks are executed by `picostim.labs`; the
measurement logic itself is tested here on hand-made waveforms, without a board.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from picostim.labs import (
    BENCH_VERBS,
    IMG_DIR,
    LABS_DIR,
    MEASUREMENTS,
    WORKSHEETS,
    Block,
    LabError,
    Report,
    Runner,
    _State,
    blocks,
    draw,
    measure,
    reply_matches,
    scpi_exchanges,
    worksheet_paths,
)
from picostim.pinmap import SIGNALS
from picostim.sim import VirtualBoard
from picostim.sim.waveform import Waveform

PATHS = worksheet_paths()


# --------------------------------------------------------------------------- on the board


@pytest.fixture(scope="module")
def class_board(real_port: str | None) -> Iterator[VirtualBoard]:
    """A board of its own, started for the three worksheets as a class would start one: the
    worksheets do not depend on what other tests did before."""
    if real_port:
        pytest.skip("the worksheets' bench steps and captures need the virtual board")
    with VirtualBoard() as board:
        yield board


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_worksheet_keeps_every_promise(path: Path, class_board: VirtualBoard) -> None:
    report = Runner(class_board).run(path)
    failed = "\n".join(str(c) for c in report.failures)
    assert report.ok, "%s:\n%s" % (path.name, failed)
    kinds = {b.kind for b in blocks(path.read_text(), str(path))}
    assert kinds == {"scpi", "bench", "expect"}
    assert len(report.checks) >= 30


# --------------------------------------------------------------------------- the documents


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_worksheet_layout(path: Path) -> None:
    text = path.read_text()
    assert "Never connect it" in text.split("\n## ", 1)[0], "safety note at the top"
    head = text.split("## Goals", 1)
    assert len(head) == 2 and "How to read this worksheet" in head[0], "convention at the top"
    for section in ("## Goals", "## Questions", "Answers for the instructor"):
        assert section in text
    assert "hardware/scope-wiring.md" in text


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_worksheet_pictures_exist_and_are_drawn_by_it(path: Path) -> None:
    text = path.read_text()
    shown = set(re.findall(r"!\[[^\]]*\]\(img/([\w.-]+\.png)\)", text))
    drawn = set()
    for b in blocks(text, str(path), ("bench",)):
        for _no, line in b.lines:
            words = line.split("#", 1)[0].split()
            if words and words[0] == "png":
                drawn.add(words[1])
    assert shown, "each worksheet shows captures"
    assert shown == drawn, "pictures shown %s, drawn %s" % (sorted(shown), sorted(drawn))
    for name in shown:
        assert (IMG_DIR / name).is_file(), (
            "missing %s: run python -m picostim.labs --images" % name
        )


def test_readme_lists_the_worksheets_block_lines_and_measurements() -> None:
    readme = (LABS_DIR / "README.md").read_text()
    for name in WORKSHEETS:
        assert "(%s.md)" % name in readme
    for verb in BENCH_VERBS:
        assert "| `%s" % verb in readme, "bench line %s not described" % verb
    for what in MEASUREMENTS:
        assert re.search(r"`(%s) " % re.escape(what), readme), "measurement %s missing" % what


def test_protocol_commands_used_by_the_worksheets_are_documented() -> None:
    protocol = (LABS_DIR.parent / "protocol.md").read_text()
    headings = re.findall(r"^### `([^`]+)`", protocol, re.M)
    shorts = set()
    for h in headings:
        nodes = re.sub(r"\[[^\]]*\]", "", h).replace("<n>", "").split(":")
        shorts.add(":".join("".join(c for c in n if not c.islower()) for n in nodes))
    for path in PATHS:
        for b in blocks(path.read_text(), str(path), ("scpi",)):
            for ex in scpi_exchanges(b):
                for unit in ex.send.split(";"):
                    head = unit.strip().split(" ")[0].rstrip("?").lstrip(":").upper()
                    head = re.sub(r"\d", "", head)
                    if head.startswith("*") or ":" not in head:
                        continue
                    # a unit relative to the path names the header's last nodes
                    assert any(s == head or s.endswith(":" + head) for s in shorts), (
                        "%s: %s not in docs/protocol.md" % (path.name, unit)
                    )


# --------------------------------------------------------------------------- the runner


def wave(cycles: int, **signals: list[tuple[int, int]]) -> Waveform:
    edges = [(c, SIGNALS[name], level) for name, ev in signals.items() for c, level in ev]
    return Waveform(0, cycles, {}, sorted(edges))


def pulses(*spans: tuple[int, int]) -> list[tuple[int, int]]:
    return [e for a, b in spans for e in ((a, 1), (b, 0))]


BIPHASIC = wave(
    10_000,
    ch1_a=pulses((100, 125), (1100, 1125), (2100, 2125)),
    ch1_b=pulses((131, 156), (1131, 1156), (2131, 2156)),
    trigger=pulses((90, 3000)),
)


@pytest.mark.parametrize(
    "line",
    [
        "width ch1_a = 25",
        "period ch1_a = 1000",
        "gap ch1_a ch1_b = 6",
        "delay ch1_a ch1_b = 31",
        "delay trigger ch1_a = 10",
        "pulses ch1_a = 3",
        "pulses ch1_a >= 2",
        "rises ch1_a after trigger.fall1 = 0",
        "rises ch1_b after ch1_a.rise2 = 2",
        "level ch1_a = 0",
        "current ch1 = 0",
    ],
)
def test_measurements_that_hold(line: str) -> None:
    measure(BIPHASIC, line)


@pytest.mark.parametrize(
    "line",
    [
        "width ch1_a = 24",
        "period ch1_a = 999",
        "gap ch1_a ch1_b = 5",
        "pulses ch1_a <= 2",
        "rises ch1_a after trigger = 1",
        "width ch2_a = 25",  # no pulse at all
        "delay trigger.rise2 ch1_a = 10",  # only one rise of trigger
    ],
)
def test_measurements_that_fail_say_what_was_measured(line: str) -> None:
    with pytest.raises(AssertionError):
        measure(BIPHASIC, line)


def test_rhythm_accepts_any_rotation_of_the_pattern() -> None:
    rises = [0, 10, 20, 100, 110, 120, 200, 210, 220, 300]
    wf = wave(1000, ch2_a=pulses(*((r + 1, r + 3) for r in rises)))
    measure(wf, "rhythm ch2_a = 10 10 80")
    measure(wf, "rhythm ch2_a = 80 10 10")
    with pytest.raises(AssertionError):
        measure(wf, "rhythm ch2_a = 10 80 20")


@pytest.mark.parametrize(
    "line", ["widht ch1_a = 3", "width ch9_a = 3", "width ch1_a >= 3", "width ch1_a"]
)
def test_bad_expect_lines_are_reported(line: str) -> None:
    with pytest.raises(LabError):
        measure(BIPHASIC, line)


def test_reply_placeholders() -> None:
    assert reply_matches("PicoStim,PS-4,<board id>,<version>", "PicoStim,PS-4,e66038b7,0.1.0")
    assert not reply_matches("PicoStim,PS-5,<board id>", "PicoStim,PS-4,e66038b7")
    assert reply_matches("<POWER|SOFT>", "SOFT") and not reply_matches("<POWER|SOFT>", "HARD")
    assert reply_matches('"<a>"<more>', '"x"') and reply_matches('"<a>"<more>', '"x","y"')
    assert reply_matches("1.000000E-04", "1.000000E-04")
    assert not reply_matches("1.000000E-04", "1.000000E-040")


def test_scpi_block_lines() -> None:
    text = "```scpi\n# a comment\n> A?\n< 1\n> B\n```\n"
    (b,) = blocks(text)
    ex = scpi_exchanges(b)
    assert [(e.send, e.reply) for e in ex] == [("A?", "1"), ("B", None)]
    (bad,) = blocks("```scpi\n< 1\n```\n")
    with pytest.raises(LabError):
        scpi_exchanges(bad)


def test_pictures_are_drawn(tmp_path: Path) -> None:
    out = tmp_path / "x.png"
    draw(BIPHASIC, out, ["ch1_a", "ch1_b"], zoom=(50, 400))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_picture_of_an_empty_capture_is_a_failed_check(tmp_path: Path) -> None:
    class FakeBoard:
        def start_capture(self, seconds: float) -> object:
            class Done:
                def result(self) -> Waveform:
                    return wave(1000)

            return Done()

    runner = Runner(FakeBoard(), images=tmp_path)  # type: ignore[arg-type]
    state, report = _State(), Report("x")
    bench = Block("bench", 1, [(2, "capture 0.1"), (3, "png x.png ch1_a zoom ch1_a 1ms")])
    runner._bench(bench, state, report)
    assert [c.ok for c in report.checks] == [False]
    assert "0 rise" in report.checks[0].detail
