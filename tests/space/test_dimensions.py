"""Dimensions on their own: string forms, grids, membership, narrowing, and their errors."""

from __future__ import annotations

import re

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hptune.exceptions import ConfigError, HptuneError
from hptune.space import (
    DEFAULT_GRID_POINTS,
    Choice,
    Conditional,
    FloatDimension,
    IntDimension,
    choice,
    loguniform,
    parse_form,
    randint,
    uniform,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("loguniform(1e-4, 1e-1)", loguniform(0.0001, 0.1)),
        ("uniform(0.85, 0.95)", uniform(0.85, 0.95)),
        ("uniform(-1, 1)", uniform(-1.0, 1.0)),
        ("randint(0, 5)", randint(0, 5)),
        ("randint(16, 1024, log=true)", randint(16, 1024, log=True)),
        ("choice(32, 64, 128, 256)", choice(32, 64, 128, 256)),
        ("choice(true, false)", choice(True, False)),
        ("choice(True, False, None)", choice(True, False, None)),
        ("choice(null, 'x')", choice(None, "x")),
        ("""choice('a', "b")""", choice("a", "b")),
        ("  choice( 0.1 ,0.5 )  ", choice(0.1, 0.5)),
        ("uniform(0, 1, grid=[0.1, 0.5])", uniform(0, 1, grid=[0.1, 0.5])),
        ("loguniform(1e-4, 1e-1, n_grid=4)", loguniform(1e-4, 1e-1, n_grid=4)),
    ],
)
def test_string_forms_equal_python_forms(text, expected):
    assert parse_form(text) == expected


@pytest.mark.parametrize(
    "dim",
    [
        uniform(0.85, 0.95),
        loguniform(1e-6, 1e-2, n_grid=3),
        uniform(0, 1, grid=[0.25, 0.5]),
        randint(0, 5),
        randint(1, 64, log=True, n_grid=4),
        choice(None, False, 3, 2.5, "relu"),
    ],
)
def test_repr_is_the_string_form(dim):
    assert parse_form(repr(dim)) == dim


def test_reprs_read_like_the_yaml_contract():
    assert repr(loguniform(1e-4, 1e-1)) == "loguniform(0.0001, 0.1)"
    assert repr(randint(0, 5)) == "randint(0, 5)"
    assert repr(choice(True, False)) == "choice(True, False)"
    assert repr(uniform(0, 1, n_grid=3)) == "uniform(0.0, 1.0, n_grid=3)"


@pytest.mark.parametrize("text", ["relu", "sgd", "f(x)", "max(1, 2)", "choice", ""])
def test_plain_text_is_not_a_form(text):
    assert parse_form(text) is None


def test_choice_of_a_list_and_of_values_are_the_same():
    assert choice([1, 2, 3]) == choice(1, 2, 3) == Choice((1, 2, 3))


def test_distributions_match_optuna():
    assert loguniform(1e-4, 1e-1).distribution() == FloatDistribution(1e-4, 1e-1, log=True)
    assert uniform(0, 1).distribution() == FloatDistribution(0.0, 1.0)
    assert randint(1, 8, log=True).distribution() == IntDistribution(1, 8, log=True)
    assert choice(None, "a", 1.5).distribution() == CategoricalDistribution((None, "a", 1.5))
    assert choice({"b": {}, "a": {}}).distribution() == CategoricalDistribution(("b", "a"))


def test_float_grids_linspace_and_geomspace():
    assert DEFAULT_GRID_POINTS == 5
    assert uniform(0, 1).grid_values() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert uniform(0, 1).grid_values(3) == [0.0, 0.5, 1.0]
    assert loguniform(1e-4, 1).grid_values() == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    # The per-dimension setting beats the grid-wide n_points.
    assert loguniform(1e-4, 1e-1, n_grid=4).grid_values(2) == [1e-4, 1e-3, 1e-2, 1e-1]
    assert uniform(0, 1, grid=[0.1, 0.5]).grid_values(7) == [0.1, 0.5]
    # One point is the (geometric) middle; a point range is one value.
    assert uniform(0, 1).grid_values(1) == [0.5]
    assert loguniform(1e-4, 1e-2).grid_values(1) == [pytest.approx(1e-3, rel=1e-12)]
    assert uniform(2, 2).grid_values() == [2.0]


