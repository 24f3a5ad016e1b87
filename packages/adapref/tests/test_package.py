"""Tests of the installed package itself: public API, typing marker, no sibling imports."""

from __future__ import annotations

from importlib import metadata, resources

import pytest

import adapref


def test_every_public_name_resolves() -> None:
    for name in adapref.__all__:
        assert getattr(adapref, name) is not None, name


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = adapref.no_such_name


def test_version_attribute_matches_distribution_metadata() -> None:
    assert adapref.__version__ == metadata.version("adapref")


def test_py_typed_marker_ships() -> None:
    assert resources.files("adapref").joinpath("py.typed").is_file()


def test_declares_no_sibling_package() -> None:
    # The seven packages share nothing: none may require another.
    siblings = {"gsa-prompt", "cosmos-optim", "r3m", "adapref", "smurf-thp", "stoc-ialm", "marladona"} - {"adapref"}
    requires = metadata.requires("adapref") or []
    named = {req.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip() for req in requires}
    assert not (named & siblings)


def test_all_lists_exactly_the_lazy_names() -> None:
    assert set(adapref.__all__) == {"__version__", *adapref._LAZY}
    assert len(adapref.__all__) == len(set(adapref.__all__))
