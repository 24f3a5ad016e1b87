"""Tests of the installed package itself: public API, typing marker, no sibling imports."""

from __future__ import annotations

from importlib import metadata, resources

import pytest

import r3m


def test_every_public_name_resolves() -> None:
    for name in r3m.__all__:
        assert getattr(r3m, name) is not None, name


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = r3m.no_such_name


def test_version_attribute_matches_distribution_metadata() -> None:
    assert r3m.__version__ == metadata.version("r3m")


def test_py_typed_marker_ships() -> None:
    assert resources.files("r3m").joinpath("py.typed").is_file()


def test_declares_no_sibling_package() -> None:
    # The seven packages share nothing: none may require another.
    siblings = {"gsa-prompt", "cosmos-optim", "r3m", "adapref", "smurf-thp", "stoc-ialm", "marladona"} - {"r3m"}
    requires = metadata.requires("r3m") or []
    named = {req.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip() for req in requires}
    assert not (named & siblings)


def test_all_lists_exactly_the_lazy_names() -> None:
    assert set(r3m.__all__) == {"__version__", *r3m._LAZY}
    assert len(r3m.__all__) == len(set(r3m.__all__))
