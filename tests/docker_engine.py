"""A real Docker engine for the tests and the reference notifier's image on it: an engine that
answers, or Debian's dockerd started here (its data under the user's cache folder); the image
built locally once (nothing can be pulled) and kept between runs by its tag.

The image is two layers: a Debian root with Python made by debootstrap from the mirror apt is
configured with, plus the aiohttp of the harness's own environment (Debian's is too old)
installed for that Python by pip, `docker import`ed (about a minute, once per machine and aiohttp
version); then the checkout's `examples/` copied onto it (seconds, whenever `examples/` changes).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest

from harness.container import DEFAULT_HOST, ENGINE_ERRORS, connect
from harness.errors import StartupError
from harness.processes import ManagedProcess, poll_until

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "notifychaos" / "docker"
SOCKET = CACHE / "docker.sock"
DEFAULT_SOCKET = Path(DEFAULT_HOST.removeprefix("unix://"))

BASE_REPO = "notifychaos-test/debian-python"
NOTIFIER_REPO = "notifychaos-test/reference-notifier"
PACKAGES = ("python3", "python-is-python3")
PYTHON_PACKAGES = (f"aiohttp=={importlib.metadata.version('aiohttp')}",)
DOCKERFILE = """\
FROM {base}
COPY examples /app/examples
WORKDIR /app
ENV PYTHONUNBUFFERED=1
CMD ["python", "-m", "examples.reminder_service"]
"""


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    """One test session at a time starts the engine or builds an image."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _answers(socket: Path) -> Any:
    """A client of the engine at `socket` (DOCKER_HOST set to it), or None when none answers."""
    os.environ["DOCKER_HOST"] = f"unix://{socket}"
    try:
        return connect()
    except StartupError:
        del os.environ["DOCKER_HOST"]
        return None


def _dockerd() -> str | None:
    found = shutil.which("dockerd")
    return found or next((p for p in ("/usr/sbin/dockerd", "/usr/bin/dockerd")
                          if Path(p).exists()), None)


@functools.cache
def _engine() -> tuple[Any, str]:
    """(a client, "") or (None, why no engine can be had). DOCKER_HOST is left pointing at the
    engine, so that the harness the tests start (in-process or as a command) finds it."""
    if os.environ.get("DOCKER_HOST"):
        try:
            return connect(), ""
        except StartupError as exc:
            return None, f"{exc} (DOCKER_HOST is set, so the tests start no engine of their own)"
    with _cache_lock():
        for socket in (DEFAULT_SOCKET, SOCKET):
            if socket.exists() and (client := _answers(socket)) is not None:
                return client, ""
        dockerd = _dockerd()
        if dockerd is None:
            return None, ("no Docker engine answers and dockerd is not installed "
                          "(Debian's docker.io; ./dev setup installs it)")
        if os.geteuid() != 0:
            return None, "no Docker engine answers, and only root can start dockerd"
        SOCKET.unlink(missing_ok=True)  # left by an engine that died
        # Host networking only: the engine needs no bridge and changes no firewall rule.
        process = ManagedProcess("dockerd", [
            dockerd, "--host", f"unix://{SOCKET}", "--data-root", str(CACHE / "data"),
            "--exec-root", str(CACHE / "exec"), "--pidfile", str(CACHE / "dockerd.pid"),
            "--bridge=none", "--iptables=false", "--ip6tables=false"],
            log_path=CACHE / "dockerd.log",
            env={**os.environ, "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"})
        try:
            client = poll_until(lambda: (SOCKET.exists() and _answers(SOCKET)) or None,
                                timeout=60, interval=0.25, watch=process)
        except StartupError as exc:
            return None, f"dockerd did not start: {exc}\n{exc.log_tail}"
        if client is None:
            process.stop(grace=20)
            return None, f"dockerd did not answer within 60s:\n{process.log_tail()}"
        atexit.register(process.stop, grace=30)
        return client, ""


def engine() -> Any:
    """A client of a real Docker engine; the test is skipped, saying why, when none can be had."""
    client, reason = _engine()
    if client is None:
        pytest.skip(reason)
    return client


def _os_release() -> dict[str, str]:
    lines = Path("/etc/os-release").read_text(encoding="utf-8").splitlines()
    return {key: value.strip('"') for key, _, value in (line.partition("=") for line in lines)}


