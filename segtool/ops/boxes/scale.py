"""One power of two that keeps box arithmetic finite (numpy and torch alike, no imports).

Finite boxes with coordinates near 1e308 overflow: a width or an area becomes inf, and inf / inf
is NaN. Multiplying every coordinate of both sets by one power of two is exact (no rounding, short
of underflow below ~1e-300 of the largest value), so IoU and GIoU come out to the same bits as in
exact range; DIoU/CIoU differ only by their 1e-7 eps, negligible beside such sizes.
"""

from __future__ import annotations

import math


def overflow_scale(peak: float, largest: float) -> float:
    """The factor for coordinates of magnitude up to ``peak`` (1.0 when none is needed) so that areas,
    sums of two areas and squared diagonals stay below ``largest`` (the dtype's maximum)."""
    limit = math.sqrt(largest) / 8
    if not math.isfinite(peak) or peak <= limit:
        return 1.0
    return 2.0 ** (math.frexp(limit)[1] - 1 - math.frexp(peak)[1])
