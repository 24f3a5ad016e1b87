"""check_packages.py: the real tree is consistent, and each rule catches a planted fault."""

from __future__ import annotations

import re
from pathlib import Path

from check_packages import check_changelog, check_repo
from matrix import ROOT, read_packages


def test_this_repository_is_consistent() -> None:
    assert check_repo(ROOT) == []


def test_untouched_copy_is_consistent(repo: Path) -> None:
    assert check_repo(repo) == []


def test_cross_package_import_is_reported_with_file_and_line(repo: Path) -> None:
    mod = repo / "packages" / "r3m" / "src" / "r3m" / "planted.py"
    mod.write_text('"""Planted fault."""\n\nfrom adapref import something\n')
    errors = check_repo(repo)
    assert errors == [
        "packages/r3m/src/r3m/planted.py:3: imports adapref (package adapref); no package imports another"
    ]


def test_pinned_dependency_is_reported(repo: Path) -> None:
    pyproject = repo / "packages" / "smurf-thp" / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('"torch>=2.2"', '"torch==2.13.0"'))
    assert any("pins 'torch==2.13.0'" in e for e in check_repo(repo))


def test_sibling_dependency_is_reported(repo: Path) -> None:
    pyproject = repo / "packages" / "adapref" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"numpy>=1.24",', '"numpy>=1.24",\n    "r3m>=0.1",'))
    assert any("another package of this repo" in e for e in check_repo(repo))


def test_torch_in_a_no_torch_package_is_reported(repo: Path) -> None:
    pyproject = repo / "packages" / "gsa-prompt" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"openai>=1.40",', '"openai>=1.40",\n    "torch>=2.2",'))
    (repo / "packages" / "gsa-prompt" / "src" / "gsa_prompt" / "x.py").write_text("import torch\n")
    errors = check_repo(repo)
    assert sum("must not depend on torch" in e or "imports torch" in e for e in errors) == 2


def test_version_must_agree_with_changelog(repo: Path) -> None:
    version_file = repo / "packages" / "marladona" / "src" / "marladona" / "_version.py"
    version_file.write_text(version_file.read_text().replace("0.1.0.dev0", "0.1.0"))
    assert any("version 0.1.0 must be the newest '## [0.1.0] - YYYY-MM-DD' section" in e for e in check_repo(repo))


def test_unlisted_package_folder_is_reported(repo: Path) -> None:
    (repo / "packages" / "stray").mkdir()
    assert check_repo(repo) == ["packages/stray: folder not listed in ci/packages.txt"]


def test_missing_files_are_each_reported(repo: Path) -> None:
    base = repo / "packages" / "cosmos-optim"
    (base / "src" / "cosmos_optim" / "py.typed").unlink()
    (base / "benchmarks" / "run.py").unlink()
    (base / "tests" / "__init__.py").write_text("")
    errors = check_repo(repo)
    assert "packages/cosmos-optim/src/cosmos_optim/py.typed: missing" in errors
    assert "packages/cosmos-optim/benchmarks/run.py: missing" in errors
    assert any(e.startswith("packages/cosmos-optim/tests/__init__.py: must not exist") for e in errors)


def test_licence_copy_must_match_root(repo: Path) -> None:
    (repo / "packages" / "stoc-ialm" / "LICENSE").write_text("Apache-2.0\n")
    assert check_repo(repo) == ["packages/stoc-ialm/LICENSE: differs from the root LICENSE"]


class TestChangelogRules:
    HEAD = "# Changelog\n\nFormat: [Keep a Changelog](https://keepachangelog.com/en/1.1.0/).\n\n"

    def test_dev_version_needs_unreleased(self) -> None:
        assert check_changelog(self.HEAD + "## [0.1.0] - 2026-01-01\n", "0.2.0.dev0", "C") == [
            "C: pre-release version 0.2.0.dev0 needs an '## [Unreleased]' section"
        ]

    def test_dev_version_of_a_released_version_is_rejected(self) -> None:
        text = self.HEAD + "## [Unreleased]\n\n## [0.1.0] - 2026-01-01\n"
        assert check_changelog(text, "0.1.0.dev3", "C") == [
            "C: 0.1.0 is already released but _version.py says 0.1.0.dev3"
        ]

    def test_release_must_be_the_newest_section(self) -> None:
        text = self.HEAD + "## [Unreleased]\n\n## [0.2.0] - 2026-02-01\n\n## [0.1.0] - 2026-01-01\n"
        assert check_changelog(text, "0.2.0", "C") == []
        assert check_changelog(text, "0.1.0", "C") != []


def test_package_list_matches_the_seven_packages() -> None:
    names = [p.name for p in read_packages()]
    assert names == ["gsa-prompt", "cosmos-optim", "r3m", "adapref", "smurf-thp", "stoc-ialm", "marladona"]
    for p in read_packages():
        assert re.fullmatch(r"[a-z0-9_]+", p.import_name)
    assert [p.name for p in read_packages() if "no-torch" in p.flags] == ["gsa-prompt"]
