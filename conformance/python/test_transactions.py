"""BEGIN / COMMIT / ABORT for sends and acknowledgements."""

from collections import Counter

from stomp_client import QUIET, unique


def test_commit_delivers_transactional_sends(clients, version):
    dest = f"/queue/{unique('tx-commit')}"
    consumer, producer = clients(version), clients(version)
    consumer.subscribe(dest)
    tx = producer.conn.begin(transaction=unique("tx"))
    producer.send(dest, "tx0", transaction=tx)
    producer.send(dest, "tx1", transaction=tx)
    # Before COMMIT nothing is delivered: a non-transactional message overtakes them.
    producer.send_all(dest, ["outside"])
    consumer.rec.wait_bodies(["outside"])
    consumer.rec.wait_for(lambda: False, QUIET)
    assert consumer.rec.bodies() == ["outside"], "transactional sends delivered before COMMIT"

    rid = unique("commit")
    producer.conn.commit(transaction=tx, headers={"receipt": rid})
    assert producer.rec.wait_receipt(rid), "no RECEIPT for COMMIT"
    consumer.rec.wait_bodies(["outside", "tx0", "tx1"])
    consumer.rec.wait_for(lambda: False, QUIET)
    assert consumer.rec.bodies() == ["outside", "tx0", "tx1"]


def test_abort_discards_transactional_sends(clients, version):
    dest = f"/queue/{unique('tx-abort')}"
    consumer, producer = clients(version), clients(version)
    consumer.subscribe(dest)
    tx = producer.conn.begin(transaction=unique("tx"))
    producer.send(dest, "aborted0", transaction=tx)
    producer.send(dest, "aborted1", transaction=tx)
    rid = unique("abort")
    producer.conn.abort(transaction=tx, headers={"receipt": rid})
    assert producer.rec.wait_receipt(rid), "no RECEIPT for ABORT"
    producer.send_all(dest, ["after"])
    consumer.rec.wait_bodies(["after"])
    consumer.rec.wait_for(lambda: False, QUIET)
    assert consumer.rec.bodies() == ["after"], "aborted sends were delivered"


def test_ack_inside_transaction(clients, version):
    """An ACK in an aborted transaction does not count; one in a committed one does."""
    mode = "client" if version == "1.0" else "client-individual"
    dest = f"/queue/{unique('tx-ack')}"
    producer = clients(version)
    first = clients(version)
    first.subscribe(dest, ack=mode)
    producer.send_all(dest, ["k0", "k1"])
    first.rec.wait_bodies(["k0", "k1"])

    tx1 = first.conn.begin(transaction=unique("tx"))
    first.ack(first.message("k1"), transaction=tx1)
    first.conn.abort(transaction=tx1)
    tx2 = first.conn.begin(transaction=unique("tx"))
    first.ack(first.message("k0"), transaction=tx2)
    rid = unique("commit")
    first.conn.commit(transaction=tx2, headers={"receipt": rid})
    assert first.rec.wait_receipt(rid), "no RECEIPT for COMMIT"
    assert first.rec.errors == [], [(e.headers, e.body) for e in first.rec.errors]
    assert first.disconnect(), "no RECEIPT for DISCONNECT"

    # k0 was acked (committed); k1's ack was aborted, so k1 comes back.
    second = clients(version)
    second.subscribe(dest)
    sentinel = unique("sentinel")
    producer.send_all(dest, [sentinel])
    second.rec.wait_bodies(["k1", sentinel])
    second.rec.wait_for(lambda: False, QUIET)
    got = second.rec.bodies()
    assert Counter(got) == Counter(["k1", sentinel]), f"expected k1 redelivered, got {got}"
