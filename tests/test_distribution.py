"""The distribution: the wheel holds `harness` and `mocks` only, and works in a fresh virtualenv.

Everything is offline: the wheel is built with the test environment's setuptools (no build
isolation, no index) from a copy of the working tree, and the fresh virtualenvs reach the
dependencies already installed here through a `.pth` line (which adds that folder to the path
without running its `.pth` files, so this checkout's own editable install stays out of it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from harness.journal import JournalWriter
from tests.harness.journals import journal, owed, sent

pytestmark = pytest.mark.distribution

ROOT = Path(__file__).resolve().parent.parent
# Not part of a source tree: the working tree's caches, virtualenvs, builds and runs.
LEFT_OUT = shutil.ignore_patterns(".*", "__pycache__", "*.egg-info", "build", "dist", "reports",
                                  "mocks-state")
# The fresh virtualenvs see only what they install (and this environment's dependencies).
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


def pip(*args: str | Path, python: str | Path = sys.executable) -> None:
    """This environment's pip, acting on the interpreter `python`, without any index."""
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--no-deps", "--no-index", "--quiet", *map(str, args)], check=True)


def fresh_virtualenv(where: Path) -> Path:
    """A new virtualenv at `where` that can import this environment's dependencies; its
    python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                          "['purelib'])"], check=True, capture_output=True,
                          text=True).stdout.strip()
    Path(site, "notifychaos-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def python_in(python: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-c", code], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the working tree, examples/ and bench/ included (they must be left out by
    the packaging, not by their absence)."""
    copy = tmp_path_factory.mktemp("source") / "notifychaos"
    shutil.copytree(ROOT, copy, ignore=LEFT_OUT)
    assert (copy / "examples" / "reminder_service").is_dir() and (copy / "bench").is_dir()
    return copy


@pytest.fixture(scope="module")
def wheel(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "--quiet", "--wheel-dir", str(out), str(tree)], check=True,
                   timeout=300)
    [built] = out.glob("notifychaos-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh virtualenv with the wheel installed."""
    python = fresh_virtualenv(tmp_path_factory.mktemp("wheel-env") / "venv")
    pip(wheel, python=python)
    return python


def test_the_wheel_holds_harness_and_mocks_only(wheel: Path, tree: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    [info] = {name.split("/")[0] for name in names if ".dist-info/" in name}
    assert {name.split("/")[0] for name in names} == {"harness", "mocks", info}
    assert not [name for name in names
                if {"examples", "bench", "tests"} & set(Path(name).parts)]
    sources = {path.relative_to(tree).as_posix()
               for package in ("harness", "mocks") for path in (tree / package).rglob("*.py")}
    assert sources <= set(names), sources - set(names)
    templates = {path.relative_to(tree).as_posix()
                 for path in (tree / "harness" / "templates").glob("*.j2")}
    assert templates and templates <= set(names)
    assert "harness/locustfile.py" in names
    metadata = zipfile.ZipFile(wheel)
    assert metadata.read(f"{info}/top_level.txt").decode().split() == ["harness", "mocks"]
    assert "notifychaos = harness.cli:main" in metadata.read(f"{info}/entry_points.txt").decode()


def test_the_installed_wheel_imports_the_api_and_nothing_of_the_checkout(
        installed: Path, tmp_path: Path) -> None:
    done = python_in(installed, (
        "import importlib.util, harness\n"
        "from harness import rehearse, score, load_scenario, Scorecard, NotifyChaosError\n"
        "import harness.cli, harness.loadgen, mocks.server\n"
        "print(harness.__file__)\n"
        "print(harness.loadgen.LOCUSTFILE.is_file())\n"
        "print(importlib.util.find_spec('examples'), importlib.util.find_spec('bench'))\n"),
        cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    where, locustfile, checkout = done.stdout.splitlines()
    assert Path(where).is_relative_to(installed.parent.parent)
    assert (locustfile, checkout) == ("True", "None None")


def test_the_installed_command_validates_and_reports(installed: Path, tmp_path: Path) -> None:
    command = installed.parent / "notifychaos"
    version = subprocess.run([command, "--version"], env=ENV, capture_output=True, text=True,
                             check=True)
    assert version.stdout.strip() == "notifychaos, version 0.1.0"
    scenario = ROOT / "scenarios" / "primary-vendor-outage.yaml"
    valid = subprocess.run([command, "validate", scenario], cwd=tmp_path, env=ENV,
                           capture_output=True, text=True)
    assert valid.returncode == 0, valid.stderr
    # The report renders the installed templates: a hand-made run that passes.
    run_dir = tmp_path / "run"
    writer = JournalWriter(run_dir / "journal", "harness")
    for event in journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1)).events:
        writer.write(event)
    writer.close()
    report = subprocess.run([command, "report", run_dir], cwd=tmp_path, capture_output=True,
                            text=True, env=ENV)
    assert report.returncode == 0, report.stdout + report.stderr
    assert "PASSED" in report.stdout
    page = (run_dir / "report.html").read_text()
    assert "hand-made" in page and "PASSED" in page


def test_an_editable_install_runs_the_reference_notifier_only_from_the_checkout(
        tree: Path, tmp_path: Path) -> None:
    python = fresh_virtualenv(tmp_path / "venv")
    pip("--no-build-isolation", "--editable", tree, python=python)
    find = "import importlib.util as u, harness; print(harness.__file__, u.find_spec('examples'))"
    elsewhere = python_in(python, find, cwd=tmp_path)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert elsewhere.stdout.split() == [str(tree / "harness" / "__init__.py"), "None"]
    # As scenarios start it (`python -m examples.reminder_service`, cwd the checkout) and as
    # the tests import it (pytest's pythonpath is the checkout).
    here = python_in(python, "import examples.reminder_service.service as s; print(s.__file__)",
                     cwd=tree)
    assert here.returncode == 0, here.stderr
    assert Path(here.stdout.strip()).is_relative_to(tree / "examples")
