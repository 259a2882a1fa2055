"""Heart-beating (STOMP 1.1/1.2).

The built-in floors are 500 ms each way, so a 200 ms ask would be raised to 500 ms; this
module therefore runs its own broker whose acceptor's floors are 100 ms, so
`heartbeats=(200, 200)` negotiates 200 ms each way.
"""

import time

import pytest

from stomp_client import Client, unique
from wrenmq_broker import Broker

HB_CONFIG = """
[[acceptors]]
name = "stomp"
bind = "127.0.0.1:{port}"

[acceptors.heartbeat]
send-ms = 100
receive-ms = 100
"""


@pytest.fixture(scope="module")
def hb_broker():
    broker = Broker("heartbeat", HB_CONFIG).start()
    try:
        yield broker
    finally:
        broker.close()


def test_idle_connection_is_kept_alive_by_heartbeats(hb_broker, version11):
    c = Client(hb_broker.address, version11, heartbeats=(200, 200))
    try:
        c.connect()
        hb = c.rec.connected_frame.headers.get("heart-beat")
        assert hb is not None, "CONNECTED has no heart-beat header"
        sx, sy = (int(x) for x in hb.split(","))
        assert sx > 0 and sy > 0, f"broker declined heart-beats: heart-beat:{hb}"

        time.sleep(1.5)  # idle: only heart-beats flow

        assert c.rec.heartbeats >= 2, f"received {c.rec.heartbeats} heart-beats in 1.5 s idle"
        assert c.rec.heartbeat_timeouts == 0, "client saw a heart-beat timeout"
        assert not c.rec.disconnected, "connection closed while idle"
        assert c.rec.errors == [], [(e.headers, e.body) for e in c.rec.errors]

        # Still usable: the broker did not drop us for silence either.
        dest = f"/queue/{unique('hb')}"
        c.subscribe(dest)
        c.send_all(dest, ["still-alive"])
        assert c.rec.wait_bodies(["still-alive"]) == ["still-alive"]
    finally:
        c.close()
