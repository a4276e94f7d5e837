"""IEEE 488.2 / SCPI-1999 command parser and dispatcher.

Registration::

    p = Parser(errors)
    p.add("SOURce#:PULSe:WIDTh", handler)
    p.add("OUTPut#[:STATe]", handler)
    p.add("*IDN", handler)

Pattern syntax: nodes separated by ``:``; each node is a mnemonic whose upper
case part is the short form (``SOURce`` -> ``SOUR``/``SOURCE``); a trailing
``#`` means the node takes a numeric suffix (1 when omitted); ``[...]``
around one node makes it optional (``[:STATe]``, ``[SOURce#:]``).  A trailing
``?`` in a pattern is ignored: one registration serves set and query.
Patterns starting with ``*`` are common commands (no other nodes allowed).
``add`` raises ValueError for a bad pattern, a duplicate or a short/long
form clash at one level.

Handlers are called ``handler(suffixes, args, query)``:

* ``suffixes`` -- tuple with one int per ``#`` node of the pattern, in
  order; 1 where the suffix (or the optional node) was omitted.  Range
  checking is the handler's job (see :func:`check_suffix`, -114).
* ``args`` -- list of raw parameter strings, split on commas outside quotes
  and parentheses, stripped.  Quoted strings keep their quotes (use
  ``units.parse_string``).  Empty list when there are none.
* ``query`` -- True when the header ended with ``?``.

A handler returns the reply text for a query (anything not None is passed
through ``str``), or None.  Replies of set commands are ignored.  It raises
``ScpiError`` for errors; any other exception is queued as -200 with the
exception's type and message (KeyboardInterrupt and SystemExit propagate).

``execute(line)`` runs one program message (one line):

* units are separated by ``;`` outside quotes; empty units are skipped;
* header and parameters are separated by whitespace;
* a header resolves against the current path, which starts at the root for
  every line, is reset by a leading ``:``, and after each command becomes
  the path up to (excluding) its last node, with the numeric suffixes typed
  there (``SOUR2:PULS:WIDT 1ms;GAP 2ms`` sets the gap of source 2).  Common
  commands (``*XXX``) are resolved at the root and leave the path alone;
* errors are queued in the ErrorQueue.  A command error (-1xx) abandons the
  rest of the line, any other error only that command;
* replies of all queries in the line are joined with ``;`` into one line:
  the result is ``[reply]`` or ``[]``.

``execute`` also accepts the ``OVERRUN``/``GARBAGE`` markers of
``stim.linebuf``: it queues their ``code`` and returns ``[]``.

Not supported: arbitrary/indefinite block data (``#<n>...``) as parameters
(a ``;`` inside a block would split the unit).
"""

from stim.errors import (
    EXECUTION_ERROR,
    HEADER_SUFFIX_OUT_OF_RANGE,
    MISSING_PARAMETER,
    OUT_OF_MEMORY,
    PARAMETER_NOT_ALLOWED,
    SYNTAX_ERROR,
    UNDEFINED_HEADER,
    ScpiError,
)
from stim.heap import release

try:
    from micropython import const
except ImportError:
    const = lambda x: x  # noqa: E731

if False:  # for mypy only (the type comments): never run, MicroPython has no typing
    from typing import Any, Callable

    # handler(suffixes, args, query) -> reply or None
    _Handler = Callable[[tuple[int, ...], list[str], bool], object]
    # A header tree node, see _NAME/_KIDS/_LEAF below.
    _Node = list[Any]
    _Leaf = tuple[_Handler, tuple[int, ...], int]

_MAX_SUFFIX_DIGITS = const(9)
_DIGITS = "0123456789"


def need_args(args, n, most=None):
    """Check the parameter count: -109 if fewer than ``n``, -108 if more than
    ``most`` (``most`` defaults to ``n``)."""
    if most is None:
        most = n
    k = len(args)
    if k < n:
        raise ScpiError(MISSING_PARAMETER)
    if k > most:
        raise ScpiError(PARAMETER_NOT_ALLOWED)


def check_suffix(value, lo, hi):
    """Return ``value`` if ``lo <= value <= hi``, else raise -114."""
    if value < lo or value > hi:
        raise ScpiError(HEADER_SUFFIX_OUT_OF_RANGE, str(value))
    return value


