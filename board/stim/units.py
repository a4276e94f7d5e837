"""Exact decimal numbers, units and SCPI parameter helpers.

No floats anywhere: the RP2040 port has 32-bit single precision floats, which
cannot even hold 1 s in 8 ns steps.  Numbers are parsed into an exact pair
``(mant, exp)`` meaning ``mant * 10**exp`` with Python ints.

Number syntax (IEEE 488.2 <DECIMAL NUMERIC PROGRAM DATA> plus suffix)::

    [+|-] digits [. [digits]] | [+|-] . digits     mantissa
    [e|E [+|-] digits]                              exponent
    [whitespace] [suffix]                           SCPI-1999 7.7.3 suffix

Results are normalised: ``mant`` has no trailing zeros and zero is ``(0, 0)``.
Limits (so a hostile line cannot exhaust the heap): at most 30 significant
digits, at most 4 digits in the written exponent, and a magnitude
``1e-30 <= |value| < 1e31`` (scientific exponent within +-30, so ``exp`` of
the result is within -59..30); anything beyond raises -222 "Data out of
range".  Zero is always accepted.

Errors raised (all :class:`stim.errors.ScpiError`):

    -109  empty text
    -104  not numeric at all (character or string data, e.g. ``ON``, ``'1'``)
    -102  malformed number (``1.2.3``, ``1e``, ``--1``, ``1 2``)
    -224  ``NAN``, ``INF``, ``INFINITY``, ``NINF`` (optionally signed)
    -131  unknown suffix, or a suffix of the wrong unit (``200Hz`` for seconds)
    -138  any suffix when ``unit`` is None
    -222  more than 30 significant digits, or magnitude out of range

Suffix = optional multiplier + unit, case-insensitive (SCPI-1999 7.7.3):

    ====== ====== ====== ====== ====== ====== ====== ====== ====== ====== ====== ======
    EX     PE     T      G      MA     K      M      U      N      P      F      A
    1e18   1e15   1e12   1e9    1e6    1e3    1e-3   1e-6   1e-9   1e-12  1e-15  1e-18
    ====== ====== ====== ====== ====== ====== ====== ====== ====== ====== ====== ======

Note that in SCPI "M" is milli and "MA" is mega.  The unit may also be given
alone (``s``, ``Hz``, ``A``, ...) and the suffix may be left out entirely
(base unit).  Resulting tables for the units used by PicoStim:

    unit "s"  : s, ks, ms, us, ns, ps (and MAs=1e6, Gs, Ts, PEs, EXs, fs, as)
    unit "Hz" : Hz, kHz, MHz=1e6, GHz (and mHz=1e-3 -- see below, uHz, ...)
    unit "A"  : A, mA, uA, nA, pA (and kA, MAA=1e6, ...)
    unit "V"  : V, mV, uV, kV, ...

Exceptions to plain case-insensitivity, as for real instruments:

* ``MHZ`` in any case is megahertz (SCPI-1999 7.7.3 special case; likewise
  ``MOHM`` is megohm for unit "OHM"),
* except the exact spelling ``mHz``, which is millihertz (``mhz`` and ``MHz``
  are mega).
* ``mA``/``MA`` with unit "A" is milliamp (multiplier M + unit A); megaamp is
  ``MAA``.  ``ms``/``MS`` with unit "s" is millisecond.

The other helpers:

* ``to_units(mant, exp, num, den=1)`` -- exact ``mant*10**exp*num/den``
  rounded half away from zero (e.g. seconds to 125 MHz cycles).
* ``format_fixed(num, den, digits=7)`` -- NR3 text of ``num/den``.
* ``keyword``, ``special``, ``parse_bool``, ``parse_int``, ``parse_string``.
"""

from stim.errors import (
    DATA_OUT_OF_RANGE,
    DATA_TYPE_ERROR,
    ILLEGAL_PARAMETER_VALUE,
    INVALID_SUFFIX,
    MISSING_PARAMETER,
    SUFFIX_NOT_ALLOWED,
    SYNTAX_ERROR,
    ScpiError,
)