def test_int_grids():
    assert randint(0, 5).grid_values() == [0, 1, 2, 3, 4, 5]  # both bounds inclusive
    assert randint(0, 5).grid_values(3) == [0, 1, 2, 3, 4, 5]  # few integers: all of them
    assert randint(0, 9).grid_values() == list(range(10))  # INT_GRID_CAP = 10 integers
    # 11 integers > cap: 5 evenly spaced, rounded half up: 0, 2.5, 5, 7.5, 10.
    assert randint(0, 10).grid_values() == [0, 3, 5, 8, 10]
    assert randint(0, 100).grid_values() == [0, 25, 50, 75, 100]
    assert randint(0, 5, n_grid=3).grid_values() == [0, 3, 5]
    # log: 1 * 1024 ** (i / 4) = 1, 5.66, 32, 181.02, 1024
    assert randint(1, 1024, log=True).grid_values() == [1, 6, 32, 181, 1024]
    assert randint(1, 3, n_grid=8).grid_values() == [1, 2, 3]


def test_contains_and_canonical():
    assert uniform(0, 1).contains(1) and uniform(0, 1).contains(0.0)
    assert not uniform(0, 1).contains(1.0000001) and not uniform(0, 1).contains(True)
    assert not uniform(0, 1).contains("0.5")
    assert randint(0, 5).contains(5) and randint(0, 5).contains(2.0)
    assert not randint(0, 5).contains(6) and not randint(0, 5).contains(2.5)
    assert randint(0, 5).canonical(2.0) == 2 and type(randint(0, 5).canonical(2.0)) is int
    c = choice(1, "1", None, False)
    assert c.contains(1) and c.contains(1.0) and c.contains("1") and c.contains(None)
    assert c.contains(False) and not c.contains(0) and not c.contains(True) and not c.contains(2)
    assert choice(2, 3).contains(2.0) and choice(2, 3).canonical(2.0) == 2
    cond = choice({"adam": {}, "sgd": {}})
    assert cond.contains("sgd") and not cond.contains("rmsprop") and cond.names == ("adam", "sgd")


def test_narrow_keeps_kind_and_log():
    narrowed = loguniform(1e-5, 1.0).narrow(1e-3, 1e-2)
    assert narrowed == loguniform(1e-3, 1e-2) and narrowed.log
    assert randint(0, 10).narrow(2.4, 6.5) == randint(2, 7)  # rounded outward
    assert randint(1, 64, log=True).narrow(4, 16) == randint(4, 16, log=True)
    assert uniform(0, 1, grid=[0.1, 0.5, 0.9]).narrow(0.4, 1) == uniform(0.4, 1, grid=[0.5, 0.9])
    assert uniform(0, 1, grid=[0.1]).narrow(0.4, 1) == uniform(0.4, 1)
    assert uniform(0, 1, n_grid=3).narrow(0.2, 0.4).n_grid == 3


