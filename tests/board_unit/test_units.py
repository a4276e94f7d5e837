"""Tests for board/stim/units.py: exact numbers, suffixes and parameter helpers."""

from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stim.errors import ScpiError
from stim.units import (
    format_fixed,
    keyword,
    parse_bool,
    parse_int,
    parse_number,
    parse_string,
    short_form,
    special,
    suffix_exp,
    to_units,
)

CPU_HZ = 125_000_000


def code_of(fn, *args):
    with pytest.raises(ScpiError) as ei:
        fn(*args)
    return ei.value.code


def value(pair):
    m, e = pair
    return Fraction(m) * Fraction(10) ** e


# -- parse_number: plain numbers ----------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1", (1, 0)),
        ("+1.50", (15, -1)),
        ("-0.2", (-2, -1)),
        (".5", (5, -1)),
        ("5.", (5, 0)),
        ("2e-4", (2, -4)),
        ("2E+04", (2, 4)),
        ("2.5e1", (25, 0)),
        ("3600", (36, 2)),
        ("0", (0, 0)),
        ("-0.000", (0, 0)),
        ("000120", (12, 1)),
        ("  12 \t", (12, 0)),
        ("1e0000000000000005", (1, 5)),
        ("0e9999", (0, 0)),
        ("123456789012345678901234567890", (12345678901234567890123456789, 1)),
        ("0.000000000000000000000000000001", (1, -30)),
        ("1e30", (1, 30)),
        ("9.99e30", (999, 28)),
        ("1.5e-30", (15, -31)),
        ("8.757015642791888E-16", (8757015642791888, -31)),
        ("1.23456789012345678901234567891e-30", (123456789012345678901234567891, -59)),
    ],
)
def test_parse_plain(text, expected):
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    "text, code",
    [
        ("", -109),
        ("   ", -109),
        ("abc", -104),
        ("ON", -104),
        ("MIN", -104),
        ('"1"', -104),
        ("'1'", -104),
        ("#H1F", -104),
        ("1.2.3", -102),
        ("1e", -102),
        ("1e+", -102),
        ("1e-x", -102),
        ("1e.5", -102),
        ("--1", -102),
        ("+-1", -102),
        (".", -102),
        ("+", -102),
        ("-.", -102),
        ("1 2", -102),
        ("1,2", -102),
        ("1..2", -102),
        ("5)", -102),
        ("nan", -224),
        ("NaN", -224),
        ("inf", -224),
        ("-inf", -224),
        ("+INF", -224),
        ("Infinity", -224),
        ("NINF", -224),
        ("1ms", -138),
        ("1 V", -138),
        ("9.91E37", -222),
        ("9.9E37", -222),
        ("1e31", -222),
        ("1e-31", -222),
        ("0.99e-30", -222),
        ("10e30", -222),
        ("123456789e23", -222),
        ("1ks", -138),
        ("1" * 31, -222),
        ("1" * 5000, -222),
        ("1e99999", -222),
        ("0e99999", -222),
        ("0." + "0" * 200 + "1", -222),
    ],
)
def test_parse_errors(text, code):
    assert code_of(parse_number, text) == code


def test_error_codes_carry_detail():
    with pytest.raises(ScpiError) as ei:
        parse_number("200Hz", "s")
    assert ei.value.code == -131
    assert ei.value.detail == "Hz"
    assert ei.value.msg == "Invalid suffix;Hz"


# -- parse_number: suffixes ---------------------------------------------------


@pytest.mark.parametrize(
    "suffix, exp",
    [
        ("s", 0),
        ("S", 0),
        ("ks", 3),
        ("KS", 3),
        ("ms", -3),
        ("MS", -3),
        ("Ms", -3),
        ("us", -6),
        ("US", -6),
        ("uS", -6),
        ("ns", -9),
        ("NS", -9),
        ("ps", -12),
        ("PS", -12),
        ("fs", -15),
        ("as", -18),
        ("MAs", 6),
        ("MAS", 6),
        ("Gs", 9),
        ("Ts", 12),
        ("PEs", 15),
        ("EXs", 18),
    ],
)
def test_suffix_seconds(suffix, exp):
    assert suffix_exp(suffix, "s") == exp
    assert parse_number("7" + suffix, "s") == (7, exp)
    assert parse_number("7 " + suffix, "s") == (7, exp)


