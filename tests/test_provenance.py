"""Run provenance: the git commit of the drfm source is recorded next to every result."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from drfm.utils.seeding import environment_info, source_commit

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_source_commit_names_the_checkout_commit_and_marks_changed_tracked_files(tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "module.py").write_text("x = 1\n")
    (repo / "other.txt").write_text("a\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    head = git(repo, "rev-parse", "HEAD")
    assert len(head) == 40 and source_commit(repo / "pkg") == head
    (repo / "pkg" / "new.py").write_text("untracked\n")
    (repo / "other.txt").write_text("changed outside the package folder\n")
    assert source_commit(repo / "pkg") == head  # neither an untracked file nor another folder counts
    (repo / "pkg" / "module.py").write_text("x = 2\n")
    assert source_commit(repo / "pkg") == f"{head}+dirty"


def test_source_commit_is_none_outside_a_checkout_and_for_untracked_folders(tmp_path: Path):
    assert source_commit(tmp_path) is None
    assert source_commit(tmp_path / "missing") is None
    repo = tmp_path / "project"
    (repo / "venv" / "site-packages" / "drfm").mkdir(parents=True)
    (repo / "readme.txt").write_text("a project\n")
    (repo / "venv" / "site-packages" / "drfm" / "__init__.py").write_text("installed, not tracked\n")
    git(repo, "init", "-q")
    git(repo, "add", "readme.txt")
    git(repo, "commit", "-q", "-m", "first")
    assert source_commit(repo) == git(repo, "rev-parse", "HEAD")
    assert source_commit(repo / "venv" / "site-packages" / "drfm") is None  # not the project's commit


def test_environment_info_records_the_drfm_commit_key():
    info = environment_info()
    assert {"drfm", "drfm_commit", "python", "torch", "numpy", "platform", "cuda"} == set(info)
    assert info["drfm_commit"] is None or len(info["drfm_commit"].split("+")[0]) == 40
