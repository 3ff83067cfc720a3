"""Topics, publish and broadcast on the low-level Context: subscriptions and how they end,
exactly-once delivery, one compression per publish, slow subscribers, the Sender, bad input."""

import threading
import time
from collections import Counter

import pytest

import tidewire
from tidewire import CloseEvent, Context, MessageEvent, OpenEvent, PublishReport


def pump(ctxs, until, timeout=10.0, only=None):
    """Polls every context until ``until(events)`` is true for the events gathered so far
    (those of the context ``only`` when given: ids are per context)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ctx in ctxs:
            events = ctx.poll(0.005)
            if only is None or ctx is only:
                seen.extend(events)
        if until(seen):
            return seen
    raise AssertionError(f"condition not reached; {len(seen)} events")


def of(kind, events):
    return [e for e in events if type(e) is kind]


def open_clients(server, client, listener, count, **connect_kwargs):
    """Opens ``count`` connections from ``client`` to ``listener``; returns their
    server-side ids and their client-side ids, in the same order."""
    port = server.local_addr(listener)[1]
    ids = [client.connect(f"ws://127.0.0.1:{port}/", **connect_kwargs) for _ in range(count)]
    events = pump([server, client], lambda ev: len(of(OpenEvent, ev)) == 2 * count, timeout=20.0)
    server_side = [e.conn for e in of(OpenEvent, events) if e.listener is not None]
    # Each server-side connection names itself to its client, which pairs them up.
    for conn in server_side:
        server.send(conn, str(conn))
    events = pump([server, client], lambda ev: len(of(MessageEvent, ev)) == count)
    client_of = {int(m.data): m.conn for m in of(MessageEvent, events)}
    assert set(client_of.values()) == set(ids)
    return server_side, [client_of[conn] for conn in server_side]


@pytest.fixture
def contexts():
    server, client = Context(close_timeout=1.0), Context(close_timeout=1.0)
    yield server, client
    server.free()
    client.free()


def test_subscribe_unsubscribe_and_topics(contexts):
    server, client = contexts
    listener = server.listen("127.0.0.1", 0)
    (a, b), _ = open_clients(server, client, listener, 2)
    assert server.subscribe(a, "news") is True
    assert server.subscribe(a, b"news") is False  # str is its UTF-8 bytes: the same topic
    assert server.subscribe(a, bytearray(b"sp\xc3\xa9cial")) is True
    assert server.subscribe(b, memoryview("spécial".encode())) is True
    assert sorted(server.topics(a)) == [b"news", "spécial".encode()]
    assert server.subscriber_count("news") == 1
    assert server.subscriber_count("spécial") == 2
    assert server.subscriber_count("nobody") == 0
    assert server.topic_count() == 2
    assert server.unsubscribe(a, "news") is True
    assert server.unsubscribe(a, "news") is False
    assert server.unsubscribe(b, "never subscribed") is False
    assert server.topics(a) == ["spécial".encode()]
    assert server.topic_count() == 1
    with pytest.raises(tidewire.InvalidState):
        server.subscribe(0x7FFF_FFFF_0000_0001, "news")
    with pytest.raises(tidewire.InvalidState):
        server.topics(0x7FFF_FFFF_0000_0001)


def test_a_closed_connection_leaves_its_topics(contexts):
    server, client = contexts
    listener = server.listen("127.0.0.1", 0)
    (a, b), (ca, _) = open_clients(server, client, listener, 2)
    for conn in (a, b):
        server.subscribe(conn, "room")
        server.subscribe(conn, "lobby")
    server.subscribe(a, "only-a")
    assert server.topic_count() == 3
    client.close(ca)
    pump([server, client], lambda ev: len(of(CloseEvent, ev)) == 2)
    closed = server.subscriber_count("only-a") == 0 and server.subscriber_count("room") == 1
    assert closed and server.topic_count() == 2
    with pytest.raises(tidewire.InvalidState):
        server.subscribe(a, "room")
    with pytest.raises(tidewire.InvalidState):
        server.unsubscribe(a, "room")
    assert server.publish("only-a", "nobody left") == PublishReport()
    assert server.publish("room", "one left").delivered == 1


@pytest.mark.parametrize(
    "message", ["texte partagé", b"\x00binary\xff" * 10], ids=["text", "binary"]
)
def test_publish_reaches_every_subscriber_exactly_once(contexts, message):
    server, client = contexts
    listener = server.listen("127.0.0.1", 0)
    count = 200
    server_ids, client_ids = open_clients(server, client, listener, count)
    subscribed = server_ids[: count - 1]  # the last one stays out
    for conn in subscribed:
        assert server.subscribe(conn, "feed")
    reports = [server.publish("feed", message) for _ in range(3)]
    assert reports == [PublishReport(delivered=count - 1)] * 3
    events = pump(
        [server, client], lambda ev: len(of(MessageEvent, ev)) >= 3 * (count - 1), timeout=20.0
    )
    # A little longer, to catch a duplicate or a message to the one not subscribed.
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        events.extend(client.poll(0.01))
        server.poll(0)
    messages = of(MessageEvent, events)
    assert all(m.data == message and type(m.data) is type(message) for m in messages)
    per_conn = Counter(m.conn for m in messages)
    assert len(per_conn) == count - 1 and set(per_conn.values()) == {3}
    assert set(per_conn) == set(client_ids[: count - 1])


def test_deflate_compresses_a_publish_once_for_every_subscriber(contexts):
    server, client = contexts
    listener = server.listen("127.0.0.1", 0, compression="deflate")
    server_ids, _ = open_clients(server, client, listener, 20, compression="deflate")
    for conn in server_ids:
        server.subscribe(conn, "t")
    text = "the same words again and again " * 200
    for _ in range(3):
        assert server.publish("t", text) == PublishReport(delivered=20, compressions=1)
    report = server.broadcast(server_ids, text.encode())
    assert report == PublishReport(delivered=20, compressions=1)
    events = pump([server, client], lambda ev: len(of(MessageEvent, ev)) == 80)
    assert Counter(type(m.data) for m in of(MessageEvent, events)) == {str: 60, bytes: 20}
    assert all(m.data in (text, text.encode()) for m in of(MessageEvent, events))


def test_broadcast_to_a_list_of_connections(contexts):
    server, client = contexts
    listener = server.listen("127.0.0.1", 0)
    (a, b, c), _ = open_clients(server, client, listener, 3)
    stale = 0x7FFF_FFFF_0000_0001
    assert server.broadcast([a, b, stale], "hi") == PublishReport(delivered=2, not_open=1)
    assert server.broadcast((x for x in [c, c]), b"twice") == PublishReport(delivered=2)
    assert server.broadcast([], "nobody") == PublishReport()
    events = pump([server, client], lambda ev: len(of(MessageEvent, ev)) == 4)
    assert sorted(repr(m.data) for m in of(MessageEvent, events)) == sorted(
        ["'hi'", "'hi'", "b'twice'", "b'twice'"]
    )
    server.close(a)
    assert server.broadcast([a, b], "after close") == PublishReport(delivered=1, not_open=1)


@pytest.mark.parametrize("action", ["skip", "close"])
def test_a_slow_subscriber_is_skipped_or_closed_and_the_others_keep_receiving(action):
    # The close frame waits behind the slow subscriber's backlog: time enough to read it.
    server = Context(close_timeout=10.0)
    client = Context(max_message_size=64 << 20)
    try:
        listener = server.listen("127.0.0.1", 0, slow_subscriber=(1, action))
        (fast, slow), (cfast, cslow) = open_clients(server, client, listener, 2)
        for conn in (fast, slow):
            server.subscribe(conn, "big")
        client.pause_reading(cslow)  # the slow client reads nothing: its kernel buffers fill
        chunk = b"x" * (1 << 20)
        outcome = None
        received = 0
        for _ in range(64):
            report = server.publish("big", chunk)
            assert report.delivered >= 1
            # The fast subscriber gets every message before the next one is published.
            events = pump(
                [server, client],
                lambda ev: any(type(e) is MessageEvent and e.conn == cfast for e in ev),
                only=client,
            )
            received += sum(1 for m in of(MessageEvent, events) if m.conn == cfast)
            if report.skipped_slow or report.closed_slow:
                outcome = report
                break
        assert outcome is not None, "the slow subscriber never fell behind"
        if action == "skip":
            assert outcome == PublishReport(delivered=1, skipped_slow=1)
        else:
            assert outcome == PublishReport(delivered=1, closed_slow=1)
            assert server.publish("big", chunk) == PublishReport(delivered=1, not_open=1)
            events = pump([server, client], lambda ev: of(MessageEvent, ev))
            received += len(of(MessageEvent, events))
        # The fast one goes on receiving.
        assert server.publish("big", b"small").delivered >= 1
        pump(
            [server, client],
            lambda ev: any(type(e) is MessageEvent and e.data == b"small" for e in ev),
        )
        client.resume_reading(cslow)
        if action == "close":
            events = pump(
                [server, client],
                lambda ev: any(type(e) is CloseEvent and e.conn == cslow for e in ev),
                timeout=15.0,
                only=client,
            )
            closed = next(e for e in of(CloseEvent, events) if e.conn == cslow)
            assert (closed.code, closed.reason, closed.remote) == (1008, "too slow", True)
        else:
            assert client.is_open(cslow)
    finally:
        server.free()
        client.free()


def test_the_sender_publishes_from_another_thread(contexts):
    server, client = contexts
    listener = server.listen("127.0.0.1", 0)
    server_ids, _ = open_clients(server, client, listener, 3)
    for conn in server_ids:
        server.subscribe(conn, b"t")
    sender = server.sender()

    def publish():
        sender.publish("t", "from a thread")
        sender.publish(b"t", bytearray(b"bytes too"))
        sender.publish("nobody", "lost, and that is fine")

    thread = threading.Thread(target=publish)
    thread.start()
    thread.join()
    events = pump([server, client], lambda ev: len(of(MessageEvent, ev)) == 6)
    assert Counter(m.data for m in of(MessageEvent, events)) == {
        "from a thread": 3,
        b"bytes too": 3,
    }
    with pytest.raises(TypeError):
        sender.publish("t", 5)
    with pytest.raises(TypeError):
        sender.publish(5, "x")
    with pytest.raises(UnicodeEncodeError):
        sender.publish("t", "\ud800")


def test_bad_input_raises(contexts):
    server, client = contexts
    listener = server.listen("127.0.0.1", 0)
    (a,), _ = open_clients(server, client, listener, 1)
    for bad_topic in (5, None, ["t"]):
        with pytest.raises(TypeError, match="topic must be str or bytes-like"):
            server.subscribe(a, bad_topic)
        with pytest.raises(TypeError, match="topic must be str or bytes-like"):
            server.publish(bad_topic, "x")
    with pytest.raises(TypeError, match="data must be str or bytes-like"):
        server.publish("t", 5)
    with pytest.raises(TypeError):
        server.broadcast([a], {"not": "data"})
    with pytest.raises(TypeError):
        server.broadcast(["not an id"], "x")
    with pytest.raises(TypeError):
        server.broadcast(5, "x")
    # A str that has no UTF-8 form (a lone surrogate) is refused as `send` refuses it, and
    # nothing is sent.
    with pytest.raises(UnicodeEncodeError):
        server.publish("t", "\ud800")
    with pytest.raises(UnicodeEncodeError):
        server.broadcast([a], "\udfff")
    with pytest.raises(UnicodeEncodeError):
        server.subscribe(a, "\ud800")
    # The runtime checks the limit; the face reports its message.
    with pytest.raises(ValueError, match="slow_subscriber.limit must be at least 1"):
        server.listen("127.0.0.1", 0, slow_subscriber=(0, "skip"))
    with pytest.raises(ValueError, match="skip"):
        server.listen("127.0.0.1", 0, slow_subscriber=(1024, "drop"))
    with pytest.raises(OverflowError):
        server.listen("127.0.0.1", 0, slow_subscriber=(-1, "close"))
    with pytest.raises(TypeError):
        server.listen("127.0.0.1", 0, slow_subscriber=1024)


def test_publish_report_is_a_frozen_value():
    report = PublishReport(delivered=3, skipped_slow=1, closed_slow=2, not_open=4, compressions=1)
    assert (report.delivered, report.skipped_slow, report.closed_slow) == (3, 1, 2)
    assert (report.not_open, report.compressions) == (4, 1)
    assert report + PublishReport(delivered=1) == PublishReport(
        delivered=4, skipped_slow=1, closed_slow=2, not_open=4, compressions=1
    )
    assert PublishReport() == PublishReport(delivered=0)
    assert hash(PublishReport(delivered=1)) == hash(PublishReport(delivered=1))
    assert repr(PublishReport(delivered=2)).startswith("PublishReport(delivered=2, ")
    with pytest.raises(AttributeError):
        report.delivered = 5
