"""Run the local gateway (``playerpulse serve``) as a child process, for the demo and the tests.

A separate process keeps the collector's event loop off the Spark driver's GIL, as in
production, and the demo talks to it over real HTTP.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from features.config import Settings
from features.errors import PlayerPulseError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gateway:
    """``with Gateway(settings) as gw: httpx.get(gw.url + "/healthz")``."""

    def __init__(self, settings: Settings, port: int = 0, startup_timeout_s: float = 60.0):
        self.settings = settings
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.timeout = startup_timeout_s
        self.log_path = Path(settings.workdir) / "logs" / "gateway.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Gateway:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        cmd = [
            sys.executable,
            "-m",
            "playerpulse",
            "serve",
            "--port",
            str(self.port),
            "--env",
            self.settings.env,
            "--workdir",
            self.settings.workdir,
        ]
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise PlayerPulseError(f"the gateway exited with code {self._proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise PlayerPulseError(
            f"the gateway did not answer on {self.url} within {self.timeout:.0f}s; see {self.log_path}"
        )

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs (benchmarks read its CPU time)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def kill(self) -> None:
        """SIGKILL, as a crashed host would: no shutdown hooks run."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