def query_only(query):
    """For query-only headers: the set form is an undefined header (-113)."""
    if not query:
        raise ScpiError(UNDEFINED_HEADER, "query only")


def no_query(query):
    """For set-only headers: the query form is an undefined header (-113)."""
    if query:
        raise ScpiError(UNDEFINED_HEADER, "no query form")


# A header tree node is a 4-item list (smaller than a class instance on the
# board): [long form upper case, {long form upper case: node} or None, leaf or
# None, length of the short form], where leaf = (handler, slots, nsuf): slots
# has one entry per node of the path from the root, the index into the suffix
# tuple for a "#" node or -1; nsuf is the number of "#" nodes of the pattern.
# The short form is the long form's first letters (the upper-case ones of the
# pattern), so it is matched against the long form's prefix, not stored: the
# tree is the firmware's largest long-lived structure.
_NAME = const(0)
_KIDS = const(1)
_LEAF = const(2)
_NSHORT = const(3)


def _child(kids, up):
    """The node `up` (upper case) names among `kids`, by its long or short form."""
    kid = kids.get(up)
    if kid is not None:
        return kid
    n = len(up)
    for name, node in kids.items():
        if node[_NSHORT] == n and name.startswith(up):
            return node
    return None


def _valid_mnemonic(tok):
    if not tok or not tok[0].isalpha():
        return False
    for ch in tok:
        if not (ch.isalpha() or ch in _DIGITS or ch == "_"):
            return False
    return True


def _short(name):
    return "".join([ch for ch in name if not ch.islower()]).upper()


def _parse_pattern(pattern):
    """``"OUTPut#[:STATe]"`` -> ``[("OUTPut", False, True), ("STATe", True, False)]``.

    Every node but the first must be preceded by a colon, either outside the
    brackets or inside them (``[:STATe]``, ``[SOURce#:]PULSe``).
    """
    p = pattern
    if p.startswith(":"):
        p = p[1:]
    n = len(p)
    out = []  # type: list[tuple[str, bool, bool]]
    sep = True  # a node may start here
    i = 0
    while i < n:
        c = p[i]
        if c == ":":
            if sep:
                raise ValueError("bad pattern " + pattern)
            sep = True
            i += 1
            continue
        opt = False
        if c == "[":
            j = p.find("]", i)
            if j < 0:
                raise ValueError("bad pattern " + pattern)
            tok = p[i + 1 : j]
            i = j + 1
            opt = True
            if tok.startswith(":"):
                if sep and out:
                    raise ValueError("bad pattern " + pattern)
                tok = tok[1:]
                after = False
            elif tok.endswith(":"):
                if not sep:
                    raise ValueError("bad pattern " + pattern)
                tok = tok[:-1]
                after = True
            else:
                raise ValueError("bad pattern " + pattern)
        else:
            if not sep:
                raise ValueError("bad pattern " + pattern)
            j = i
            while j < n and p[j] != ":" and p[j] != "[":
                j += 1
            tok = p[i:j]
            i = j
            after = False
        suf = tok.endswith("#")
        if suf:
            tok = tok[:-1]
        if not _valid_mnemonic(tok):
            raise ValueError("bad pattern " + pattern)
        out.append((tok, opt, suf))
        sep = after
    if sep and out:
        raise ValueError("bad pattern " + pattern)
    return out


def _exc_text(exc):
    name = type(exc).__name__
    s = str(exc)
    if s:
        return name + ": " + s
    return name


def joined(replies):
    """The response line (without its newline) of a program message's replies."""
    return ";".join([",".join(r) if isinstance(r, list) else r for r in replies])


def _queue(errors, code, detail):
    # Queue an error without ever raising (e.g. MemoryError while formatting
    # the detail): fall back to the bare code, then give up silently.
    try:
        if isinstance(detail, BaseException):
            detail = _exc_text(detail)
        errors.push(code, detail)
    except Exception:
        try:
            errors.push(code)
        except Exception:
            pass


def _unit_end(line, i, n):
    """Index of the ``;`` ending the unit starting at ``i`` (or ``n``); -1 on an
    unterminated quote."""
    q = None
    while i < n:
        c = line[i]
        if q is not None:
            if c == q:
                q = None
        elif c == ";":
            return i
        elif c == '"' or c == "'":
            q = c
        i += 1
    if q is not None:
        return -1
    return n


