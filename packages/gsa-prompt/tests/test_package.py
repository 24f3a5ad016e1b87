"""Tests of the installed package itself: public API, typing marker, no sibling imports."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata, resources

import pytest

import gsa_prompt


def test_every_public_name_resolves() -> None:
    for name in gsa_prompt.__all__:
        assert getattr(gsa_prompt, name) is not None, name


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = gsa_prompt.no_such_name


def test_version_attribute_matches_distribution_metadata() -> None:
    assert gsa_prompt.__version__ == metadata.version("gsa-prompt")


def test_py_typed_marker_ships() -> None:
    assert resources.files("gsa_prompt").joinpath("py.typed").is_file()


def test_declares_no_sibling_package() -> None:
    # The seven packages share nothing: none may require another.
    siblings = {"gsa-prompt", "cosmos-optim", "r3m", "adapref", "smurf-thp", "stoc-ialm", "marladona"} - {"gsa-prompt"}
    requires = metadata.requires("gsa-prompt") or []
    named = {req.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip() for req in requires}
    assert not (named & siblings)


@pytest.mark.parametrize(
    "module", ["roles", "prompts", "policies", "worlds", "_fake_http", "testing", "_sandbox_prelude"]
)
def test_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    # Split modules import each other one way only: any of them can be the first one imported.
    code = f"import gsa_prompt.{module} as m; [getattr(m, name) for name in getattr(m, '__all__', ())]"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)
