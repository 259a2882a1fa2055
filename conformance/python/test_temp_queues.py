"""Temporary queues (request/reply) and queue browsing, the way RabbitMQ and ActiveMQ users
write them with stomp.py: `reply-to:/temp-queue/NAME`, and `browser:true` on SUBSCRIBE."""

from stomp_client import QUIET, unique


def _one_request(server):
    assert server.rec.wait_for(lambda: server.rec.messages), "the service got no request"
    return server.rec.messages[0]


def test_rpc_round_trip_over_a_temp_queue(clients, version):
    service = f"/queue/{unique('rpc')}"
    server, requester = clients(version), clients(version)
    server.subscribe(service)
    requester.subscribe("/temp-queue/replies")
    requester.send(service, "ping",
                   headers={"reply-to": "/temp-queue/replies", "correlation-id": "c-1"})

    request = _one_request(server)
    reply_to = request.headers["reply-to"]
    # Rewritten to a destination the service can send to.
    assert reply_to.startswith("/queue/temp-queue."), reply_to
    server.send(reply_to, "pong",
                headers={"correlation-id": request.headers["correlation-id"]})

    assert requester.rec.wait_bodies(["pong"]) == ["pong"]
    assert requester.rec.messages[0].headers.get("correlation-id") == "c-1"


def test_reply_to_a_requester_that_left_is_refused(clients, version):
    service = f"/queue/{unique('rpc')}"
    server, requester = clients(version), clients(version)
    server.subscribe(service)
    requester.send(service, "ping", headers={"reply-to": "/temp-queue/r"})
    reply_to = _one_request(server).headers["reply-to"]
    assert requester.disconnect()

    server.send(reply_to, "too late", headers={"receipt": unique("late")})
    assert server.rec.wait_for(lambda: server.rec.errors), "no ERROR for a gone temp queue"
    assert "does not exist" in server.rec.errors[0].headers.get("message", "")


def test_temp_queue_is_private_to_its_connection(clients, version):
    service = f"/queue/{unique('rpc')}"
    server, requester, other = clients(version), clients(version), clients(version)
    server.subscribe(service)
    requester.send(service, "ping", headers={"reply-to": "/temp-queue/r"})
    reply_to = _one_request(server).headers["reply-to"]

    other.conn.subscribe(reply_to, id="steal", ack="auto")
    assert other.rec.wait_for(lambda: other.rec.errors), "another connection subscribed"
    assert "another connection" in other.rec.errors[0].headers.get("message", "")


def test_browse_peeks_without_consuming(clients, version):
    dest = f"/queue/{unique('browse')}"
    producer, browser, consumer = clients(version), clients(version), clients(version)
    producer.send_all(dest, ["a", "b", "c"])

    browser.conn.subscribe(dest, id="peek", ack="auto", headers={"browser": "true"})
    assert browser.rec.wait_for(
        lambda: any(m.headers.get("browser") == "end" for m in browser.rec.messages)
    ), f"no browser:end (errors={[e.headers for e in browser.rec.errors]})"
    seen = [m.body for m in browser.rec.messages if m.headers.get("browser") != "end"]
    assert seen == ["a", "b", "c"]

    consumer.subscribe(dest)
    assert consumer.rec.wait_bodies(["a", "b", "c"]) == ["a", "b", "c"]
    consumer.rec.wait_for(lambda: False, QUIET)
    assert consumer.rec.bodies() == ["a", "b", "c"]
