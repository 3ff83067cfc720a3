"""The exception tree and its fields (raised for real in the sync and asyncio tests)."""

import pytest

import tidewire
from tidewire.exceptions import closed_exception


def test_connection_closed_carries_code_and_reason():
    exc = tidewire.ConnectionClosedError(1011, "internal error")
    assert (exc.code, exc.reason) == (1011, "internal error")
    assert str(exc) == "1011 (internal error) internal error"
    assert isinstance(exc, tidewire.ConnectionClosed)
    assert isinstance(exc, tidewire.WebSocketException)


@pytest.mark.parametrize("code", [1000, 1001, 1005])
def test_clean_close_with_normal_code_is_ok(code):
    assert type(closed_exception(code, "", True)) is tidewire.ConnectionClosedOK


@pytest.mark.parametrize("code,clean", [(1000, False), (1006, False), (1011, True), (4000, True)])
def test_unclean_or_error_close_is_an_error(code, clean):
    assert type(closed_exception(code, "", clean)) is tidewire.ConnectionClosedError


def test_close_1009_has_payload_too_big_as_cause():
    exc = closed_exception(1009, "message too big", True)
    assert isinstance(exc.__cause__, tidewire.PayloadTooBig)


@pytest.mark.parametrize("code", [1002, 1007])
def test_protocol_failures_have_protocol_error_as_cause(code):
    assert isinstance(closed_exception(code, "", True).__cause__, tidewire.ProtocolError)


def test_invalid_status_carries_status_code_and_response():
    exc = tidewire.InvalidStatus(403, "Forbidden")
    assert exc.status_code == 403
    assert exc.response.status_code == 403
    assert "403" in str(exc)
    assert isinstance(exc, tidewire.InvalidHandshake)


def test_invalid_uri_and_invalid_header_fields():
    assert tidewire.InvalidURI("http://x", "bad scheme").uri == "http://x"
    exc = tidewire.InvalidHeader("Upgrade")
    assert exc.name == "Upgrade" and exc.value is None
    assert str(exc) == "missing Upgrade header"


def test_state_and_concurrency_errors_are_also_builtin_kinds():
    assert issubclass(tidewire.InvalidState, AssertionError)
    assert issubclass(tidewire.ConcurrencyError, RuntimeError)
    for cls in (tidewire.InvalidMessage, tidewire.InvalidHeader, tidewire.NegotiationError):
        assert issubclass(cls, tidewire.InvalidHandshake)
