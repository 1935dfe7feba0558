"""The documentation a user reads: the site builds without a warning, the README stays a short page
whose links all lead somewhere, and the CLI reference is the commands' own help."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

README_MAX_LINES = 200
LINK = re.compile(r"\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")


def _require_mkdocs() -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mkdocs and mkdocs-material are missing under CI (pip install -e '.[dev]')")
        pytest.skip("mkdocs and mkdocs-material are not installed (pip install -e '.[docs]')")


def test_the_site_builds_in_strict_mode_without_a_warning(tmp_path):
    _require_mkdocs()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    # The root files the site includes arrived whole, not as an unresolved snippet line.
    contributing = (tmp_path / "site" / "contributing" / "index.html").read_text()
    assert "Set-up" in contributing and "--8&lt;--" not in contributing
    assert "END OF TERMS AND CONDITIONS" in (tmp_path / "site" / "license" / "index.html").read_text()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading (also MkDocs' for the plain headings used here)."""
    explicit = re.search(r"\{#([\w-]+)\}\s*$", heading)
    if explicit:
        return explicit.group(1)
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(markdown: str) -> set[str]:
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", markdown, re.M)}


def test_the_readme_is_a_short_page_whose_relative_links_all_exist():
    text = (REPO / "README.md").read_text()
    lines = text.count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"
    links = [a or b for a, b in LINK.findall(text)]
    relative = [link for link in links if not re.match(r"[a-z]+:", link) and not link.startswith("#")]
    assert relative, "the README links to nothing in the repository"
    broken = []
    for link in relative:
        path, _, anchor = link.partition("#")
        target = REPO / path
        if not target.exists() or (
            anchor and target.suffix == ".md" and anchor not in _anchors(target.read_text())
        ):
            broken.append(link)
    assert not broken, f"README.md links to what does not exist: {broken}"


def _cli_reference():
    spec = importlib.util.spec_from_file_location("cli_reference", REPO / "docs" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_is_the_commands_own_help():
    page = (REPO / "docs" / "cli.md").read_text()
    made_with = re.search(r"generated with Python (\d+\.\d+)", page)
    assert made_with, "docs/cli.md lost its header: regenerate it (.venv/bin/python docs/cli_reference.py)"
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if made_with.group(1) != running:
        pytest.skip(f"docs/cli.md was generated with Python {made_with.group(1)}; argparse lays out help "
                    f"differently on {running}")  # fmt: skip
    assert page == _cli_reference().render(), "regenerate it: .venv/bin/python docs/cli_reference.py"