def test_narrow_outside_the_bounds_is_refused():
    with pytest.raises(
        ConfigError, match=re.escape("must lie inside the original bounds [0.0, 1.0]")
    ):
        uniform(0, 1).narrow(-0.5, 0.5)
    with pytest.raises(
        ConfigError, match=re.escape("narrow randint(0, 5) to (4, 2): low must be <= high")
    ):
        randint(0, 5).narrow(4, 2)
    with pytest.raises(ConfigError, match=re.escape("to ('a', 3): low must be a number, got 'a'.")):
        randint(0, 5).narrow("a", 3)
    with pytest.raises(ConfigError, match=re.escape("high must be finite, got nan.")):
        randint(0, 5).narrow(0, float("nan"))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: uniform(0.99, 0.8),
            "uniform(0.99, 0.8): low must be <= high; write uniform(0.8, 0.99).",
        ),
        (
            lambda: loguniform(0, 1),
            "loguniform(0, 1): loguniform needs low > 0; use uniform(...) for ranges that include 0.",
        ),
        (lambda: loguniform(-1e-3, 1), "loguniform needs low > 0"),
        (lambda: uniform(0, float("inf")), "uniform(0, inf): high must be finite, got inf."),
        (lambda: uniform(float("nan"), 1), "low must be finite, got nan"),
        (lambda: uniform("0", 1), "uniform('0', 1): low must be a number, got '0'."),
        (lambda: uniform(True, 1), "low must be a number, got True"),
        (
            lambda: randint(0, 2.5),
            "randint(0, 2.5): high must be an int, got 2.5 (bounds are inclusive integers).",
        ),
        (
            lambda: randint(5, 0),
            "randint(5, 0): low must be <= high (both inclusive); write randint(0, 5).",
        ),
        (lambda: randint(0, 8, log=True), "randint(0, 8): randint(..., log=True) needs low >= 1."),
        (lambda: uniform(0, 1, grid=[0.5, 2]), "grid values [2.0] lie outside [0.0, 1.0]"),
        (lambda: uniform(0, 1, grid=[0.5, 0.5]), "grid values must be distinct, got [0.5, 0.5]."),
        (lambda: uniform(0, 1, grid=[]), "grid must be a non-empty list of values, got []."),
        (lambda: uniform(0, 1, grid=[0.5], n_grid=2), "give grid=[...] or n_grid=..., not both."),
        (lambda: uniform(0, 1, n_grid=0), "n_grid must be an int >= 1, got 0."),
        (lambda: choice(), "choice(): needs at least one value, e.g. choice(32, 64)."),
        (lambda: choice({}), "a conditional choice needs at least one branch"),
        (lambda: choice(1, True), "choice(1, True): values must be distinct, but 1 == True"),
        (lambda: choice(1, 1.0), "values must be distinct, but 1 == 1.0"),
        (
            lambda: choice(1, [2]),
            "choice: values must be None, bool, int, float or str, got [2] (list)",
        ),
        (lambda: choice(float("nan")), "choice: values must be finite, got nan."),
        (lambda: choice({"a": {}}, 1), "a mapping of sub-spaces must be the only argument"),
        (lambda: choice({1: {}}), "branch names must be non-empty strings without '.', got 1"),
        (lambda: choice({"a.b": {}}), "got 'a.b'"),
        (
            lambda: choice({"sgd": 0.9}),
            "branch 'sgd' must be a mapping of its parameters (use {} for none), got 0.9.",
        ),
        (
            lambda: choice({"sgd": {"name": "x"}}),
            "branch 'sgd' uses the key 'name', which the config reserves",
        ),
    ],
)
def test_bad_dimensions_are_refused(make, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "logunifrom(1, 2)",
            "'logunifrom(1, 2)': unknown form 'logunifrom'; did you mean loguniform(...)?",
        ),
        ("Uniform(0, 1)", "did you mean uniform(...)?"),
        ("choise(1, 2)", "did you mean choice(...)?"),
        (
            "uniform(0, 1",
            "'uniform(0, 1': malformed uniform(...) form; write it like uniform(0.85, 0.95).",
        ),
        ("uniform(0, 1) * 2", "malformed uniform(...) form"),
        ("randint(0, 5))", "malformed randint(...) form"),
        ("choice(relu, gelu)", "'relu' is not a value; quote strings ('relu')"),
        ("uniform(0, __import__('os'))", "arguments must be literals"),
        (
            "uniform(0, 1+1)",
            "arguments must be literals (numbers, quoted strings, true/false/null, [lists]), got '1+1'.",
        ),
        (
            "uniform(0)",
            "missing 1 required positional argument: 'high'; write it like uniform(0.85, 0.95).",
        ),
        ("uniform(0, 1, step=2)", "unexpected keyword argument 'step'"),
        ("choice(**x)", "malformed choice(...) form"),
        ("choice()", "choice(): needs at least one value"),
        # A distribution hptune lacks, given numbers: it used to become the constant string.
        (
            "lognormal(1e-3, 1e-1)",
            "'lognormal(1e-3, 1e-1)': 'lognormal' is a distribution of another library, not "
            "one of hptune's forms (choice, loguniform, randint, uniform); for this text as a "
            "constant, write choice('lognormal(1e-3, 1e-1)').",
        ),
    ],
)
def test_bad_string_forms_are_refused(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_form(text)


def test_deeply_nested_forms_are_refused_not_a_recursion_error():
    # Found by tests/test_spec_fuzz.py: each of these raised RecursionError or MemoryError.
    with pytest.raises(ConfigError, match="arguments nest more than 50 levels deep"):
        parse_form("uniform(0, " + "-" * 990 + "1)")
    with pytest.raises(ConfigError, match="arguments must be literals"):
        parse_form("choice(" + "not " * 500 + "1)")
    with pytest.raises(ConfigError, match=re.escape("malformed uniform(...) form")):
        parse_form("uniform(0, " + "-" * 100_000 + "1)")  # too complex for Python's parser
    assert parse_form("uniform(" + "-" * 50 + "1, 2)") is not None  # 50 signs: -1 still


def test_a_bound_beyond_a_floats_range_is_refused_not_an_overflow_error():
    # Found by tests/test_spec_fuzz.py: both raised OverflowError.
    for text in ["uniform(0, 1" + "0" * 400 + ")", "randint(0, 1" + "0" * 400 + ")"]:
        with pytest.raises(ConfigError, match="high must be finite, got 1000"):
            parse_form(text)


def test_errors_are_hptune_errors():
    with pytest.raises(HptuneError):
        uniform(1, 0)


def test_dimensions_are_frozen_value_objects():
    dim = uniform(0, 1)
    with pytest.raises(AttributeError):
        dim.low = 0.5  # type: ignore[misc]
    assert isinstance(dim, FloatDimension) and isinstance(randint(0, 1), IntDimension)
    assert isinstance(choice({"a": {}}), Conditional)
    assert (dim.low, dim.high, dim.log) == (0.0, 1.0, False)
    assert type(randint(0, 3).high) is int
