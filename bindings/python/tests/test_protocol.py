"""The connection model both APIs share (tidewire._protocol, _client_model, _server_model),
driven without sockets: a recording stand-in for the context, events built by hand."""

from types import SimpleNamespace

import pytest

import tidewire
from tidewire._client_model import ClientModel
from tidewire._protocol import ConnectionModel, State, is_whole_message, ping_payload
from tidewire._queue import queue_limits
from tidewire._server_model import ServerModel, ServerSetup, policy_kwargs, server_setup
from tidewire.datastructures import Response


class FakeContext:
    """Records what the model asks of the context; ``over`` makes it refuse (InvalidState)."""

    def __init__(self):
        self.calls = []
        self.over = False

    def __getattr__(self, name):
        def call(*args):
            self.calls.append((name, *args))
            if self.over:
                raise tidewire.InvalidState(f"{name}: the connection is over")
            answers = {
                "peer_addr": ("127.0.0.1", 4321),
                "release_close_reply": True,
                "latency": 0.042,
            }
            return answers.get(name, False)

        return call


class Waiter:
    def __init__(self):
        self.done = False


class Recorder:
    """The waking hooks of an I/O layer, recorded."""

    def _wake_engine(self):
        self.woken.append("engine")

    def _writable(self):
        self.woken.append("writable")

    def _pong_arrived(self, waiter, latency):
        waiter.done = True
        waiter.latency = latency

    def _wake_open(self):
        self.woken.append("open")

    def _wake_closed(self):
        self.woken.append("closed")


class Model(Recorder, ConnectionModel):
    pass


class Client(Recorder, ClientModel):
    pass


class Server(Recorder, ServerModel):
    pass


def make(cls=Model):
    runner = SimpleNamespace(ctx=FakeContext(), handlers={})
    limits = queue_limits(None, None)
    if issubclass(cls, ServerModel):
        raw = SimpleNamespace(path="/", query="q=1", headers=[("Host", "h")])
        request = SimpleNamespace(conn=7, request=raw, subprotocol="chat")
        model = cls(runner, request, close_timeout=1.0, queue_limits=limits)
    else:
        model = cls(runner, 7, close_timeout=1.0, queue_limits=limits)
        runner.handlers[7] = model
    model.woken = []
    return model, runner.ctx, runner.handlers


@pytest.fixture
def events(monkeypatch):
    """Stand-ins for the event classes, which only the native side can make: the model tells
    events apart with `type(event) is`, so its own names for them are swapped for the test."""
    import tidewire._protocol as protocol

    kinds = {}
    for name in (
        "MessageEvent",
        "CloseHeldEvent",
        "WritableEvent",
        "PongEvent",
        "OpenEvent",
        "CloseEvent",
        "ErrorEvent",
    ):
        kinds[name] = type(name, (SimpleNamespace,), {})
        monkeypatch.setattr(protocol, name, kinds[name])
    return SimpleNamespace(**kinds)


def test_ping_payload_is_random_unless_given():
    assert len(ping_payload(None)) == 4 and ping_payload(None) != ping_payload(None)
    assert ping_payload("hé") == "hé".encode()
    assert ping_payload(bytearray(b"ab")) == b"ab"


def test_whole_messages_are_str_and_bytes_like_and_a_dict_is_neither():
    for message in ("a", b"a", bytearray(b"a"), memoryview(b"a")):
        assert is_whole_message(message)
    assert not is_whole_message(["a", "b"])
    with pytest.raises(TypeError):
        is_whole_message({"a": 1})


def test_a_pong_acknowledges_its_ping_and_every_earlier_one():
    model, ctx, _ = make()
    first, second, third = (model._queue_ping(p, Waiter) for p in (b"1", b"2", b"3"))
    assert [c[0] for c in ctx.calls] == ["ping"] * 3
    model._on_pong(b"2")
    assert (first.done, second.done, third.done) == (True, True, False)
    model._on_pong(b"unknown")
    assert not third.done
    assert list(model._pings) == [b"3"]


def test_a_pong_refreshes_latency_and_gives_each_waiter_the_time_since_its_ping():
    model, ctx, _ = make()
    assert model.latency == 0.0
    first = model._queue_ping(b"1", Waiter)
    second = model._queue_ping(b"2", Waiter)
    model._on_pong(b"unknown")  # any pong: the context may have measured a keepalive ping
    assert ("latency", 7) in ctx.calls and model.latency == 0.042
    model._on_pong(b"2")
    assert 0 <= second.latency <= first.latency < 5
    assert model._ping_times == {}
    ctx.over = True
    model._on_pong(b"late")  # the connection is over: the last figure stays
    assert model.latency == 0.042


def test_a_second_ping_with_the_same_payload_is_refused():
    model, _, _ = make()
    model._queue_ping(b"same", Waiter)
    with pytest.raises(tidewire.ConcurrencyError):
        model._queue_ping("same", Waiter)


def test_a_ping_on_a_closed_connection_raises_invalid_state_and_waits_for_nothing():
    model, ctx, _ = make()
    ctx.over = True
    with pytest.raises(tidewire.InvalidState):
        model._queue_ping(b"x", Waiter)
    assert model._pings == {}


def test_fragments_take_the_type_of_the_first_and_end_with_an_empty_final_one():
    model, ctx, _ = make()
    text, _ = model._queue_fragment("a", None)
    assert text is True
    model._queue_fragment("é", text)
    with pytest.raises(TypeError):
        model._queue_fragment(b"b", text)
    model._end_fragments()
    assert ctx.calls == [
        ("begin_message", 7, True),
        ("send_fragment", 7, b"a", False),
        ("send_fragment", 7, "é".encode(), False),
        ("send_fragment", 7, b"", True),
    ]
    with pytest.raises(TypeError):
        model._queue_fragment(5, None)


