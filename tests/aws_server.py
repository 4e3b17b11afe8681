"""Pytest plugin: one local AWS-compatible server (``moto_server``) for the whole test session.

The AWS backends (Kinesis, DynamoDB, S3) are tested over real HTTP against it, never against
in-process fakes, so request signing, serialisation and pagination run exactly as in the cloud.
It starts only when a test asks for ``aws_endpoint``, binds to 127.0.0.1 on a free port, and
the session's environment gets dummy credentials so that no real account can ever be reached.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT_S = float(os.environ.get("PLAYERPULSE_MOTO_START_TIMEOUT", "60"))
"""A cold start imports all of moto (several seconds on a busy 2-core CI runner)."""
_PORT_ATTEMPTS = 3

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _moto_command() -> list[str]:
    """The server of the interpreter running the tests, not whatever is first on PATH."""
    script = Path(sys.executable).parent / "moto_server"
    if script.is_file():
        return [sys.executable, str(script)]
    if shutil.which("moto_server") is None:
        try:
            import moto.server  # noqa: F401
        except ImportError:
            pytest.fail("moto_server is not installed: run `pip install -e '.[dev]'` (it brings moto[server])")
    return [sys.executable, "-m", "moto.server"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _start(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server and wait until it answers; a lost race for the port is retried."""
    failures = []
    for _ in range(_PORT_ATTEMPTS):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [*_moto_command(), "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=os.environ.copy(),
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            if _answers(url):
                return proc, url
            time.sleep(0.1)
        code = proc.poll()
        _stop(proc)
        failures.append(f"port {port}: " + (f"exited with code {code}" if code is not None else "no answer"))
        if code is None:
            break  # it ran but never answered: another port will not help
    raise RuntimeError(
        f"moto_server did not start within {START_TIMEOUT_S:g} s ({'; '.join(failures)}). "
        f"Raise PLAYERPULSE_MOTO_START_TIMEOUT on a slow machine, or check the log {log}:\n{_tail(log)}"
    )


@pytest.fixture(scope="session")
def aws_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the session's moto server; dummy credentials are set while it runs."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in DUMMY_AWS_ENV.items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        empty = tmp_path_factory.mktemp("aws-config")
        # a developer's ~/.aws must not leak into tests (it could name a real account or role)
        mp.setenv("AWS_CONFIG_FILE", str(empty / "config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
        # a CI proxy must not intercept calls to the local server
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
        mp.setenv("NO_PROXY", no_proxy)
        mp.setenv("no_proxy", no_proxy)
        proc, url = _start(tmp_path_factory.mktemp("moto") / "moto_server.log")
        try:
            yield url
        finally:
            _stop(proc)
