"""Protocol errors: an ERROR frame, then the broker closes the connection."""

from stomp_client import unique


def test_invalid_ack_mode_gives_error_and_close(clients, version):
    c = clients(version)
    dest = f"/queue/{unique('err')}"
    c.conn.subscribe(dest, id="bad", ack="bogus-mode")
    assert c.rec.wait_for(lambda: c.rec.errors), "no ERROR frame for ack:bogus-mode"
    err = c.rec.errors[0]
    assert "message" in err.headers, f"ERROR without message header: {err.headers}"
    # The broker closes the connection after ERROR (we never close it ourselves here).
    assert c.rec.wait_for(lambda: c.rec.disconnected), "connection still open after ERROR"
    assert c.rec.messages == []