@pytest.mark.parametrize(
    "suffix, exp",
    [
        ("Hz", 0),
        ("HZ", 0),
        ("hz", 0),
        ("kHz", 3),
        ("KHZ", 3),
        ("khz", 3),
        ("MHz", 6),
        ("MHZ", 6),
        ("mhz", 6),  # SCPI: MHZ in any case is mega ...
        ("mHz", -3),  # ... except this exact spelling
        ("MAHz", 6),
        ("GHz", 9),
        ("uHz", -6),
    ],
)
def test_suffix_hertz(suffix, exp):
    assert parse_number("3" + suffix, "Hz") == (3, exp)


@pytest.mark.parametrize(
    "suffix, exp",
    [
        ("A", 0),
        ("a", 0),
        ("mA", -3),
        ("MA", -3),  # M + A: milliamp
        ("ma", -3),
        ("uA", -6),
        ("UA", -6),
        ("nA", -9),
        ("pA", -12),
        ("kA", 3),
        ("MAA", 6),  # MA + A: megaamp
        ("AA", -18),
    ],
)
def test_suffix_amps(suffix, exp):
    assert parse_number("3" + suffix, "A") == (3, exp)


def test_suffix_other_units():
    assert parse_number("5mV", "V") == (5, -3)
    assert parse_number("5 kV", "V") == (5, 3)
    assert parse_number("2MOHM", "OHM") == (2, 6)
    assert parse_number("2 kohm", "Ohm") == (2, 3)


@pytest.mark.parametrize(
    "text, unit",
    [
        ("200Hz", "s"),
        ("1A", "s"),
        ("1 sec", "s"),
        ("1 mss", "s"),
        ("1m", "s"),
        ("1 foo", "s"),
        ("5 s", "Hz"),
        ("5 kHz", "A"),
        ("5 mV", "A"),
        ("1ex", "s"),
        ("1E", "A"),  # E alone is not a multiplier ... and not an exponent
    ],
)
def test_wrong_unit(text, unit):
    assert code_of(parse_number, text, unit) in (-131, -102)


def test_wrong_unit_is_131():
    assert code_of(parse_number, "200Hz", "s") == -131
    assert code_of(parse_number, "200 s", "Hz") == -131
    assert code_of(parse_number, "1.5 mV", "A") == -131


def test_suffix_syntax():
    assert code_of(parse_number, "1 m s", "s") == -102
    assert code_of(parse_number, "1ms2", "s") == -102
    assert code_of(parse_number, "1ms;", "s") == -102
    assert parse_number("\t1.5\tms ", "s") == (15, -4)
    assert parse_number("1EXs", "s") == (1, 18)  # EX multiplier, not an exponent


# -- exact conversions ---------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["200us", "0.2ms", "2e-4", "0.0002", "200000ns", "200 US", ".0002 s", "2E2us"]
)
def test_200us_is_25000_cycles(text):
    m, e = parse_number(text, "s")
    assert to_units(m, e, CPU_HZ) == 25000


def test_one_hour_exact():
    m, e = parse_number("3600", "s")
    assert to_units(m, e, CPU_HZ) == 450_000_000_000
    m, e = parse_number("3.6ks", "s")
    assert to_units(m, e, CPU_HZ) == 450_000_000_000
    m, e = parse_number("3599.999999992", "s")
    assert to_units(m, e, CPU_HZ) == 450_000_000_000 - 1


def test_current_conversions():
    m, e = parse_number("1.5mA", "A")
    assert (m, e) == (15, -4)
    assert to_units(m, e, 1_000_000) == 1500  # microamps
    assert to_units(m, e, 1_000_000_000) == 1_500_000  # nanoamps
    m, e = parse_number("250 uA", "A")
    assert to_units(m, e, 1_000_000) == 250
    m, e = parse_number("-3nA", "A")
    assert to_units(m, e, 10**9) == -3


