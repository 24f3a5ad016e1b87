"""Tests of the installed package itself: public API, typing marker, no sibling imports."""

from __future__ import annotations

from importlib import metadata, resources

import pytest

import marladona


def test_every_public_name_resolves() -> None:
    for name in marladona.__all__:
        assert getattr(marladona, name) is not None, name


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = marladona.no_such_name


def test_version_attribute_matches_distribution_metadata() -> None:
    assert marladona.__version__ == metadata.version("marladona")


def test_py_typed_marker_ships() -> None:
    assert resources.files("marladona").joinpath("py.typed").is_file()


def test_declares_no_sibling_package() -> None:
    # The seven packages share nothing: none may require another.
    siblings = {"gsa-prompt", "cosmos-optim", "r3m", "adapref", "smurf-thp", "stoc-ialm", "marladona"} - {"marladona"}
    requires = metadata.requires("marladona") or []
    named = {req.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip() for req in requires}
    assert not (named & siblings)
