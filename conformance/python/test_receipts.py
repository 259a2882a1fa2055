"""RECEIPT frames for SEND, SUBSCRIBE and DISCONNECT."""

from stomp_client import PROTOCOL_CLASSES, WAIT, unique


def test_receipts_for_send_subscribe_disconnect(clients, version):
    dest = f"/queue/{unique('receipts')}"
    c = clients(version)

    c.conn.subscribe(dest, id="s1", ack="auto", headers={"receipt": "r-subscribe"})
    assert c.rec.wait_receipt("r-subscribe"), f"no RECEIPT for SUBSCRIBE, got {c.rec.receipts}"

    c.conn.send(dest, "with-receipt", headers={"receipt": "r-send"})
    assert c.rec.wait_receipt("r-send"), f"no RECEIPT for SEND, got {c.rec.receipts}"
    assert c.rec.wait_bodies(["with-receipt"]) == ["with-receipt"]

    PROTOCOL_CLASSES[version].disconnect(c.conn, receipt="r-disconnect")
    assert c.rec.wait_receipt("r-disconnect"), (
        f"no RECEIPT for DISCONNECT within {WAIT}s, got {c.rec.receipts}"
    )
    assert c.rec.receipts == ["r-subscribe", "r-send", "r-disconnect"]
    assert c.rec.errors == []
