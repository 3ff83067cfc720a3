"""Headers, Request, Response."""

import pytest

from tidewire import Headers


def test_headers_are_case_insensitive_and_keep_repeated_values():
    h = Headers([("Sec-WebSocket-Protocol", "a"), ("sec-websocket-protocol", "b"), ("X", "1")])
    assert h.get_all("SEC-WEBSOCKET-PROTOCOL") == ["a", "b"]
    assert h["x"] == "1"
    assert "x" in h and "y" not in h
    assert list(h) == ["Sec-WebSocket-Protocol", "X"]
    assert len(h) == 2


def test_headers_getitem_refuses_missing_and_repeated_names():
    h = Headers([("A", "1"), ("a", "2")])
    with pytest.raises(KeyError):
        h["a"]
    with pytest.raises(KeyError):
        h["b"]


def test_headers_from_mapping_and_deletion():
    h = Headers({"A": "1"}, B="2")
    del h["a"]
    assert h.raw_items() == [("B", "2")]
    with pytest.raises(KeyError):
        del h["a"]
    assert Headers({"b": "2"}) == h