try:
    from micropython import const
except ImportError:
    const = lambda x: x  # noqa: E731

MAX_DIGITS = const(30)
MAX_EXP = const(30)
_MAX_EXP_DIGITS = const(4)

_DIGITS = "0123456789"

_MULTIPLIERS = (
    ("EX", 18),
    ("PE", 15),
    ("T", 12),
    ("G", 9),
    ("MA", 6),
    ("K", 3),
    ("M", -3),
    ("U", -6),
    ("N", -9),
    ("P", -12),
    ("F", -15),
    ("A", -18),
)

# Suffix tables, keyed by the unit as the caller spells it and by its upper
# case form.  Each table maps an upper-case suffix (plus the few exact-case
# spellings such as "mHz") to its power of ten.
_TABLES = {}  # type: dict


def _build_table(unit):
    u = unit.upper()
    t = {u: 0}
    for prefix, e in _MULTIPLIERS:
        t[prefix + u] = e
    if u == "HZ" or u == "OHM":
        t["M" + u] = 6  # MHZ / MOHM are mega (SCPI-1999 7.7.3)
    if u == "HZ":
        t["mHz"] = -3  # exact spelling only: millihertz
    _TABLES[unit] = t
    _TABLES[u] = t
    return t


for _u in ("s", "Hz", "A", "V"):
    _build_table(_u)
del _u


def suffix_exp(suffix, unit):
    """Power of ten of a unit suffix such as ``"ms"`` for ``unit`` ("s")."""
    t = _TABLES.get(unit)
    if t is None:
        t = _build_table(unit)
    e = t.get(suffix)
    if e is None:
        e = t.get(suffix.upper())
        if e is None:
            raise ScpiError(INVALID_SUFFIX, suffix)
    return e


def _is_alpha(s):
    for ch in s:
        if not ch.isalpha():
            return False
    return True


_NONNUM = ("NAN", "INF", "INFINITY", "NINF", "PINF")


def _not_a_number(s, start):
    word = s[start:].upper()
    if word in _NONNUM:
        raise ScpiError(ILLEGAL_PARAMETER_VALUE, s)
    if word and (word[0].isalpha() or word[0] in "\"'#"):
        raise ScpiError(DATA_TYPE_ERROR, s)
    raise ScpiError(SYNTAX_ERROR, s)


def parse_number(text, unit=None):
    """Parse decimal numeric data (with optional unit suffix) to ``(mant, exp)``.

    The value is exactly ``mant * 10**exp``.  See the module docstring.
    """
    s = text.strip()
    n = len(s)
    if n == 0:
        raise ScpiError(MISSING_PARAMETER)
    i = 0
    neg = False
    c = s[0]
    if c == "+" or c == "-":
        neg = c == "-"
        i = 1
    a = i
    while i < n and s[i] in _DIGITS:
        i += 1
    ip = s[a:i]
    fp = ""
    if i < n and s[i] == ".":
        i += 1
        b = i
        while i < n and s[i] in _DIGITS:
            i += 1
        fp = s[b:i]
    if not ip and not fp:
        _not_a_number(s, a)
    e = 0
    if i < n and (s[i] == "e" or s[i] == "E"):
        j = i + 1
        eneg = False
        if j < n and (s[j] == "+" or s[j] == "-"):
            eneg = s[j] == "-"
            j += 1
        b = j
        while j < n and s[j] in _DIGITS:
            j += 1
        if j > b:
            ed = s[b:j].lstrip("0")
            if len(ed) > _MAX_EXP_DIGITS:
                raise ScpiError(DATA_OUT_OF_RANGE, s)
            if ed:
                e = int(ed)
                if eneg:
                    e = -e
            i = j
        elif j > i + 1 or j >= n or not s[j].isalpha():
            # "1e", "1e+", "1e-x", "1e." : broken exponent
            raise ScpiError(SYNTAX_ERROR, s)
        # else: a letter follows the E, so it starts a suffix ("EX" multiplier)
    while i < n and (s[i] == " " or s[i] == "\t"):
        i += 1
    mult = 0
    if i < n:
        suf = s[i:]
        if not _is_alpha(suf):
            raise ScpiError(SYNTAX_ERROR, s)
        if unit is None:
            raise ScpiError(SUFFIX_NOT_ALLOWED, suf)
        mult = suffix_exp(suf, unit)
    d = (ip + fp).lstrip("0")
    if not d:
        return (0, 0)
    k = len(d)
    d = d.rstrip("0")
    if len(d) > MAX_DIGITS:
        raise ScpiError(DATA_OUT_OF_RANGE, s)
    e = e - len(fp) + (k - len(d)) + mult
    # decimal exponent of the value in scientific notation, d.ddd * 10**sci
    sci = e + len(d) - 1
    if sci > MAX_EXP or sci < -MAX_EXP:
        raise ScpiError(DATA_OUT_OF_RANGE, s)
    m = int(d)
    if neg:
        m = -m
    return (m, e)


