"""The package as installed: the wheel, not the source tree; typed; one native module."""

from pathlib import Path

import pytest

import tidewire
import tidewire._tidewire as native

SOURCE = Path(__file__).resolve().parents[1] / "python"


def test_tests_run_against_the_installed_wheel_not_the_source_tree():
    installed = Path(tidewire.__file__).resolve()
    assert SOURCE not in installed.parents
    assert "site-packages" in installed.parts


def test_native_module_is_private_and_reexported():
    assert native.__name__ == "tidewire._tidewire"
    assert tidewire.Context is native.Context
    assert tidewire.__version__ == native.__version__


def test_package_ships_stubs_and_py_typed():
    package = Path(tidewire.__file__).parent
    assert (package / "py.typed").exists()
    assert (package / "_tidewire.pyi").exists()


def test_every_public_name_exists():
    for name in tidewire.__all__:
        assert hasattr(tidewire, name), name


def test_native_module_raises_the_exception_classes_the_package_handed_down():
    given = {name: getattr(tidewire.exceptions, name) for name in tidewire.exceptions.__all__}
    native._init(exceptions=given)  # the same classes again: nothing changes
    other = dict(given, InvalidState=type("InvalidState", (Exception,), {}))
    with pytest.raises(RuntimeError):
        native._init(exceptions=other)
    with pytest.raises(TypeError):
        native._init(exceptions=dict(given, InvalidURI="not a class"))
    ctx = tidewire.Context()
    ctx.free()
    with pytest.raises(tidewire.InvalidState):
        ctx.poll(0)


EVENT_RENAMES = {
    "Open": "OpenEvent",
    "Message": "MessageEvent",
    "Ping": "PingEvent",
    "Pong": "PongEvent",
    "Writable": "WritableEvent",
    "CloseHeld": "CloseHeldEvent",
    "Closed": "CloseEvent",
    "Error": "ErrorEvent",
    "SendFailed": "SendFailedEvent",
    "Wake": "WakeEvent",
    "HttpRequest": "HttpRequestEvent",
}


def test_every_event_class_name_ends_in_event():
    for name in dir(native):
        cls = getattr(native, name)
        if isinstance(cls, type) and hasattr(cls, "__match_args__"):
            assert name.endswith("Event"), name
            assert getattr(tidewire, name) is cls, name
            assert name in tidewire.__all__, name


@pytest.mark.parametrize("old, new", sorted(EVENT_RENAMES.items()))
def test_old_event_names_still_work_with_a_deprecation_warning(old, new):
    with pytest.deprecated_call(match=f"tidewire.{new}"):
        cls = getattr(tidewire, old)
    assert cls is getattr(tidewire, new)
    assert old not in tidewire.__all__


def test_from_import_of_an_old_event_name_warns():
    with pytest.deprecated_call():
        from tidewire import Error
    assert Error is tidewire.ErrorEvent


def test_unknown_names_still_raise_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchName"):
        tidewire.NoSuchName  # noqa: B018
