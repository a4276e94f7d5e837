"""Safety limits on what a lead may play: checked on every change, for the whole combination.

Pure logic: `check(limits, settings, code)` raises ScpiError (-222 for a value over a limit,
-221 for a combination over one) or returns quietly. Amplitude 0 is logic-level use, where
only the timing limits apply.

Charge per phase Q = I * width; charge density D = Q / area. The Shannon criterion
k = log10(D) + log10(Q) (D in uC/cm2, Q in uC) is compared without floats or logarithms:
k <= k_max  <=>  Q^2 / area <= 10^k_max, with k_max in hundredths, evaluated in integers.
"""

import math

from stim import segments
from stim.errors import DATA_OUT_OF_RANGE, SETTINGS_CONFLICT, ScpiError

SYS_HZ = 125_000_000
_K_MARGIN = 0.001  # refuse this close to the Shannon limit: float logs are not exact
CURRENT_NUM, CURRENT_DEN = 3, 2_000_000  # amperes per DAC code


class Limits:
    __slots__ = (
        "max_code",
        "max_freq_hz",
        "max_duty_pct",
        "shannon_k100",
        "area_um2",
        "max_charge_pc",
    )

    def __init__(self):
        self.max_code = 4000  # 6 mA
        self.max_freq_hz = 10_000
        self.max_duty_pct = 50
        self.shannon_k100 = 150  # k <= 1.50
        self.area_um2 = 3_000_000  # 0.03 cm2 (1 cm2 = 1e8 um2)
        self.max_charge_pc = 2_000_000  # 2 uC per phase


def min_period(lim):
    """Shortest period the frequency limit allows, in cycles."""
    return (SYS_HZ + lim.max_freq_hz - 1) // lim.max_freq_hz


def _active(s):
    """Cycles per pulse at which an output is driven (gap excluded)."""
    return s.width if s.shape == segments.MON else 2 * s.width


def _spacing(s):
    """Shortest pulse start-to-start interval: the period, or with bursts the gap from a
    burst's last pulse to the next burst's first, if that is shorter."""
    if s.burst_count > 1:
        return min(s.period, s.burst_period - (s.burst_count - 1) * s.period)
    return s.period


def shannon_ok(lim, code, width):
    """True if charge per phase Q and density Q/area keep Shannon's k within the limit.

    Q [uC] = code * 3/2e6 A * width/125e6 s * 1e6 = 3*code*width / 250e6; area [cm2] =
    area_um2 / 1e8, so k = log10(Q^2/area) = log10(N) - log10(M) with the integers
    N = (3*code*width)^2 * 1e8 and M = 250e6^2 * area_um2. An exact integer test would need
    N**100 (kilobytes of heap); a logarithm is enough with a margin of 0.001 in k on the
    safe side, well above the 32-bit float's error here (about 1e-5).
    """
    if code == 0:
        return True
    n = (3 * code * width) ** 2 * 100_000_000
    m = 250_000_000**2 * lim.area_um2
    return math.log10(n) - math.log10(m) <= lim.shannon_k100 / 100 - _K_MARGIN


def check(lim, s, code):
    if code > lim.max_code:
        raise ScpiError(DATA_OUT_OF_RANGE, "over the current limit")
    if _spacing(s) < min_period(lim):
        raise ScpiError(SETTINGS_CONFLICT, "over the frequency limit")
    if _active(s) * 100 > lim.max_duty_pct * _spacing(s):
        raise ScpiError(SETTINGS_CONFLICT, "over the duty-cycle limit")
    if code and s.shape == segments.MON:
        raise ScpiError(SETTINGS_CONFLICT, "monophasic output needs amplitude 0")
    # Q [pC] = code * 1.5 uA * width / 125 MHz = code * width * 12 / 1000
    if code * s.width * 12 > lim.max_charge_pc * 1000:
        raise ScpiError(SETTINGS_CONFLICT, "over the charge-per-phase limit")
    if not shannon_ok(lim, code, s.width):
        raise ScpiError(SETTINGS_CONFLICT, "over the charge-density (Shannon k) limit")