def _round_div(num, den):
    # num/den rounded half away from zero; den != 0.
    if den < 0:
        num = -num
        den = -den
    if num < 0:
        q, r = divmod(-num, den)
        if r + r >= den:
            q += 1
        return -q
    q, r = divmod(num, den)
    if r + r >= den:
        q += 1
    return q


def to_units(mant, exp, scale_num, scale_den=1):
    """``mant * 10**exp * scale_num / scale_den`` rounded half away from zero.

    Integer arithmetic only, e.g. seconds to 125 MHz cycles:
    ``to_units(m, e, 125_000_000)``; milliamps to microamps:
    ``to_units(m, e, 1_000_000)`` for a value parsed in amps.
    """
    if scale_den == 0:
        raise ZeroDivisionError("scale_den")
    num = mant * scale_num
    den = scale_den
    if exp >= 0:
        num *= 10**exp
    else:
        den *= 10 ** (-exp)
    return _round_div(num, den)


def format_fixed(num, den=1, digits=7):
    """NR3 text of the exact rational ``num/den`` with ``digits`` significant digits.

    Rounded half away from zero, integers only: ``format_fixed(1, 5000)`` is
    ``"2.000000E-04"``, ``format_fixed(0, 1)`` is ``"0.000000E+00"``.
    """
    if den == 0:
        raise ZeroDivisionError("den")
    if digits < 1:
        raise ValueError("digits")
    neg = (num < 0) != (den < 0)
    if num < 0:
        num = -num
    if den < 0:
        den = -den
    if num == 0:
        if digits == 1:
            return "0E+00"
        return "0." + "0" * (digits - 1) + "E+00"
    # 10**e <= num/den < 10**(e+1)
    e = len(str(num)) - len(str(den))
    if e >= 0:
        if num < den * 10**e:
            e -= 1
    elif num * 10 ** (-e) < den:
        e -= 1
    p = digits - 1 - e
    if p >= 0:
        q = _round_div(num * 10**p, den)
    else:
        q = _round_div(num, den * 10 ** (-p))
    if q >= 10**digits:
        q //= 10
        e += 1
    s = str(q)
    if digits > 1:
        s = s[0] + "." + s[1:]
    if e < 0:
        es = "E-"
        e = -e
    else:
        es = "E+"
    if e < 10:
        es += "0"
    if neg:
        return "-" + s + es + str(e)
    return s + es + str(e)


def short_form(name):
    """SCPI short form of a mnemonic: its upper-case part (``SOURce`` -> ``SOUR``)."""
    return "".join([ch for ch in name if not ch.islower()])


_KW_CACHE = {}  # type: dict


