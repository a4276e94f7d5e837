"""SCPI on the virtual board: round trip, back-to-back throughput (commands lost), PyVISA.

Round trip: one query written, its reply read, the next written (`*OPC?`, and a setting
with its query). Throughput: every line written back to back by one thread while another
reads the replies; each line is `*ESE k;*ESE?` with k counting 0..255 over and over, so every
reply says which line it answers and a lost, repeated or reordered command shows. The same
through PyVISA (pyvisa-py, ASRL resource): queries one by one, and in blocks of 50 written
before their replies are read.

    python bench/scpi_perf.py [--quick]
"""

from __future__ import annotations

import threading
import time
from typing import Any

from common import Table, board, emit, log, parser, stats


def round_trips(query: Any, command: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        query(command)
        out.append(time.perf_counter() - t)
    return out


def tagged_lines(n: int) -> list[bytes]:
    return [b"*ESE %d;*ESE?\n" % (i % 256) for i in range(n)]


def back_to_back(inst: Any, n: int) -> tuple[float, int, int]:
    """(seconds, replies received, replies wrong) for n tagged lines written back to back."""
    lines = tagged_lines(n)
    got: list[str] = []

    def reader() -> None:
        deadline = time.monotonic() + 120
        while len(got) < n and time.monotonic() < deadline:
            try:
                got.append(inst.read_line())
            except Exception:
                return

    th = threading.Thread(target=reader)
    t = time.perf_counter()
    th.start()
    for i in range(0, n, 64):
        inst.link.write(b"".join(lines[i : i + 64]))
    th.join()
    elapsed = time.perf_counter() - t
    wrong = sum(1 for i, r in enumerate(got) if r != str(i % 256))
    return elapsed, len(got), wrong


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    n_rtt = 200 if args.quick else 2000
    n_flood = 500 if args.quick else 10_000
    rtt = Table(
        "SCPI round trip on the virtual board",
        ["link", "command", "queries", "median ms", "p99 ms", "max ms"],
        how=(
            "query written, reply read, next query; wall clock on the host "
            "(includes the pseudo-terminal, the supervisor's bridge and the firmware's "
            "2 ms input poll)"
        ),
    )
    thr = Table(
        "Back-to-back throughput",
        ["link", "lines", "commands", "seconds", "commands/s", "replies", "lost or wrong"],
        how=(
            "each line is `*ESE k;*ESE?` (2 commands, k = line number mod 256); lines written "
            "without waiting, replies read concurrently; lost or wrong = lines whose reply is "
            "missing or is not its own k"
        ),
    )
    with board() as (vb, inst):
        for cmd in ("*OPC?", "SOUR1:PULS:WIDT 100us;WIDT?"):
            log("round trips", cmd)
            v = stats(round_trips(inst.query, cmd, n_rtt))
            rtt.add(
                "serial (ScpiClient)",
                "`%s`" % cmd,
                v["n"],
                v["median"] * 1e3,
                v["p99"] * 1e3,
                v["max"] * 1e3,
            )
        log("back to back", n_flood)
        secs, replies, wrong = back_to_back(inst, n_flood)
        thr.add(
            "serial (ScpiClient)",
            n_flood,
            2 * n_flood,
            secs,
            2 * n_flood / secs,
            replies,
            n_flood - replies + wrong,
        )
        assert inst.query("SYST:ERR:ALL?") == '0,"No error"'
        restarts = vb.info()["restarts"]
        try:
            import pyvisa
        except ImportError:
            pyvisa = None
        if pyvisa is not None:
            rm = pyvisa.ResourceManager("@py")
            res = rm.open_resource(
                "ASRL%s::INSTR" % vb.port, read_termination="\n", write_termination="\n"
            )
            res.timeout = 60_000
            try:
                log("pyvisa round trips")
                v = stats(round_trips(res.query, "*OPC?", n_rtt))
                rtt.add(
                    "PyVISA (pyvisa-py ASRL)",
                    "`*OPC?`",
                    v["n"],
                    v["median"] * 1e3,
                    v["p99"] * 1e3,
                    v["max"] * 1e3,
                )
                n = n_flood // 5
                lines = [b.decode().rstrip("\n") for b in tagged_lines(n)]
                got = []
                t = time.perf_counter()
                for i in range(0, n, 50):
                    block = lines[i : i + 50]
                    for line in block:
                        res.write(line)
                    for _ in block:
                        got.append(res.read())
                secs = time.perf_counter() - t
                wrong = sum(1 for i, r in enumerate(got) if r != str(i % 256))
                thr.add(
                    "PyVISA, blocks of 50",
                    n,
                    2 * n,
                    secs,
                    2 * n / secs,
                    len(got),
                    n - len(got) + wrong,
                )
            finally:
                res.close()
                rm.close()
        assert vb.info()["restarts"] == restarts
    thr.notes.append("the board did not restart during these runs (VirtualBoard info 'restarts')")
    emit("scpi", [rtt, thr], args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