@pytest.mark.parametrize(
    "text, cycles",
    [
        ("8ns", 1),
        ("4ns", 1),  # 0.5 cycle: half away from zero
        ("-4ns", -1),
        ("3.99ns", 0),
        ("-3.99ns", 0),
        ("12ns", 2),  # 1.5
        ("-12ns", -2),
        ("1e-30", 0),
        ("0", 0),
    ],
)
def test_to_units_rounding(text, cycles):
    m, e = parse_number(text, "s")
    assert to_units(m, e, CPU_HZ) == cycles


def test_to_units_den():
    assert to_units(1, 0, 1, 3) == 0
    assert to_units(2, 0, 1, 3) == 1
    assert to_units(1, 0, 1, 2) == 1
    assert to_units(-1, 0, 1, 2) == -1
    assert to_units(1, 0, 1, -2) == -1
    assert to_units(15, -1, 2, 1) == 3
    with pytest.raises(ZeroDivisionError):
        to_units(1, 0, 1, 0)


def _ref_round(fr):
    # half away from zero
    n, d = fr.numerator, fr.denominator
    q, r = divmod(abs(n), d)
    if 2 * r >= d:
        q += 1
    return q if n >= 0 else -q


@given(
    st.integers(-(10**30), 10**30),
    st.integers(-30, 30),
    st.integers(-(10**12), 10**12),
    st.integers(1, 10**12),
)
def test_to_units_matches_fraction(m, e, num, den):
    expected = _ref_round(Fraction(m) * Fraction(10) ** e * num / den)
    assert to_units(m, e, num, den) == expected


# -- format_fixed --------------------------------------------------------------


@pytest.mark.parametrize(
    "num, den, digits, text",
    [
        (1, 5000, 7, "2.000000E-04"),
        (-3, 2000, 7, "-1.500000E-03"),
        (0, 1, 7, "0.000000E+00"),
        (0, -5, 7, "0.000000E+00"),
        (3600, 1, 7, "3.600000E+03"),
        (1, 3, 7, "3.333333E-01"),
        (2, 3, 7, "6.666667E-01"),
        (-2, 3, 7, "-6.666667E-01"),
        (2, -3, 7, "-6.666667E-01"),
        (-2, -3, 7, "6.666667E-01"),
        (19999999, 2, 7, "1.000000E+07"),  # 9999999.5 rounds up and carries
        (99999995, 10**9, 7, "1.000000E-01"),
        (99999994, 10**9, 7, "9.999999E-02"),
        (25, 10**8, 1, "3E-07"),
        (-25, 10**8, 1, "-3E-07"),
        (0, 1, 1, "0E+00"),
        (1, 1, 3, "1.00E+00"),
        (10, 1, 3, "1.00E+01"),
        (9, 1, 3, "9.00E+00"),
        (10**120, 1, 7, "1.000000E+120"),
        (1, 10**120, 7, "1.000000E-120"),
        (450_000_000_000, CPU_HZ, 7, "3.600000E+03"),
        (25000, CPU_HZ, 7, "2.000000E-04"),
        (1, CPU_HZ, 7, "8.000000E-09"),
        (123456789, 1, 12, "1.23456789000E+08"),
    ],
)
def test_format_fixed(num, den, digits, text):
    assert format_fixed(num, den, digits) == text


def test_format_fixed_bad_args():
    with pytest.raises(ZeroDivisionError):
        format_fixed(1, 0)
    with pytest.raises(ValueError):
        format_fixed(1, 1, 0)


def _decimal_reference(num, den, digits):
    with localcontext() as ctx:
        ctx.prec = digits
        ctx.rounding = ROUND_HALF_UP  # decimal's HALF_UP is half away from zero
        ctx.Emax = 10**6
        ctx.Emin = -(10**6)
        d = Decimal(num) / Decimal(den)
        if not d:
            d = Decimal(0)  # no negative zero in NR3 output
        text = format(d, f".{digits - 1}E")
    # decimal does not pad the exponent; NR3 output uses at least two digits
    mant, exp = text.split("E")
    exp10 = int(exp)
    return f"{mant}E{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"


