"""Running a real `vrhub serve` / `vrhub worker` as a subprocess for tests (own process group, so
a test can SIGKILL the hub together with its build processes)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VRHUB = Path(sys.executable).with_name("vrhub")
TESTS = REPO / "tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hub_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRHUB_")}
    env.update(
        VRHUB_VAR_DIR=str(var_dir),
        VRHUB_SECRET="test-secret",
        PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        VRHUB_CONFIG=str(var_dir / "no-such-config.toml"),
    )
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run([str(VRHUB), "migrate"], env=env, check=True, capture_output=True, timeout=120)


class HubProcess:
    """``vrhub <args>`` in its own session; ``kill()`` SIGKILLs the whole process group."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        self._fh = log.open("ab")
        self.proc = subprocess.Popen(
            [str(VRHUB), *args], env=env, stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._fh.close()

    def stop(self) -> None:
        """SIGINT (graceful), then SIGKILL of the group after 20 s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        else:
            try:  # build processes left in the group
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._fh.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def wait_http(url: str, proc: HubProcess, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise AssertionError(f"the process exited with {proc.proc.returncode}:\n{proc.output()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {timeout} s:\n{proc.output()}")
