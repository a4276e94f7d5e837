"""Tests for board/stim/linebuf.py."""

import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stim.linebuf import GARBAGE, OVERRUN, LineBuffer


def test_simple_lines():
    lb = LineBuffer()
    assert lb.feed(b"*IDN?\n") == ["*IDN?"]
    assert lb.feed(b"A\r\nB\nC") == ["A", "B"]
    assert lb.pending() == 1
    assert lb.feed(b"D\r\n") == ["CD"]
    assert lb.pending() == 0


def test_bytes_like_inputs():
    lb = LineBuffer()
    assert lb.feed(bytearray(b"X 1\n")) == ["X 1"]
    assert lb.feed(memoryview(b"Y 2\nZ")) == ["Y 2"]
    assert lb.feed(b"") == []
    assert lb.feed(b"\n") == ["Z"]


def test_split_across_feeds_byte_by_byte():
    lb = LineBuffer()
    out = []
    for b in b"SOUR:PULS:WIDT 200us\r\n*OPC?\n":
        out += lb.feed(bytes([b]))
    assert out == ["SOUR:PULS:WIDT 200us", "*OPC?"]


def test_lone_cr_ignored_and_empty_lines_skipped():
    lb = LineBuffer()
    assert lb.feed(b"AB\rCD\n") == ["ABCD"]
    assert lb.feed(b"\r") == []
    assert lb.feed(b"\n\n\r\n") == []
    assert lb.feed(b"\rX\r\r\n") == ["X"]


def test_tab_and_spaces_kept():
    lb = LineBuffer()
    assert lb.feed(b"\tA  B \n") == ["\tA  B "]
    assert lb.feed(b"   \n") == ["   "]


def test_exact_maxlen_fits():
    lb = LineBuffer(8)
    assert lb.feed(b"12345678\n") == ["12345678"]
    assert lb.feed(b"12345678\r\n") == ["12345678"]
    assert lb.feed(b"123456789\n") == [OVERRUN]


def test_overrun_reported_once_and_recovers():
    lb = LineBuffer(16)
    out = lb.feed(b"x" * 40)
    assert out == []
    assert lb.pending() <= 16
    out = lb.feed(b"y" * 40 + b"\nOK\n")
    assert out == [OVERRUN, "OK"]
    assert lb.feed(b"next\n") == ["next"]


def test_garbage_marker_and_recovery():
    lb = LineBuffer()
    assert lb.feed(b"AB\x00C\nGOOD\n") == [GARBAGE, "GOOD"]
    assert lb.feed(b"\xff\xfe\n") == [GARBAGE]
    assert lb.feed(b"caf\xc3\xa9\n") == [GARBAGE]
    assert lb.feed(b"\x1b[A\n") == [GARBAGE]
    assert lb.feed(b"DEL\x7f\n") == [GARBAGE]
    assert lb.feed(b"\x01") == []
    assert lb.feed(b"\n*IDN?\n") == [GARBAGE, "*IDN?"]


def test_garbage_and_too_long_is_overrun():
    lb = LineBuffer(8)
    assert lb.feed(b"\x00" + b"a" * 20 + b"\n") == [OVERRUN]
    assert lb.feed(b"a" * 20 + b"\x00\n") == [OVERRUN]


def test_markers():
    assert OVERRUN.code == -363
    assert GARBAGE.code == -102
    assert repr(OVERRUN) == "OVERRUN"
    assert OVERRUN is not GARBAGE


def test_reset():
    lb = LineBuffer()
    lb.feed(b"partial")
    lb.reset()
    assert lb.feed(b"X\n") == ["X"]
    lb.feed(b"\x00abc")
    lb.reset()
    assert lb.feed(b"Y\n") == ["Y"]


def test_bad_maxlen():
    with pytest.raises(ValueError):
        LineBuffer(0)


def test_10000_byte_line_does_not_grow_memory():
    lb = LineBuffer(256)
    buf = lb._buf
    big = b"A" * 10_000
    chunks = [big[i : i + 64] for i in range(0, len(big), 64)]
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        lb.feed(big)
        for c in chunks:
            lb.feed(c)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lb._buf is buf and len(buf) == 256
    assert lb.pending() <= 256
    assert after - before < 512
    assert peak - before < 2048
    assert lb.feed(b"\nNEXT\n") == [OVERRUN, "NEXT"]


def _reference(stream, maxlen):
    """Straightforward model of the documented behaviour."""
    data = stream.replace(b"\r", b"")
    parts = data.split(b"\n")
    out = []
    for line in parts[:-1]:
        if len(line) > maxlen:
            out.append(OVERRUN)
        elif any(b > 126 or (b < 32 and b != 9) for b in line):
            out.append(GARBAGE)
        elif line:
            out.append(line.decode("ascii"))
    return out, parts[-1]


@given(
    st.lists(st.binary(max_size=40), max_size=20),
    st.integers(1, 32),
)
def test_random_bytes_match_reference(chunks, maxlen):
    lb = LineBuffer(maxlen)
    out = []
    for c in chunks:
        got = lb.feed(c)
        assert isinstance(got, list)
        out += got
        assert lb.pending() <= maxlen
        assert len(lb._buf) == maxlen
    expected, tail = _reference(b"".join(chunks), maxlen)
    assert out == expected
    for item in out:
        if isinstance(item, str):
            assert 0 < len(item) <= maxlen
            assert all(ch == "\t" or " " <= ch <= "~" for ch in item)
        else:
            assert item is OVERRUN or item is GARBAGE
    assert lb.pending() == min(len(tail), maxlen)


@given(st.lists(st.sampled_from([b"\n", b"\r", b"\r\n", b"ab", b"\x00", b"\xff", b"z" * 9])))
def test_terminator_heavy_streams(pieces):
    lb = LineBuffer(10)
    out = []
    for p in pieces:
        out += lb.feed(p)
    assert out == _reference(b"".join(pieces), 10)[0]