@given(
    st.integers(-(10**40), 10**40),
    st.integers(1, 10**40),
    st.integers(1, 15),
    st.booleans(),
)
def test_format_fixed_matches_decimal(num, den, digits, neg_den):
    if neg_den:
        num, den = -num, -den
    assert format_fixed(num, den, digits) == _decimal_reference(num, den, digits)


@given(st.integers(-(10**24), 10**24), st.integers(1, 10**24), st.integers(1, 20))
def test_format_parse_round_trip(num, den, digits):
    text = format_fixed(num, den, digits)
    m, e = parse_number(text)  # |value| is within 1e-24..1e24: always in range
    # The parsed value is the correctly rounded value ...
    assert value((m, e)) == Fraction(Decimal(_decimal_reference(num, den, digits)))
    # ... within half a unit in the last place of the exact one.
    exact = Fraction(num, den)
    if num:
        exp10 = int(text.rsplit("E", 1)[1])
        ulp = Fraction(10) ** (exp10 - digits + 1)
        assert abs(value((m, e)) - exact) <= ulp / 2
    # And formatting the parsed value again gives the same text.
    if e >= 0:
        assert format_fixed(m * 10**e, 1, digits) == text
    else:
        assert format_fixed(m, 10**-e, digits) == text


def _plain(m, e):
    """m * 10**e written without an exponent."""
    digits = str(abs(m))
    sign = "-" if m < 0 else ""
    if e >= 0:
        return sign + digits + "0" * e
    digits = digits.rjust(-e + 1, "0")
    return sign + digits[:e] + "." + digits[e:]


def _normalise(m, e):
    if m == 0:
        return (0, 0)
    while m % 10 == 0:
        m //= 10
        e += 1
    return (m, e)


_PREFIX = [("", 0), ("m", -3), ("u", -6), ("n", -9), ("k", 3), ("p", -12)]


@given(
    st.integers(-(10**29) + 1, 10**29 - 1),
    st.integers(-40, 40),
    st.sampled_from(_PREFIX),
    st.sampled_from(["e", "E", "plain"]),
    st.sampled_from(["", " ", "\t"]),
)
def test_parse_number_property(m, e, prefix, style, gap):
    pfx, pexp = prefix
    if style == "plain":
        text = _plain(m, e)
    else:
        text = f"{m}{style}{e}"
    text = text + gap + pfx + "s"
    expected = _normalise(m, e + pexp)
    sci = expected[1] + len(str(abs(expected[0]))) - 1
    if expected[0] and abs(sci) > 30:
        assert code_of(parse_number, text, "s") == -222
    else:
        assert parse_number(text, "s") == expected


@given(st.text(max_size=60), st.sampled_from([None, "s", "Hz", "A"]))
def test_parse_number_never_crashes(text, unit):
    try:
        m, e = parse_number(text, unit)
    except ScpiError as err:
        assert err.code in (-102, -104, -109, -131, -138, -222, -224)
    else:
        assert isinstance(m, int) and isinstance(e, int)
        assert len(str(abs(m))) <= 30
        assert m == 0 or -30 <= e + len(str(abs(m))) - 1 <= 30


@given(st.text(alphabet="0123456789+-.eE smkunHzA", max_size=30))
def test_parse_number_numberish_fuzz(text):
    try:
        parse_number(text, "s")
    except ScpiError as err:
        assert err.code in (-102, -104, -109, -131, -222, -224)


# -- keywords and other parameter types ---------------------------------------

SHAPES = ("BIPHasic", "MONophasic")


