"""core.conventions: the one H x W parser every option goes through."""

import pytest

from segtool.core.conventions import SizeError, parse_hw
from segtool.core.errors import SegtoolError


@pytest.mark.parametrize("value, expected", [
    ("320x480", (320, 480)), ("320X480", (320, 480)), ("320*480", (320, 480)), ("320,480", (320, 480)),
    (" 320 x 480 ", (320, 480)), ("224", (224, 224)), (224, (224, 224)), ([32, 64], (32, 64)), ((5, 7), (5, 7)),
])
def test_parse_hw_reads_height_by_width(value, expected):
    assert parse_hw(value) == expected


@pytest.mark.parametrize("value", ["12xq", "10by10", "", "1x2x3", "0x10", "-3x4", True, [1.5, 2], "1.5x2"])
def test_parse_hw_refuses_malformed_sizes_with_one_message(value):
    with pytest.raises(SizeError, match="crop"):
        parse_hw(value, what="crop")


def test_size_errors_are_user_errors_and_value_errors():
    with pytest.raises(SegtoolError):
        parse_hw("x")
    with pytest.raises(ValueError):
        parse_hw("x")


def test_parse_hw_rules_square_bounds_and_width_first_order():
    with pytest.raises(SizeError, match="HxW"):
        parse_hw("224", square=False)
    with pytest.raises(SizeError, match="between 64 and 10000"):
        parse_hw("1200x50", order="wh", minimum=64, maximum=10000)
    assert parse_hw("1200x800", order="wh", square=False) == (1200, 800)
    with pytest.raises(SizeError, match="WxH"):
        parse_hw("1200", order="wh", square=False)
