"""hptune._checks: each rule accepts what it says and words itself as its errors read."""

import math
import re

import pytest

from hptune._checks import Bool, Int, Number, OneOf, Pattern, check, optional, problem
from hptune.exceptions import ConfigError


@pytest.mark.parametrize(
    ("rule", "words", "good", "bad"),
    [
        (Int(low=1), "an int >= 1", [1, 10**30], [0, 1.0, True, "1", None]),
        (Int(0, 3), "an int in [0, 3]", [0, 3], [-1, 4]),
        (Int(), "an int", [-(2**70)], [0.5]),
        (Number(low=0, low_open=True), "a finite number > 0", [1e-300, 3], [0, math.inf, True]),
        (Number(0, 1, high_open=True), "a number in [0, 1)", [0, 0.999], [1, math.nan]),
        (Number(high=5), "a finite number <= 5", [-1e9, 5], [5.1]),
        (Number(low=0, finite=False), "a number >= 0", [math.inf], [math.nan, -1]),
        (OneOf(("a", 1)), "one of 'a', 1", ["a", 1], ["b", True, 1.0]),
        (Bool(), "True or False", [True, False], [0, 1, "true"]),
        (
            Pattern(r"cuda(:\d+)?", "'cuda' or 'cuda:N'"),
            "'cuda' or 'cuda:N'",
            ["cuda:3"],
            ["cuda:"],
        ),
        (optional(Int(low=1)), "an int >= 1 or None", [None, 2], [0]),
    ],
)
def test_a_rule_accepts_what_its_words_say(rule, words, good, bad):
    assert str(rule) == words
    assert all(rule.accepts(v) for v in good)
    assert not any(rule.accepts(v) for v in bad)


def test_every_error_reads_what_rule_value_fix():
    assert problem("x", 2, Int(low=3)) == "x must be an int >= 3, got 2."
    assert problem("x", 3, Int(low=3)) is None
    message = "optimize: n_workers must be an int >= 1, got 0; use 1 for trials in this process."
    with pytest.raises(ConfigError, match=re.escape(message)):
        check("optimize: n_workers", 0, Int(low=1), fix="use 1 for trials in this process")
    assert check("x", 5, Int(low=3)) == 5
