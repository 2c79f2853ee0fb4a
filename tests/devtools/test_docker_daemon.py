"""The private Docker daemon is shared by the callers of one folder (two test sessions, a test session beside the
local stack): a start reuses the daemon that answers, and only the last caller's stop stops it. (Before, a second
session's start stopped the daemon the first was using, and its Docker tests failed.)"""

import os
from pathlib import Path

import pytest

from histomics_label.devtools.docker.daemon import PrivateDaemon

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the private Docker daemon runs as root')


def test_two_callers_share_one_daemon_and_the_last_to_stop_stops_it(tmp_path):
    root = tmp_path / 'docker'
    first = PrivateDaemon(root).start()
    pid = int(first.pidfile.read_text())
    second = PrivateDaemon(root).start()
    try:
        assert int(second.pidfile.read_text()) == pid  # the same daemon, not started again
        first.stop()
        assert Path(f'/proc/{pid}').exists()
        assert second.docker('info', '--format', '{{.ServerVersion}}').stdout.strip()
    finally:
        second.stop()
    with pytest.raises(ChildProcessError):  # stopped, and reaped
        os.waitpid(pid, os.WNOHANG)
    assert not Path(f'/proc/{pid}').exists()
    third = PrivateDaemon(root).start()  # a later caller starts a new one
    try:
        assert int(third.pidfile.read_text()) != pid
    finally:
        third.stop()