def _split_args(s):
    args = []
    n = len(s)
    q = None
    depth = 0
    start = 0
    i = 0
    while i < n:
        c = s[i]
        if q is not None:
            if c == q:
                q = None
        elif c == '"' or c == "'":
            q = c
        elif c == "(":
            depth += 1
        elif c == ")":
            if depth:
                depth -= 1
        elif c == "," and not depth:
            a = s[start:i].strip()
            if not a:
                raise ScpiError(SYNTAX_ERROR, "empty parameter")
            args.append(a)
            start = i + 1
        i += 1
    a = s[start:].strip()
    if not a:
        raise ScpiError(SYNTAX_ERROR, "empty parameter")
    args.append(a)
    return args


class Parser:
    def __init__(self, errors):
        self.errors = errors
        self._root = ["", None, None, 0]  # type: _Node
        # Shares equal slot tuples between leaves.
        self._slots = {}  # type: dict[tuple[int, ...], tuple[int, ...]]
        self._common = {}  # type: dict[str, _Handler]
        self._patterns = []  # type: list[str]

    # -- registration -------------------------------------------------------

    def add(self, pattern, handler):
        """Register ``handler`` for ``pattern`` (set and query); returns handler."""
        pat = pattern.strip()
        if pat.endswith("?"):
            pat = pat[:-1]
        if pat.startswith("*"):
            name = pat[1:]
            if not name or not _valid_mnemonic(name) or "_" in name:
                raise ValueError("bad common command " + pattern)
            key = pat.upper()
            if key in self._common:
                raise ValueError("duplicate " + pattern)
            self._common[key] = handler
            self._patterns.append(pat)
            return handler
        nodes = _parse_pattern(pat)
        if not nodes:
            raise ValueError("empty pattern")
        opts = []
        nsuf = 0
        slots_full = []
        for k in range(len(nodes)):
            if nodes[k][1]:
                opts.append(k)
            if nodes[k][2]:
                slots_full.append(nsuf)
                nsuf += 1
            else:
                slots_full.append(-1)
        if len(opts) == len(nodes):
            raise ValueError("all nodes optional " + pattern)
        if len(opts) > 4:
            raise ValueError("too many optional nodes " + pattern)
        # Validate every expansion before touching the tree.
        paths = []
        for mask in range(1 << len(opts)):
            skip = []
            for b in range(len(opts)):
                if mask & (1 << b):
                    skip.append(opts[b])
            path = []
            slots = []
            for k in range(len(nodes)):
                if k not in skip:
                    path.append(nodes[k][0])
                    slots.append(slots_full[k])
            paths.append((path, tuple(slots)))
        for path, _slots in paths:
            node = self._find(path, False)
            if node is not None and node[_LEAF] is not None:
                raise ValueError("duplicate " + pattern)
        for path, key in paths:
            node = self._find(path, True)
            node[_LEAF] = (handler, self._slots.setdefault(key, key), nsuf)
        self._patterns.append(pat)
        return handler

    def _find(self, path, create):
        node = self._root
        for name in path:
            long = name.upper()
            short = _short(name)
            if not long.startswith(short):
                raise ValueError("short form not a prefix at " + name)
            kids = node[_KIDS]  # type: dict[str, _Node] | None
            a = None
            if kids is not None:
                a = kids.get(long)
                if a is not None and a[_NSHORT] != len(short):
                    raise ValueError("form clash at " + name)
                for other in (short, long):
                    b = _child(kids, other)
                    if b is not None and b is not a:
                        raise ValueError("form clash at " + name)
            if a is None:
                if not create:
                    return None
                if kids is None:
                    kids = node[_KIDS] = {}
                a = [long, None, None, len(short)]
                kids[long] = a
            node = a
        return node

    def headers(self):
        """Every registered pattern, in registration order."""
        return list(self._patterns)

    # -- execution ----------------------------------------------------------

    def execute(self, line):
        """Run one program message; its response as one string in a list, [] if none."""
        replies = self.run(line)
        return [joined(replies)] if replies else []

    def run(self, line):
        """Run one program message; return the replies of its queries, in order.

        A reply is a string, or a list of strings: the comma-separated pieces of a long reply
        (SYST:ERR:ALL?, SYST:LOG?), which the serial port writes one by one, so that no reply
        needs one large block of heap. The response line is the replies joined by ';'.
        """
        errors = self.errors
        if not isinstance(line, str):
            code = getattr(line, "code", None)
            errors.push(code if isinstance(code, int) else SYNTAX_ERROR)
            return []
        replies = []
        pnode = self._root
        psuf = ()  # type: tuple[int | None, ...]
        n = len(line)
        i = 0
        while i < n:
            j = _unit_end(line, i, n)
            try:
                if j < 0:
                    i = n
                    raise ScpiError(SYNTAX_ERROR, "unterminated string")
                unit = line[i:j].strip()
                i = j + 1
                if not unit:
                    continue
                k = 0
                m = len(unit)
                while k < m and unit[k] != " " and unit[k] != "\t":
                    k += 1
                hdr = unit[:k]
                args = _split_args(unit[k:]) if k < m else []
                query = hdr.endswith("?")
                if query:
                    hdr = hdr[:-1]
                if hdr.startswith("*"):
                    handler = self._common.get(hdr.upper())
                    if handler is None:
                        if not _valid_mnemonic(hdr[1:]):
                            raise ScpiError(SYNTAX_ERROR, unit[:k])
                        raise ScpiError(UNDEFINED_HEADER, unit[:k])
                    sufs = ()  # type: tuple[int, ...]
                else:
                    handler, sufs, pnode, psuf = self._resolve(hdr, pnode, psuf, unit[:k])
                r = handler(sufs, args, query)
                if query and r is not None:
                    replies.append(r if isinstance(r, (str, list)) else str(r))
            except ScpiError as e:
                _queue(errors, e.code, e.detail)
                if -200 < e.code <= -100:
                    break
            except MemoryError:
                release()  # the reserve, so the report and what follows have room
                _queue(errors, OUT_OF_MEMORY, None)
            except Exception as e:
                _queue(errors, EXECUTION_ERROR, e)
        return replies

    def _resolve(self, hdr, pnode, psuf, shown):
        """Walk ``hdr`` from the current path; return (handler, suffixes, new
        path node, new path suffixes)."""
        if hdr.startswith(":"):
            hdr = hdr[1:]
            node = self._root
            sufs = []  # type: list[int | None]
        else:
            node = pnode
            sufs = list(psuf)
        if not hdr:
            raise ScpiError(SYNTAX_ERROR, shown)
        parent = node
        n = len(hdr)
        i = 0
        while i <= n:
            j = hdr.find(":", i)
            if j < 0:
                j = n
            tok = hdr[i:j]
            if not _valid_mnemonic(tok):
                raise ScpiError(SYNTAX_ERROR, shown)
            up = tok.upper()
            kids = node[_KIDS]  # type: dict[str, _Node] | None
            if kids is None:
                raise ScpiError(UNDEFINED_HEADER, shown)
            kid = _child(kids, up)
            suf = None
            if kid is None:
                k = len(up)
                while k > 0 and up[k - 1] in _DIGITS:
                    k -= 1
                if k == len(up):
                    raise ScpiError(UNDEFINED_HEADER, shown)
                kid = _child(kids, up[:k])
                if kid is None:
                    raise ScpiError(UNDEFINED_HEADER, shown)
                if len(up) - k > _MAX_SUFFIX_DIGITS:
                    raise ScpiError(HEADER_SUFFIX_OUT_OF_RANGE, shown)
                suf = int(up[k:])
            parent = node
            node = kid
            sufs.append(suf)
            i = j + 1
        leaf = node[_LEAF]  # type: _Leaf | None
        if leaf is None:
            raise ScpiError(UNDEFINED_HEADER, shown)
        handler, slots, nsuf = leaf
        vals = [1] * nsuf
        for k in range(len(slots)):
            s = sufs[k]
            if s is not None:
                slot = slots[k]
                if slot < 0:
                    raise ScpiError(UNDEFINED_HEADER, shown)
                vals[slot] = s
        sufs.pop()
        return handler, tuple(vals), parent, tuple(sufs)
