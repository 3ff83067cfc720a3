import os
import resource
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wsraw import FACES, start_server  # noqa: E402

# The attacks open many sockets at once (slowloris on every face).
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))


# HOSTILE_FACES=rust,c limits a run to some faces.
@pytest.fixture(params=os.environ.get("HOSTILE_FACES", ",".join(FACES)).split(","))
def face(request):
    return request.param


@pytest.fixture
def server(face):
    srv = start_server(face)
    try:
        yield srv
    finally:
        alive = srv.alive()
        srv.stop()
        srv.log.unlink(missing_ok=True)
        assert alive, f"{face} echo server died during the test"