def _apt_mirror(codename: str) -> str | None:
    """The Debian mirror apt uses for `codename` (None: debootstrap's own default)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in path.read_text(encoding="utf-8").split("\n\n"):
            fields = {key.strip(): value.strip() for key, _, value in
                      (line.partition(":") for line in stanza.splitlines()
                       if line and not line.startswith(("#", " ")))}
            if "deb" in fields.get("Types", "").split() and \
                    codename in fields.get("Suites", "").split():
                return fields["URIs"].split()[0]
    sources = Path("/etc/apt/sources.list")
    for line in sources.read_text(encoding="utf-8").splitlines() if sources.exists() else ():
        words = [word for word in line.split("#")[0].split() if not word.startswith("[")]
        if len(words) >= 3 and words[0] == "deb" and words[2] == codename:
            return words[1]
    return None


def _prune(client: Any, repository: str, keep: str) -> None:
    """Remove the other images of `repository`: older recipes and checkouts are of no more use."""
    for image in client.images.list(name=repository):
        if keep not in image.tags:
            with contextlib.suppress(*ENGINE_ERRORS):
                client.images.remove(image.id, force=True)


class _BuildFailed(Exception):
    """The test image could not be built (the reason is the message)."""


def _has(client: Any, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _install_python_packages(root: Path) -> None:
    """PYTHON_PACKAGES (binary wheels for the root's Python and this machine) into the root's
    /usr/local, on Debian's Python path."""
    version = (root / "usr" / "bin" / "python3").readlink().name.removeprefix("python")
    arch = platform.machine()
    # pip takes each manylinux tag as given; a Debian root has glibc 2.17 or newer.
    platforms = [arg for minor in range(17, 40) for arg in ("--platform",
                                                           f"manylinux_2_{minor}_{arch}")]
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-compile", "--only-binary=:all:", "--implementation", "cp", "--python-version",
         version, *platforms, "--target",
         str(root / "usr" / "local" / "lib" / f"python{version}" / "dist-packages"),
         *PYTHON_PACKAGES], capture_output=True, text=True, timeout=600, check=False)
    if installed.returncode != 0:
        raise _BuildFailed(f"pip could not install {' '.join(PYTHON_PACKAGES)} for Python "
                           f"{version}:\n{installed.stderr[-3000:]}")


def _base_image(client: Any) -> str:
    """The Debian root with Python and aiohttp, imported once from debootstrap's work."""
    codename = _os_release().get("VERSION_CODENAME", "bookworm")
    recipe = " ".join((*PACKAGES, *PYTHON_PACKAGES)).encode()
    tag = f"{BASE_REPO}:{codename}-" + hashlib.sha256(recipe).hexdigest()[:8]
    if _has(client, tag):
        return tag
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise _BuildFailed("debootstrap is needed to build the test image "
                           "(./dev setup installs it)")
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        root = Path(work) / "root"
        mirror = _apt_mirror(codename)
        built = subprocess.run(
            [debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", codename,
             str(root), *([mirror] if mirror else [])],
            capture_output=True, text=True, timeout=900, check=False)
        if built.returncode != 0:
            raise _BuildFailed(f"debootstrap failed ({built.returncode}):\n"
                               f"{built.stdout[-3000:]}\n{built.stderr[-3000:]}")
        _install_python_packages(root)
        for bulk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                     "usr/share/man", "usr/share/locale"):
            shutil.rmtree(root / bulk, ignore_errors=True)
        archive = Path(work) / "root.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(archive), "."],
                       check=True, timeout=300)
        repository, _, version = tag.partition(":")
        client.api.import_image_from_file(str(archive), repository=repository, tag=version)
    if not _has(client, tag):
        raise _BuildFailed(f"docker import did not make {tag}")
    _prune(client, BASE_REPO, tag)
    return tag


def _context(base: str) -> tuple[bytes, str]:
    """The build context (Dockerfile and examples/) as a tar, and a digest of its content."""
    dockerfile = DOCKERFILE.format(base=base).encode()
    files = sorted(path for path in (ROOT / "examples").rglob("*")
                   if path.is_file() and "__pycache__" not in path.parts)
    digest = hashlib.sha256(dockerfile)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        for path in files:
            name = str(path.relative_to(ROOT))
            digest.update(name.encode() + b"\0" + path.read_bytes())
            tar.add(path, arcname=name)
    return buffer.getvalue(), digest.hexdigest()[:12]


@functools.cache
def _notifier_image(client: Any) -> tuple[str, str]:
    """(the tag, "") or ("", why it could not be built): a failure is not tried again."""
    try:
        with _cache_lock():
            base = _base_image(client)
            context, digest = _context(base)
            tag = f"{NOTIFIER_REPO}:{digest}"
            if not _has(client, tag):
                client.images.build(fileobj=io.BytesIO(context), custom_context=True, tag=tag,
                                    rm=True, forcerm=True, network_mode="host", timeout=300)
                _prune(client, NOTIFIER_REPO, tag)
    except (_BuildFailed, docker.errors.BuildError, *ENGINE_ERRORS) as exc:
        return "", f"cannot build the reference notifier's image: {exc}"
    return tag, ""


def notifier_image() -> str:
    """The tag of an image that runs the checkout's reference notifier (`python -m
    examples.reminder_service` in /app, Python and aiohttp from Debian), built if missing; the
    test fails, saying why, when it cannot be built."""
    tag, reason = _notifier_image(engine())
    if not tag:
        pytest.fail(reason)
    return tag
