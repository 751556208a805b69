"""95% confidence intervals of a mean, without scipy, and the overlap rule `compare` uses for significance.

Student's t quantile t(0.975, df): a table for df 1..30 (to 6 decimals, checked against numerical integration of
the t density), and for df > 30 the normal quantile (statistics.NormalDist) with the Cornish-Fisher expansion in
1/df (Abramowitz & Stegun 26.7.5), which agrees with the exact quantile to 1e-6 from df 31 on; a bare normal
quantile would be 4% too narrow at df 30.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence

T_975 = (  # t(0.975, df) for df = 1..30
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
    2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
    2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)


def t_quantile_975(df: int) -> float:
    """The 97.5th percentile of Student's t with df degrees of freedom (two-sided 95%). Raises ValueError for df < 1."""
    if df < 1:
        raise ValueError(f"t quantile needs at least 1 degree of freedom, got {df}")
    if df <= len(T_975):
        return T_975[df - 1]
    z = statistics.NormalDist().inv_cdf(0.975)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@dataclasses.dataclass(frozen=True)
class MeanInterval:
    """Mean of n values and the half-width of its 95% t interval (None for n < 2: no spread to go on)."""

    mean: float
    half_width: float | None
    n: int

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width


def mean_interval(values: Sequence[float]) -> MeanInterval:
    """mean +- t(0.975, n-1) x stdev / sqrt(n). Raises ValueError for no values."""
    n = len(values)
    if n == 0:
        raise ValueError("interval of no values")
    mean = statistics.fmean(values)
    if n < 2:
        return MeanInterval(mean, None, n)
    return MeanInterval(mean, t_quantile_975(n - 1) * statistics.stdev(values) / math.sqrt(n), n)


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two closed intervals (low, high) share a point; high may be math.inf (unbounded)."""
    return a[0] <= b[1] and b[0] <= a[1]
