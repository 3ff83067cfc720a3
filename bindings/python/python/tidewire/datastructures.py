"""HTTP pieces of the opening handshake: ``Headers``, ``Request``, ``Response``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Optional, Union

__all__ = ["Headers", "Request", "Response", "HeadersLike"]


class Headers(MutableMapping[str, str]):
    """HTTP headers: a case-insensitive mapping that keeps every value of repeated names.

    ``headers[name]`` is the only value of ``name`` (``KeyError`` when missing; a repeated
    name raises ``KeyError`` too, use ``get_all``). Iteration yields each name once.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Optional[HeadersLike] = None, **kwargs: str) -> None:
        self._items: list[tuple[str, str]] = []
        if items is not None:
            self.update(items)
        self.update(kwargs)

    def update(self, other: HeadersLike = (), /, **kwargs: str) -> None:  # type: ignore[override]
        pairs: Iterable[tuple[str, str]]
        if isinstance(other, Headers):
            pairs = other.raw_items()
        elif isinstance(other, Mapping):
            pairs = other.items()
        else:
            pairs = other
        for name, value in pairs:
            self._items.append((name, value))
        for name, value in kwargs.items():
            self._items.append((name, value))

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for n, v in self._items if n.lower() == key]

    def raw_items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair in order, names as received."""
        return list(self._items)

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if len(values) != 1:
            raise KeyError(name)
        return values[0]

    def __setitem__(self, name: str, value: str) -> None:
        self._items.append((name, value))

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        before = len(self._items)
        self._items = [(n, v) for n, v in self._items if n.lower() != key]
        if len(self._items) == before:
            raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        seen = set()
        for n, _ in self._items:
            if n.lower() not in seen:
                seen.add(n.lower())
                yield n

    def __len__(self) -> int:
        return len({n.lower() for n, _ in self._items})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return sorted((n.lower(), v) for n, v in self._items) == sorted(
            (n.lower(), v) for n, v in other._items
        )

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def __str__(self) -> str:
        return "".join(f"{n}: {v}\r\n" for n, v in self._items) + "\r\n"


HeadersLike = Union[Headers, Mapping[str, str], Iterable[tuple[str, str]]]


@dataclass
class Request:
    """The opening handshake request: ``path`` includes the query string."""

    path: str
    headers: Headers = field(default_factory=Headers)


@dataclass
class Response:
    """An HTTP response: the server's answer to the upgrade request, or one that
    ``process_request`` returns to refuse it."""

    status_code: int
    reason_phrase: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
