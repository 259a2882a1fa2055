"""Starts and stops the built `wrenmq` binary for the conformance tests.

The broker runs in its own process group on a free loopback port (never 61613/61614), with a
temporary data directory. It is stopped by `stop()`, by an atexit hook, and - should this Python
process die without running either - by the kernel (PR_SET_PDEATHSIG), so no broker outlives
the suite.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

RESERVED_PORTS = {61613, 61614}
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ARTIFACTS = HERE.parent / "artifacts"

_live: set["Broker"] = set()


def broker_binary() -> Path:
    """The broker under test: $WRENMQ_BIN (set by run.sh) or the repo's debug build."""
    path = Path(os.environ.get("WRENMQ_BIN") or REPO / "target" / "debug" / "wrenmq")
    if not path.is_file():
        raise RuntimeError(
            f"broker binary {path} not found: run conformance/run.sh, or "
            "`cargo build --bin wrenmq` and set WRENMQ_BIN"
        )
    return path


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's pick), never 61613/61614."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port
    raise RuntimeError("no free loopback port")


def _die_with_parent() -> None:
    """preexec_fn: the broker gets SIGKILL if the Python process that started it dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass  # not Linux/glibc: the process group + atexit still apply


class Broker:
    """One running broker. `config` is TOML text written to a file and passed as --config;
    the string `{port}` in it is replaced by the chosen port."""

    def __init__(self, name: str, config: str | None = None):
        self.name = name
        self.config = config
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.tmp = Path(tempfile.mkdtemp(prefix=f"wrenmq-conf-{name}-"))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"broker-{name}.log"

    @property
    def address(self) -> tuple[str, int]:
        assert self.port is not None
        return (self.host, self.port)

    def start(self) -> "Broker":
        binary = broker_binary()
        last_error = ""
        for _attempt in range(5):
            self.port = free_port()
            args = [
                str(binary),
                "--bind", f"{self.host}:{self.port}",
                "--admin-bind", f"{self.host}:0",
                "--data-dir", str(self.tmp / "data"),
            ]
            if self.config is not None:
                cfg = self.tmp / "broker.toml"
                cfg.write_text(self.config.replace("{port}", str(self.port)))
                args += ["--config", str(cfg)]
            log = open(self.log_path, "ab")
            log.write(f"\n=== {' '.join(args)}\n".encode())
            log.flush()
            env = dict(os.environ)
            env.setdefault("RUST_LOG", "info")
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmp,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            log.close()
            _live.add(self)
            if self._wait_listening():
                return self
            last_error = self.log_path.read_text(errors="replace")[-2000:]
            self.stop()
            if "in use" not in last_error.lower():
                break  # not a port race: retrying would not help
        raise RuntimeError(f"broker {self.name} did not start; its log ends with:\n{last_error}")

    def _wait_listening(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(self.address, timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        """Stops the broker (SIGTERM to its group, SIGKILL after STOP_TIMEOUT); returns its
        exit status, or None if it had to be killed."""
        status = None
        proc, self.proc = self.proc, None
        _live.discard(self)
        if proc is not None:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    status = proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(timeout=STOP_TIMEOUT)
            else:
                status = proc.returncode
        return status

    def close(self) -> int | None:
        """Stops the broker and removes its temporary directory."""
        status = self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return status


@atexit.register
def _stop_all() -> None:
    for broker in list(_live):
        broker.close()