@pytest.mark.parametrize(
    "text, idx",
    [
        ("BIPH", 0),
        ("biph", 0),
        ("BIPHASIC", 0),
        ("Biphasic", 0),
        (" biphasic ", 0),
        ("MON", 1),
        ("mon", 1),
        ("MONOPHASIC", 1),
    ],
)
def test_keyword_match(text, idx):
    assert keyword(text, SHAPES) == idx


@pytest.mark.parametrize(
    "text", ["BIP", "BIPHA", "BIPHASICX", "MONO", "MONOPH", "B", "1", "'MON'"]
)
def test_keyword_partial_forms_rejected(text):
    assert code_of(keyword, text, SHAPES) == -224


def test_keyword_misc():
    assert code_of(keyword, "", SHAPES) == -109
    assert keyword("int", ["INTernal", "EXTernal"]) == 0
    assert keyword("EXTERNAL", ("INTernal", "EXTernal")) == 1
    assert keyword("on", ("ON", "OFF")) == 0
    assert short_form("SOURce") == "SOUR"
    assert short_form("*IDN") == "*IDN"


@pytest.mark.parametrize(
    "text, result",
    [
        ("MIN", "MIN"),
        ("min", "MIN"),
        ("MINimum", "MIN"),
        ("MINIMUM", "MIN"),
        ("MAX", "MAX"),
        ("maximum", "MAX"),
        ("DEF", "DEF"),
        (" default ", "DEF"),
        ("MINI", None),
        ("MA", None),
        ("DEFAULTS", None),
        ("5", None),
        ("", None),
        ("'MIN'", None),
    ],
)
def test_special(text, result):
    assert special(text) == result


@pytest.mark.parametrize(
    "text, result", [("ON", True), ("on", True), ("OFF", False), ("off", False), ("1", True)]
)
def test_parse_bool(text, result):
    assert parse_bool(text) is result
    assert parse_bool("0") is False


@pytest.mark.parametrize("text", ["2", "TRUE", "ONN", "O", "-1", "1.0", "'ON'"])
def test_parse_bool_rejects(text):
    assert code_of(parse_bool, text) == -224


def test_parse_bool_empty():
    assert code_of(parse_bool, " ") == -109


def test_parse_int():
    assert parse_int("5", 0, 10) == 5
    assert parse_int("+5", 0, 10) == 5
    assert parse_int("5.0", 0, 10) == 5
    assert parse_int("5e0", 0, 10) == 5
    assert parse_int("2.5", 0, 10) == 3
    assert parse_int("-2.5", -10, 10) == -3
    assert parse_int("MIN", 1, 8) == 1
    assert parse_int("maximum", 1, 8) == 8
    assert parse_int("DEF", 1, 8, 4) == 4
    assert code_of(parse_int, "DEF", 1, 8) == -224
    assert code_of(parse_int, "11", 0, 10) == -222
    assert code_of(parse_int, "-1", 0, 10) == -222
    assert code_of(parse_int, "abc", 0, 10) == -104
    assert code_of(parse_int, "5ms", 0, 10) == -138
    assert code_of(parse_int, "", 0, 10) == -109


@pytest.mark.parametrize(
    "text, result",
    [
        ('"abc"', "abc"),
        ("'abc'", "abc"),
        ('""', ""),
        ("  'x y'  ", "x y"),
        ("'a''b'", "a'b"),
        ('"a""b"', 'a"b'),
        ('"a\'b"', "a'b"),
        ("'a\"b'", 'a"b'),
        ('"a;b,c"', "a;b,c"),
        ('""""', '"'),
    ],
)
def test_parse_string(text, result):
    assert parse_string(text) == result


@pytest.mark.parametrize(
    "text, code",
    [("abc", -104), ("5", -104), ('"abc', -102), ('"', -102), ('"a"b"', -102), ("'a''", -102)],
)
def test_parse_string_errors(text, code):
    assert code_of(parse_string, text) == code
    assert code_of(parse_string, "") == -109


@given(st.text(max_size=40), st.sampled_from(['"', "'"]))
def test_parse_string_round_trip(s, q):
    quoted = q + s.replace(q, q + q) + q
    assert parse_string(quoted) == s
