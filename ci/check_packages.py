#!/usr/bin/env python3
"""Consistency checks over every package of the monorepo (stdlib only).

For each row of ``ci/packages.txt`` this checks that the pip name is the folder name and the
console script; ``src/<import_name>/`` holds ``__init__.py``, ``_version.py``, ``py.typed``,
``cli.py`` and ``__main__.py``; the version lives only in ``_version.py`` and agrees with the
CHANGELOG (Keep a Changelog); ``LICENSE`` is the root licence; ``tests/`` (with a conftest and no
``__init__.py``) and ``benchmarks/run.py`` exist; dependencies use ranges, never ``==`` pins;
``no-torch`` packages name no torch anywhere; no package declares or imports another package of
this repo; the ``[test]`` extra carries pytest and pytest-timeout and pytest registers the
``slow`` and ``gpu`` markers with a time-out.

Usage: python ci/check_packages.py [--root DIR]   (exit 1 and one line per problem when any fails)
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    sys.exit("ci/check_packages.py needs Python >= 3.11 (tomllib)")

from matrix import ROOT, Package, read_packages

REQUIRED_SRC = ("__init__.py", "_version.py", "py.typed", "cli.py", "__main__.py")
REQUIRED_PKG = ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", "benchmarks/run.py", "tests/conftest.py")
VERSION_RE = re.compile(r'^__version__\s*=\s*"([^"]+)"\s*$', re.MULTILINE)
RELEASE_RE = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}\s*$", re.MULTILINE)
REQ_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(req: str) -> str:
    m = REQ_NAME_RE.match(req)
    return canonical(m.group(1)) if m else ""


def imported_top_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, top-level module)`` for every absolute import in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def check_changelog(text: str, version: str, where: str) -> list[str]:
    errors = []
    if not text.startswith("# Changelog"):
        errors.append(f"{where}: must start with '# Changelog'")
    if "keepachangelog.com" not in text:
        errors.append(f"{where}: must follow Keep a Changelog and link to it")
    releases = RELEASE_RE.findall(text)
    final = re.fullmatch(r"\d+\.\d+\.\d+", version)
    if final:
        if not releases or releases[0] != version:
            errors.append(f"{where}: version {version} must be the newest '## [{version}] - YYYY-MM-DD' section")
    else:
        if "## [Unreleased]" not in text:
            errors.append(f"{where}: pre-release version {version} needs an '## [Unreleased]' section")
        base = re.match(r"\d+\.\d+\.\d+", version)
        if base and base.group(0) in releases:
            errors.append(f"{where}: {base.group(0)} is already released but _version.py says {version}")
    return errors


def check_pyproject(pkg: Package, data: dict, siblings: set[str]) -> list[str]:
    where = f"packages/{pkg.name}/pyproject.toml"
    errors = []
    project = data.get("project", {})
    if project.get("name") != pkg.name:
        errors.append(f"{where}: [project].name is {project.get('name')!r}, expected {pkg.name!r} (the folder name)")
    if "version" in project or "version" not in project.get("dynamic", []):
        errors.append(f"{where}: version must be dynamic (only in _version.py)")
    attr = data.get("tool", {}).get("setuptools", {}).get("dynamic", {}).get("version", {}).get("attr")
    if attr != f"{pkg.import_name}._version.__version__":
        errors.append(f"{where}: [tool.setuptools.dynamic] version must be attr {pkg.import_name}._version.__version__")
    if data.get("build-system", {}).get("build-backend") != "setuptools.build_meta":
        errors.append(f"{where}: build-backend must be setuptools.build_meta")
    if not project.get("requires-python"):
        errors.append(f"{where}: requires-python is missing")
    if project.get("license") != "MIT":
        errors.append(f"{where}: license must be the SPDX string 'MIT'")
    scripts = project.get("scripts", {})
    if scripts.get(pkg.name) != f"{pkg.import_name}.cli:main":
        errors.append(f"{where}: [project.scripts] must map {pkg.name!r} to '{pkg.import_name}.cli:main'")
    pkg_data = data.get("tool", {}).get("setuptools", {}).get("package-data", {}).get(pkg.import_name, [])
    if "py.typed" not in pkg_data:
        errors.append(f"{where}: [tool.setuptools.package-data] {pkg.import_name} must list py.typed")

    groups = {"dependencies": project.get("dependencies", [])}
    for extra, reqs in project.get("optional-dependencies", {}).items():
        groups[f"optional-dependencies.{extra}"] = reqs
    for group, reqs in groups.items():
        for req in reqs:
            name = requirement_name(req)
            if "==" in req:
                errors.append(f"{where}: {group} pins {req!r}; use a range (torch comes from ci/constraints.txt)")
            if name in siblings:
                errors.append(f"{where}: {group} names {req!r}, another package of this repo; packages share nothing")
            if name == "torch" and "no-torch" in pkg.flags:
                errors.append(f"{where}: {group} names torch, but {pkg.name} must not depend on torch")
    test_extra = {requirement_name(r) for r in groups.get("optional-dependencies.test", [])}
    for need in ("pytest", "pytest-timeout"):
        if need not in test_extra:
            errors.append(f"{where}: the [test] extra must include {need}")

    ini = data.get("tool", {}).get("pytest", {}).get("ini_options", {})
    markers = " ".join(ini.get("markers", []))
    for marker in ("slow", "gpu"):
        if not re.search(rf"\b{marker}\b", markers):
            errors.append(f"{where}: [tool.pytest.ini_options] must register the '{marker}' marker")
    if "timeout" not in ini:
        errors.append(f"{where}: [tool.pytest.ini_options] must set a timeout (pytest-timeout)")
    return errors


def check_package(root: Path, pkg: Package, all_packages: list[Package]) -> list[str]:
    base = pkg.path(root)
    rel = f"packages/{pkg.name}"
    if not base.is_dir():
        return [f"{rel}: missing folder for package {pkg.name}"]
    errors = []
    if pkg.import_name != pkg.name.replace("-", "_"):
        errors.append(f"ci/packages.txt: import name of {pkg.name} must be {pkg.name.replace('-', '_')}")
    for f in REQUIRED_PKG:
        if not (base / f).is_file():
            errors.append(f"{rel}/{f}: missing")
    src = base / "src" / pkg.import_name
    for f in REQUIRED_SRC:
        if not (src / f).is_file():
            errors.append(f"{rel}/src/{pkg.import_name}/{f}: missing")
    if (base / "tests" / "__init__.py").exists():
        errors.append(f"{rel}/tests/__init__.py: must not exist (test modules of packages would collide)")
    if not list((base / "tests").glob("test_*.py")):
        errors.append(f"{rel}/tests: holds no test_*.py")
    if (base / "LICENSE").is_file() and (base / "LICENSE").read_bytes() != (root / "LICENSE").read_bytes():
        errors.append(f"{rel}/LICENSE: differs from the root LICENSE")

    version = None
    if (src / "_version.py").is_file():
        m = VERSION_RE.search((src / "_version.py").read_text(encoding="utf-8"))
        if not m:
            errors.append(f"{rel}/src/{pkg.import_name}/_version.py: no '__version__ = \"...\"' line")
        else:
            version = m.group(1)
    if version and (base / "CHANGELOG.md").is_file():
        errors += check_changelog((base / "CHANGELOG.md").read_text(encoding="utf-8"), version, f"{rel}/CHANGELOG.md")
    if (base / "README.md").is_file() and f"pip install {pkg.name}" not in (base / "README.md").read_text(
        encoding="utf-8"
    ):
        errors.append(f"{rel}/README.md: must show 'pip install {pkg.name}'")

    siblings = {canonical(p.name) for p in all_packages if p.name != pkg.name}
    if (base / "pyproject.toml").is_file():
        with open(base / "pyproject.toml", "rb") as fh:
            errors += check_pyproject(pkg, tomllib.load(fh), siblings)

    other_imports = {p.import_name: p.name for p in all_packages if p.name != pkg.name}
    for sub in ("src", "tests", "benchmarks"):
        for py in sorted((base / sub).rglob("*.py")):
            try:
                modules = imported_top_modules(py)
            except SyntaxError as exc:
                errors.append(f"{py.relative_to(root)}:{exc.lineno}: syntax error: {exc.msg}")
                continue
            for line, mod in modules:
                if mod in other_imports:
                    errors.append(
                        f"{py.relative_to(root)}:{line}: imports {mod} (package {other_imports[mod]}); "
                        "no package imports another"
                    )
                if mod == "torch" and "no-torch" in pkg.flags and sub == "src":
                    errors.append(f"{py.relative_to(root)}:{line}: imports torch, but {pkg.name} must not")
    return errors


def check_repo(root: Path) -> list[str]:
    """Every problem found under ``root``, one line each (empty when all is consistent)."""
    packages = read_packages(root)
    errors = []
    listed = {p.name for p in packages}
    for d in sorted((root / "packages").iterdir()):
        if d.is_dir() and d.name not in listed:
            errors.append(f"packages/{d.name}: folder not listed in ci/packages.txt")
    for pkg in packages:
        errors += check_package(root, pkg, packages)
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    errors = check_repo(args.root.resolve())
    for e in errors:
        print(e)
    n = len(read_packages(args.root.resolve()))
    if errors:
        print(f"check_packages: {len(errors)} problem(s) in {n} packages")
        return 1
    print(f"check_packages: {n} packages consistent")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
