"""Fixtures: a session-wide broker with the built-in default configuration, and clients.

Each test uses its own uniquely named destinations, so tests sharing the broker cannot see
each other's messages.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stomp_client import Client  # noqa: E402
from wrenmq_broker import Broker  # noqa: E402


def _terminate(signum, _frame):
    # SIGTERM (run.sh's timeout or trap): unwind like Ctrl-C so fixtures stop the broker.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    signal.signal(signal.SIGTERM, _terminate)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Writes `passed failed skipped` for run.sh, which sums the parts."""
    out = os.environ.get("CONFORMANCE_COUNTS")
    if not out:
        return
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    skipped = len(stats.get("skipped", []))
    Path(out).write_text(f"{passed} {failed} {skipped}\n")


def _broker(name: str, config: str | None = None):
    broker = Broker(name, config).start()
    try:
        yield broker
        assert broker.alive(), (
            f"broker {name} exited during the tests (status {broker.proc.returncode}); "
            f"see {broker.log_path}"
        )
    finally:
        broker.close()


@pytest.fixture(scope="session")
def broker():
    """The broker with its built-in defaults (no --config)."""
    yield from _broker("default")


@pytest.fixture
def clients(broker):
    """Factory for connected clients; every client is disconnected at teardown."""
    made: list[Client] = []

    def make(version="1.2", heartbeats=(0, 0), auto_decode=True, connect=True,
             address=None, headers=None):
        c = Client(address or broker.address, version, heartbeats, auto_decode)
        made.append(c)
        if connect:
            c.connect(headers)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture(params=["1.0", "1.1", "1.2"])
def version(request):
    return request.param


@pytest.fixture(params=["1.1", "1.2"])
def version11(request):
    """STOMP versions with NACK, client-individual, heart-beats and header escaping."""
    return request.param