def test_closing_starts_once_and_reads_on_to_receive_the_peers_close():
    model, ctx, _ = make()
    model._state = State.OPEN
    model._start_close(1001, "bye")
    assert model.state is State.CLOSING
    model._start_close(1000, "")
    assert ctx.calls == [("close", 7, 1001, "bye")]
    assert model._messages._closing


def test_events_set_what_the_connection_knows(events):
    model, _, _ = make()
    assert model.on_event(
        events.OpenEvent(subprotocol="chat", extensions=None, peer_addr=["::1", 9], headers=[])
    )
    assert model.state is State.OPEN and model.subprotocol == "chat"
    assert model.remote_address == ("::1", 9)
    assert model.on_event(events.MessageEvent(data="hi"))
    assert model.on_event(events.CloseEvent(code=1000, reason="done", clean=True, remote=True))
    assert model.state is State.CLOSED and model.close_code == 1000
    assert model.woken == ["open", "closed"]
    assert isinstance(model._closed_exception(), tidewire.ConnectionClosedOK)
    assert model._messages.popleft() == "hi"


def test_a_held_close_waits_until_the_messages_before_it_were_answered(events):
    model, ctx, _ = make()
    model.on_event(events.MessageEvent(data="question"))
    assert model.on_event(events.CloseHeldEvent()) is False
    assert ("release_close_reply", 7) not in ctx.calls
    model._messages.popleft()
    model._back_for_more()
    assert ("release_close_reply", 7) in ctx.calls


def test_an_error_before_open_is_what_connect_raises(events):
    model, _, _ = make(Client)
    cause = ConnectionResetError("reset")
    model.on_event(events.ErrorEvent(error=cause))
    error = model._opening_error(timed_out=False)
    assert isinstance(error, tidewire.InvalidMessage) and error.__cause__ is cause
    assert isinstance(model._opening_error(timed_out=True), TimeoutError)


def test_a_client_reports_the_101_response_it_received(events):
    model, _, _ = make(Client)
    model.on_event(
        events.OpenEvent(
            subprotocol=None,
            extensions=None,
            peer_addr=("h", 1),
            headers=[("Upgrade", "websocket")],
        )
    )
    assert model.response.status_code == 101
    assert model.response.headers["Upgrade"] == "websocket"


# -- the server side -----------------------------------------------------------------------


def setup(**options):
    defaults = dict(
        ssl=None,
        subprotocols=None,
        origins=None,
        compression="deflate",
        max_size=None,
        open_timeout=None,
        close_timeout=None,
        ping_interval=None,
        ping_timeout=None,
        write_limit=None,
        max_queue=None,
        max_queue_bytes=None,
        reuse_port=False,
        peer_limits=None,
    )
    return server_setup(**dict(defaults, **options))


def test_accepting_opens_with_a_101_response_and_the_subprotocol_the_engine_selected():
    model, ctx, handlers = make(Server)
    assert handlers[7] is model
    assert model._decide(None) is True
    assert model.state is State.OPEN and model._opened
    assert model.remote_address == ("127.0.0.1", 4321)
    assert model.response.status_code == 101
    assert ("accept", 7, "chat") in ctx.calls and 7 in handlers
    assert model.subprotocol == "chat"
    assert model.response.headers["Sec-WebSocket-Protocol"] == "chat"
    assert model.request.path == "/?q=1" and model.request.headers["Host"] == "h"


def test_refusing_closes_the_connection_in_both_apis_alike():
    model, ctx, handlers = make(Server)
    refusal = Response(401, "Unauthorized", body=b"no")
    assert model._decide(refusal) is False
    assert ctx.calls[0][:3] == ("reject", 7, 401)
    assert model.state is State.CLOSED and model.close_code == 1006
    assert model.response is refusal
    assert 7 not in handlers
    assert model.woken == ["closed", "engine"]


def test_a_request_gone_before_the_answer_is_closed():
    model, ctx, handlers = make(Server)
    ctx.over = True
    assert model._decide(None) is False
    assert model.state is State.CLOSED and 7 not in handlers


def test_a_failed_process_request_is_answered_500_only_before_any_answer():
    model, ctx, _ = make(Server)
    model._decide(None)
    model._handshake_failed()
    assert not any(call[0] == "reject" for call in ctx.calls)
    assert model.state is State.OPEN
    fresh, ctx, _ = make(Server)
    fresh._handshake_failed()
    assert ctx.calls[0][:3] == ("reject", 7, 500)


def test_server_setup_checks_its_arguments_before_anything_is_opened():
    assert isinstance(setup(), ServerSetup)
    with pytest.raises(ValueError):
        setup(compression="brotli")
    with pytest.raises(TypeError):
        setup(subprotocols="chat")
    with pytest.raises(ValueError, match="unknown peer limits"):
        setup(peer_limits={"nope": 1})


def test_websockets_policy_arguments_become_the_listeners_rules():
    assert policy_kwargs(None, None) == {}
    assert policy_kwargs(["chat", "v2"], None) == {
        "subprotocols": ["chat", "v2"],
        "require_subprotocol": True,
    }
    assert policy_kwargs(None, ["https://a"]) == {"origins": ["https://a"], "require_origin": True}
    # None among the origins: requests without Origin are let in.
    assert policy_kwargs(None, ["https://a", None]) == {
        "origins": ["https://a"],
        "require_origin": False,
    }
    assert policy_kwargs([], None) == {}
    with pytest.raises(TypeError):
        policy_kwargs(None, "https://a")
    assert setup(subprotocols=["chat"]).listen_kwargs["require_subprotocol"] is True