def _kw_table(choices):
    t = _KW_CACHE.get(choices)
    if t is None:
        if len(_KW_CACHE) >= 32:
            _KW_CACHE.clear()
        t = {}
        idx = 0
        for name in choices:
            long = name.upper()
            if long not in t:
                t[long] = idx
            short = short_form(name).upper()
            if short not in t:
                t[short] = idx
            idx += 1
        _KW_CACHE[choices] = t
    return t


def keyword(text, choices):
    """Index of the keyword in ``choices`` that ``text`` names.

    ``choices`` is a tuple of mnemonics such as ``("BIPHasic", "MONophasic")``.
    Per SCPI only the exact short form (upper-case part, ``BIPH``) or the
    full long form (``BIPHASIC``) match, in any case.  -224 otherwise, -109
    if empty.  Tables are compiled once per distinct tuple and cached.
    """
    if not isinstance(choices, tuple):
        choices = tuple(choices)
    s = text.strip()
    if not s:
        raise ScpiError(MISSING_PARAMETER)
    idx = _kw_table(choices).get(s.upper())
    if idx is None:
        raise ScpiError(ILLEGAL_PARAMETER_VALUE, s)
    return idx


_SPECIAL = {
    "MIN": "MIN",
    "MINIMUM": "MIN",
    "MAX": "MAX",
    "MAXIMUM": "MAX",
    "DEF": "DEF",
    "DEFAULT": "DEF",
}


def special(text):
    """``"MIN"``, ``"MAX"`` or ``"DEF"`` for MINimum/MAXimum/DEFault forms, else None."""
    s = text.strip()
    if len(s) > 7:
        return None
    return _SPECIAL.get(s.upper())


_BOOL = {"ON": True, "OFF": False, "1": True, "0": False}


def parse_bool(text):
    """ON|OFF|1|0 (any case) to bool; -109 if empty, -224 otherwise."""
    s = text.strip()
    if not s:
        raise ScpiError(MISSING_PARAMETER)
    if len(s) <= 3:
        v = _BOOL.get(s.upper())
        if v is not None:
            return v
    raise ScpiError(ILLEGAL_PARAMETER_VALUE, s)


def parse_int(text, lo, hi, default=None):
    """Integer parameter in ``lo..hi``.

    Accepts decimal numeric data (``5``, ``+5``, ``5.0``, ``5e0``; a
    fraction is rounded half away from zero, as SCPI asks) and MINimum /
    MAXimum / DEFault (DEF only when ``default`` is given).  -222 when out of
    range, other errors as :func:`parse_number`.
    """
    sp = special(text)
    if sp is not None:
        if sp == "MIN":
            return lo
        if sp == "MAX":
            return hi
        if default is None:
            raise ScpiError(ILLEGAL_PARAMETER_VALUE, text.strip())
        return default
    m, e = parse_number(text)
    v = to_units(m, e, 1)
    if v < lo or v > hi:
        raise ScpiError(DATA_OUT_OF_RANGE, text.strip())
    return v


def parse_string(text):
    """Contents of an SCPI string parameter ``"..."`` or ``'...'``.

    A doubled quote of the delimiting kind stands for one quote.  -104 if
    the text is not quoted, -102 if the string is malformed, -109 if empty.
    """
    s = text.strip()
    if not s:
        raise ScpiError(MISSING_PARAMETER)
    q = s[0]
    if q != '"' and q != "'":
        raise ScpiError(DATA_TYPE_ERROR, s)
    n = len(s)
    if n < 2 or s[n - 1] != q:
        raise ScpiError(SYNTAX_ERROR, s)
    inner = s[1 : n - 1]
    i = 0
    m = len(inner)
    found = False
    while True:
        k = inner.find(q, i)
        if k < 0:
            break
        if k + 1 < m and inner[k + 1] == q:
            i = k + 2
            found = True
        else:
            raise ScpiError(SYNTAX_ERROR, s)
    if found:
        return inner.replace(q + q, q)
    return inner
