"""A private Docker daemon for the tests and the local stack: its own socket, data root and PID file.

These machines run no Docker service and cannot pull from a registry; a DSA host has its own daemon and never uses
this module. The daemon keeps its data (images, the build cache) in a cache folder, so the Debian base and the
image's layers survive between runs. Several callers on one folder (two test sessions, a test session beside the
local stack) share one daemon: each holds a shared lock on the folder while it uses it, a start reuses a daemon that
answers, and the last caller to stop stops it by its PID.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..debian import ensure_debian_packages

DOCKERD = '/usr/sbin/dockerd'
DOCKER = '/usr/bin/docker'


class DockerError(RuntimeError):
    """Docker could not be installed, started or used; the message says which and why."""


def state_dir() -> Path:
    """Where the private daemon keeps its images between runs: ``$HISTOMICS_LABEL_DOCKER_DIR``, else
    ``$XDG_CACHE_HOME/histomics_label/docker``. Callers on one folder share its daemon."""
    if os.environ.get('HISTOMICS_LABEL_DOCKER_DIR'):
        return Path(os.environ['HISTOMICS_LABEL_DOCKER_DIR'])
    cache = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(cache) / 'histomics_label' / 'docker'


def ensure_docker() -> None:
    """Install Debian's Docker engine and mmdebstrap when they are missing (as root, with apt-get)."""
    if not (Path(DOCKERD).is_file() and Path(DOCKER).is_file() and shutil.which('mmdebstrap')):
        ensure_debian_packages(['docker.io', 'mmdebstrap'])
    for binary in (DOCKERD, DOCKER):
        if not Path(binary).is_file():
            raise DockerError(f'apt-get installed docker.io but {binary} is not there')


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs: a child of this process that exited is reaped (a daemon started here that
    another caller stopped), one of another process's is gone once its ``/proc`` entry is."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return Path(f'/proc/{pid}').exists()


class PrivateDaemon:
    """``dockerd`` on its own socket; ``env`` is what a ``docker`` client or ``docker.from_env()`` needs to reach it.

    No bridge and no iptables rules: containers use the host's network (``--network host``), as builds do.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or state_dir())
        # containerd's sockets live under the exec root, whose path must stay short (a unix socket path is at most
        # 108 bytes): a short folder in /tmp named after the data root
        digest = hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:10]
        self.exec_root = Path('/tmp') / f'hl-docker-{digest}'
        self.socket = self.root / 'docker.sock'
        self.pidfile = self.root / 'dockerd.pid'
        self.log = self.root / 'dockerd.log'
        self._process: subprocess.Popen | None = None
        self._use: IO | None = None

    @property
    def host(self) -> str:
        return f'unix://{self.socket}'

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, 'DOCKER_HOST': self.host}

    def docker(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        """Run the ``docker`` client against this daemon."""
        result = subprocess.run([DOCKER, *args], env=self.env, capture_output=True, text=True, **kwargs)
        if check and result.returncode:
            raise DockerError(f'docker {" ".join(args[:3])} failed ({result.returncode}): '
                              f'{result.stderr.strip()[-1000:]}\n{result.stdout.strip()[-3000:]}')
        return result

    def start(self, timeout: float = 30) -> PrivateDaemon:
        """Use the folder's daemon: the one another caller runs when it answers, else a new one (stopping one this
        folder left hung), once it answers."""
        ensure_docker()
        if os.geteuid() != 0:
            raise DockerError('the private Docker daemon runs as root; run the Docker tests as root or give '
                              'DOCKER_HOST of a daemon you run')
        self.root.mkdir(parents=True, exist_ok=True)
        with self._starting():
            self._use = open(self.root / 'users.lock', 'a')  # noqa: SIM115 - held until stop()
            fcntl.flock(self._use, fcntl.LOCK_SH)
            try:
                if not self._answers():
                    self.stop_leftover()
                    self._launch(timeout)
            except BaseException:
                self._use.close()
                self._use = None
                raise
        return self

    def _launch(self, timeout: float) -> None:
        command = [DOCKERD, '--iptables=false', '--ip6tables=false', '--bridge=none',
                   '--data-root', str(self.root / 'data'), '--exec-root', str(self.exec_root),
                   '--pidfile', str(self.pidfile), '--storage-driver', 'overlay2', '-H', self.host]
        with self.log.open('ab') as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DockerError(f'dockerd exited ({self._process.returncode}); its log: {self._tail()}')
            if self._answers():
                return
            time.sleep(0.2)
        self._halt()
        raise DockerError(f'dockerd did not answer on {self.socket} within {timeout:.0f} s; its log: {self._tail()}')

    def stop(self) -> None:
        """Stop using the daemon; the last caller to stop stops it by its PID and releases what it mounted."""
        with self._starting():
            if self._use is not None:
                try:
                    fcntl.flock(self._use, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # another caller still uses it
                    self._use.close()
                    self._use, self._process = None, None
                    return
            self._halt()
            if self._use is not None:
                self._use.close()
                self._use = None

    def _halt(self) -> None:
        """Stop the daemon by its PID (the process this caller started, else the one the PID file names)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        else:
            self.stop_leftover()
        self._release_mounts()

    def _answers(self) -> bool:
        return self.docker('version', '--format', '{{.Server.Version}}', check=False).returncode == 0

    @contextlib.contextmanager
    def _starting(self) -> Iterator[None]:
        """One caller at a time starts or stops the folder's daemon."""
        with open(self.root / 'start.lock', 'a') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def stop_leftover(self) -> None:
        """Stop a daemon an interrupted run left on this folder (its PID file names it)."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            for _ in range(150):
                if not _running(pid):
                    break
                time.sleep(0.2)
            else:
                os.kill(pid, signal.SIGKILL)
        self._release_mounts()

    def _release_mounts(self) -> None:
        netns = self.exec_root / 'netns' / 'default'
        if netns.exists():
            subprocess.run(['umount', str(netns)], capture_output=True, check=False)

    def _tail(self) -> str:
        try:
            return self.log.read_text(errors='replace')[-2000:]
        except OSError:
            return '(no log)'

    def __enter__(self) -> PrivateDaemon:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

