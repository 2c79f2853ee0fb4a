"""Start, stop and inspect a persistent local Girder 5 stack: Redis, a Mongo-wire server over SQLite, Girder, and
girder_worker processes (Celery, with Redis as the broker) for the tasks Girder hands out, slicer_cli_web's among them.

No MongoDB server can be installed from the registries these machines reach, so the database is mongoeco's wire
server (``mongo_wire.py``, run under Python 3.13 from its own cached virtualenv). Each service runs detached in
its own session, logs into ``DATA/logs`` and is recorded in ``DATA/stack.json``, so the stack outlives the command
that started it and a later ``stop`` or ``status`` finds it. All state stays under the data directory: the SQLite
database, the assetstore files, Redis' append-only file and the admin's credentials.
"""

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import girder_client
import requests

from ..debian import DebianPackageError, ensure_debian_packages

MONGOECO_REQUIREMENT = 'mongoeco[wire]==4.11.0'
"""The Mongo-wire server's package; the adjustments in ``mongo_wire.py`` were made against this version."""

ADMIN_LOGIN = 'admin'
SERVICES = ('redis', 'mongo', 'girder')
"""Start order of the services every stack runs, before its workers; they stop in the reverse order."""
BROKER_DB, BACKEND_DB = 1, 2
"""Redis databases of the Celery broker and result backend (Girder's notifications use database 0)."""

MONGO_WIRE_SCRIPT = Path(__file__).with_name('mongo_wire.py')


class StackError(RuntimeError):
    """The stack could not be started or stopped; the message says why and where the log is."""


@dataclass(frozen=True)
class StackInfo:
    """Where a running stack answers and how to log in."""

    data_dir: Path
    url: str
    api_url: str
    admin_login: str
    admin_password: str
    mongo_uri: str
    redis_url: str
    pids: dict[str, int]
    logs: dict[str, Path]
    already_running: bool = False
    start_seconds: float = 0.0

    def client(self, tries: int = 3) -> girder_client.GirderClient:
        """A ``GirderClient`` logged in as the admin. A login whose connection is dropped is tried again (at most
        ``tries`` times): once, on 2 busy cores, the first login after a restart had its connection reset by the
        server that had just answered the start's own login (the cause was not found; its log was not kept)."""
        client = girder_client.GirderClient(apiUrl=self.api_url)
        for attempt in range(1, tries):
            try:
                client.authenticate(self.admin_login, self.admin_password)
                return client
            except requests.ConnectionError:
                time.sleep(attempt)
        client.authenticate(self.admin_login, self.admin_password)
        return client


@dataclass(frozen=True)
class ServiceStatus:
    """One service of the stack as recorded in ``stack.json`` and seen now."""

    name: str
    pid: int
    running: bool
    address: str
    log: Path


class Stack:
    """The local stack kept in ``data_dir``; Girder answers on ``host:port``.

    ``password`` is the admin's password on the first start (a random one otherwise); later starts read the
    credentials saved in ``data_dir/credentials.json``. ``venv_dir`` is where the Python 3.13 virtualenv with
    mongoeco is made once and reused. ``python`` is the interpreter Girder runs in (this one by default; another is,
    say, a virtualenv where the plugin was installed from its wheel). ``workers`` girder_worker processes start after
    Girder, each with its own working folder (``DATA/worker-N``); they share only the broker and Girder's API, as
    workers on separate machines do, and run Docker tasks on the daemon at ``docker_host`` (``DOCKER_HOST``).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike = 'live-data',
        port: int = 8080,
        host: str = '127.0.0.1',
        *,
        password: str | None = None,
        venv_dir: str | os.PathLike | None = None,
        timeout: float = 180.0,
        python: str | os.PathLike | None = None,
        workers: int = 0,
        docker_host: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.host = host
        self.password = password
        self.venv_dir = Path(venv_dir) if venv_dir else default_venv_dir()
        self.timeout = timeout
        self.python = str(python or sys.executable)
        self.docker_host = docker_host
        self.services = (*SERVICES, *(f'worker-{number}' for number in range(1, workers + 1)))
        self.logs_dir = self.data_dir / 'logs'
        self.assetstore_dir = self.data_dir / 'assetstore'
        self.state_file = self.data_dir / 'stack.json'
        self.credentials_file = self.data_dir / 'credentials.json'

    # ---- public API

    def start(self) -> StackInfo:
        """Start the stack and return where it answers. Harmless when it runs already; the survivors of a partly
        stopped stack are stopped, then all three services start."""
        started = time.monotonic()
        for path in (self.data_dir, self.logs_dir, self.assetstore_dir, self.data_dir / 'redis'):
            path.mkdir(parents=True, exist_ok=True)
        with file_lock(self.data_dir / '.stack.lock'):
            state = self._read_state()
            if state is not None:
                if all(_service_alive(state.get(name)) for name in self.services):
                    return self._info(state, already_running=True, start_seconds=time.monotonic() - started)
                self._stop_services(state)
            _require_free_port(self.host, self.port)
            state = {}
            try:
                self._start_redis(state)
                self._start_mongo(state)
                self._start_girder(state)
                self._bootstrap(state)
                for name in self.services[len(SERVICES):]:
                    self._start_worker(state, name)
            except BaseException:
                self._stop_services(state)
                raise
        return self._info(state, start_seconds=time.monotonic() - started)

    def restart(self, *names: str, timeout: float = 20.0) -> StackInfo:
        """Start the services ``names`` (``girder``, workers) again, each stopped first when it runs, leaving the
        others running: as an admin restarts Girder alone while the database, the broker and the workers go on."""
        starters = {'girder': lambda state: self._start_girder(state),
                    **{worker: (lambda state, worker=worker: self._start_worker(state, worker))
                       for worker in self.services[len(SERVICES):]}}
        unknown = [name for name in names if name not in starters]
        if unknown:
            raise StackError(f'{", ".join(unknown)}: not a service that restarts alone; choose among '
                             f'{", ".join(starters)}')
        with file_lock(self.data_dir / '.stack.lock'):
            state = self._read_state()
            if state is None or any(name not in state for name in names):
                raise StackError(f'the stack in {self.data_dir} is not running; start it first')
            for name in names:
                if _service_alive(state[name]):
                    _terminate(state[name]['pid'], timeout)
                starters[name](state)
        return self.info()

    def stop(self, timeout: float = 20.0) -> list[str]:
        """Stop the running services (SIGTERM, SIGKILL after ``timeout`` s); return the names of those stopped."""
        if not self.data_dir.is_dir():
            return []
        with file_lock(self.data_dir / '.stack.lock'):
            state = self._read_state()
            if state is None:
                return []
            return self._stop_services(state, timeout)

    def status(self) -> list[ServiceStatus]:
        """Each service recorded for this data directory and whether it runs now (an empty list if never started)."""
        state = self._read_state()
        if state is None:
            return []
        return [ServiceStatus(name, record['pid'], _service_alive(record), record['address'], Path(record['log']))
                for name, record in state.items()]

    def info(self) -> StackInfo:
        """Where the running stack answers and how to log in; raise ``StackError`` when it does not run."""
        state = self._read_state()
        if state is None or not all(_service_alive(state.get(name)) for name in self.services):
            raise StackError(f'the stack in {self.data_dir} is not running; start it first')
        return self._info(state)

    def client(self) -> girder_client.GirderClient:
        """A ``GirderClient`` of the running stack, logged in as the admin."""
        return self.info().client()

    # ---- services

    def _start_redis(self, state: dict[str, dict]) -> None:
        redis_dir = self.data_dir / 'redis'
        port = _free_port()
        command = [
            ensure_redis_server(), '--bind', '127.0.0.1', '--port', str(port), '--dir', str(redis_dir),
            '--appendonly', 'yes', '--save', '3600 1 300 100 60 10000', '--daemonize', 'no', '--logfile', '',
        ]
        self._spawn(state, 'redis', command, f'redis://127.0.0.1:{port}', cwd=redis_dir)
        self._wait(state, 'redis', lambda: _redis_ping(port), 'Redis does not answer PING')

    def _start_mongo(self, state: dict[str, dict]) -> None:
        python = ensure_mongoeco_venv(self.venv_dir)
        port = _free_port()
        command = [str(python), str(MONGO_WIRE_SCRIPT), '--db', str(self.data_dir / 'mongo.sqlite'),
                   '--host', '127.0.0.1', '--port', str(port)]
        self._spawn(state, 'mongo', command, f'mongodb://127.0.0.1:{port}/girder?directConnection=true',
                    cwd=self.data_dir)
        self._wait(state, 'mongo', lambda: _connectable('127.0.0.1', port), 'the Mongo-wire server does not listen')

    def _start_girder(self, state: dict[str, dict]) -> None:
        env = {
            **os.environ,
            **_celery_env(state),
            'GIRDER_NOTIFICATION_REDIS_URL': state['redis']['address'],
            # No mail server here: Girder writes its mails into its log instead.
            'GIRDER_EMAIL_TO_CONSOLE': 'true',
            # The slide stores (segments, features, rounds) live with the rest of the stack's data.
            'HISTOMICS_LABEL_DATA_DIR': str(self.data_dir / 'histomics_label'),
            # slicer_cli_web 1.5 (Girder 3) registers an image in Girder's own process
            **({'DOCKER_HOST': self.docker_host} if self.docker_host else {}),
        }
        command = [
            self.python, '-c', 'from girder.cli import main; main()', 'serve', '--mode', 'production',
            '--database', state['mongo']['address'], '--host', self.host, '--port', str(self.port),
        ]
        url = f'http://{_url_host(self.host)}:{self.port}/'
        self._spawn(state, 'girder', command, url, cwd=self.data_dir, env=env)
        self._wait(state, 'girder', lambda: _http_ok(url + 'api/v1/system/version'),
                   f'Girder does not answer GET {url}api/v1/system/version')

    def _start_worker(self, state: dict[str, dict], name: str) -> None:
        """A girder_worker (Celery worker, one task at a time) whose temporary files, Docker volumes among them, stay
        in its own folder; it reaches Girder through the API URL, as a worker on another machine would."""
        folder = self.data_dir / name
        (folder / 'tmp').mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **_celery_env(state),
            'GIRDER_WORKER_API_URL': state['girder']['address'] + 'api/v1',
            'TMPDIR': str(folder / 'tmp'),
            # Celery refuses to run as root unless told (these machines run everything as root)
            'C_FORCE_ROOT': '1',
        }
        if self.docker_host:
            env['DOCKER_HOST'] = self.docker_host
        # one task at a time, and one more reserved at most: tasks run for minutes, so a worker must not hold several
        # queued ones that an idle worker could run (Celery reserves four per process by default)
        command = [self.python, '-m', 'celery', '--app', 'girder_worker.app', 'worker', '--hostname',
                   f'{name}@%h', '--concurrency', '1', '--prefetch-multiplier', '1', '--loglevel', 'INFO',
                   '--without-gossip', '--without-mingle']
        self._spawn(state, name, command, f'celery {name}', cwd=folder, env=env)
        self._wait(state, name, lambda: ' ready.' in _log_tail(state[name], lines=200),
                   f'{name} did not report ready')

    def _spawn(self, state: dict[str, dict], name: str, command: list[str], address: str, *, cwd: Path,
               env: dict[str, str] | None = None) -> None:
        """Start ``command`` detached (its own session, stdin from /dev/null, output appended to its log) and record
        it in ``stack.json`` at once, so a failed start can still stop it."""
        log = self.logs_dir / f'{name}.log'
        with log.open('ab') as stream:
            stream.write(f'\n==== {time.strftime("%Y-%m-%d %H:%M:%S")} {" ".join(command)}\n'.encode())
        offset = log.stat().st_size
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        # posix_spawn has no working-directory action: a shell changes it, then exec keeps its pid for the command.
        argv = ['/bin/sh', '-c', 'cd "$0" && exec "$@"', str(cwd), *command]
        pid = os.posix_spawn(argv[0], argv, env if env is not None else os.environ, file_actions=actions, setsid=True)
        state[name] = {'pid': pid, 'started': _process_start_time(pid), 'address': address, 'log': str(log),
                       'log_offset': offset}
        self._write_state(state)

    def _wait(self, state: dict[str, dict], name: str, ready: Callable[[], bool], what: str) -> None:
        """Wait until ``ready()`` is true; fail with the log's new lines when the service exits or time runs out."""
        record = state[name]
        deadline = time.monotonic() + self.timeout
        while not ready():
            if not _service_alive(record):
                raise StackError(f'{name} exited while starting ({what}); see {record["log"]}:\n{_log_tail(record)}')
            if time.monotonic() > deadline:
                raise StackError(f'{what} after {self.timeout:.0f} s; see {record["log"]}:\n{_log_tail(record)}')
            time.sleep(0.2)

    def _stop_services(self, state: dict[str, dict], timeout: float = 20.0) -> list[str]:
        stopped = []
        for name, record in reversed(state.items()):
            if _service_alive(record):
                _terminate(record['pid'], timeout)
                stopped.append(name)
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        return stopped

    # ---- first start: the admin and the assetstore

    def _bootstrap(self, state: dict[str, dict]) -> None:
        """Create the admin (Girder makes its first user an admin) and the filesystem assetstore on the first start;
        save the admin's credentials."""
        api_url = state['girder']['address'] + 'api/v1'
        client = girder_client.GirderClient(apiUrl=api_url)
        if self.credentials_file.exists():
            credentials = json.loads(self.credentials_file.read_text())
            login, password = credentials['login'], credentials['password']
        else:
            login, password = ADMIN_LOGIN, self.password or secrets.token_urlsafe(12)
            try:
                user = client.post('user', data={
                    'login': login, 'password': password, 'email': 'admin@example.com',
                    'firstName': 'Histomics', 'lastName': 'Admin'})
            except girder_client.HttpError as error:
                raise StackError(f'creating the admin {login!r} failed: {error.responseText}') from error
            if not user.get('admin'):
                raise StackError(f'{login!r} is not the first user, so not an admin: the database in {self.data_dir} '
                                 f'has users but {self.credentials_file} is missing')
            _write_private(self.credentials_file, json.dumps({'login': login, 'password': password}, indent=2))
        client.authenticate(login, password)
        root = str(self.assetstore_dir)
        assetstores = client.get('assetstore')
        if not any(store.get('root') == root for store in assetstores):
            client.post('assetstore', parameters={
                'type': 0, 'name': f'Histomics Label ({root})', 'root': root, 'current': str(not assetstores)})

    # ---- state

    def _info(self, state: dict[str, dict], *, already_running: bool = False, start_seconds: float = 0.0) -> StackInfo:
        credentials = json.loads(self.credentials_file.read_text()) if self.credentials_file.exists() else {}
        url = state['girder']['address']
        return StackInfo(
            data_dir=self.data_dir,
            url=url,
            api_url=url + 'api/v1',
            admin_login=credentials.get('login', ADMIN_LOGIN),
            admin_password=credentials.get('password', ''),
            mongo_uri=state['mongo']['address'],
            redis_url=state['redis']['address'],
            pids={name: record['pid'] for name, record in state.items()},
            logs={name: Path(record['log']) for name, record in state.items()},
            already_running=already_running,
            start_seconds=start_seconds,
        )

    def _read_state(self) -> dict[str, dict] | None:
        """``stack.json``: each started service's pid, start time, address, log and where its log began."""
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None

    def _write_state(self, state: dict[str, dict]) -> None:
        temporary = self.state_file.with_suffix('.tmp')
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(self.state_file)


def default_venv_dir() -> Path:
    """Where the mongoeco virtualenv lives: ``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/histomics-label/...``."""
    cache = Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache')
    return cache / 'histomics-label' / 'mongoeco-venv'


def find_python313() -> str:
    """A Python >= 3.13 interpreter (mongoeco needs it): ``$HISTOMICS_LABEL_PYTHON313``, ``python3.13`` on PATH or
    a pyenv 3.13 install. Each candidate is run, since a pyenv shim can be on PATH without the version behind it."""
    candidates = [os.environ.get('HISTOMICS_LABEL_PYTHON313'), shutil.which('python3.13'),
                  *sorted(map(str, Path.home().glob('.pyenv/versions/3.1[3-9]*/bin/python')), reverse=True)]
    for candidate in filter(None, candidates):
        result = subprocess.run([candidate, '-c', 'import sys; print(sys.version_info >= (3, 13))'],
                                capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.strip() == 'True':
            return candidate
    raise StackError('the live stack needs Python >= 3.13 for its Mongo-wire server (mongoeco) and found none: '
                     'install python3.13 on PATH, or set HISTOMICS_LABEL_PYTHON313 to its path')


def ensure_mongoeco_venv(venv_dir: Path) -> Path:
    """Make (once) a Python 3.13 virtualenv with mongoeco in ``venv_dir``; return its interpreter."""
    return ensure_venv(venv_dir, find_python313, [[MONGOECO_REQUIREMENT]], MONGOECO_REQUIREMENT)


def ensure_venv(venv_dir: Path, base_python: Callable[[], str], installs: list[list[str]], key: str) -> Path:
    """Make a virtualenv in ``venv_dir`` with ``base_python()`` and run ``pip install`` with each of ``installs``,
    unless one made with the same ``key`` is there (a marker file written last says it is complete); one process
    at a time. Returns its interpreter; a failed step removes it and raises with pip's output."""
    python = venv_dir / 'bin' / 'python'
    marker = venv_dir / '.histomics-label-requirement'
    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(venv_dir.with_name(venv_dir.name + '.lock')):
        if marker.exists() and marker.read_text() == key and python.exists():
            return python
        shutil.rmtree(venv_dir, ignore_errors=True)
        pip = [str(python), '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check']
        for command in ([base_python(), '-m', 'venv', str(venv_dir)], *([*pip, *arguments] for arguments in installs)):
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                shutil.rmtree(venv_dir, ignore_errors=True)
                raise StackError(f'{" ".join(command)} failed:\n{(result.stdout + result.stderr)[-3000:]}')
        marker.write_text(key)
    return python


def ensure_redis_server() -> str:
    """The path of ``redis-server``, installing Debian's package first when it is not on PATH."""
    path = shutil.which('redis-server')
    if path:
        return path
    try:
        ensure_debian_packages(['redis-server'])
    except DebianPackageError as exc:
        raise StackError(f'redis-server is not on PATH and could not be installed: {exc}') from None
    path = shutil.which('redis-server')
    if not path:
        raise StackError('Debian\'s redis-server package is installed but redis-server is not on PATH')
    return path


# ---- processes


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (Linux; None elsewhere or when it is gone)."""
    try:
        return Path(f'/proc/{pid}/stat').read_text().rpartition(')')[2].split()
    except OSError:
        return None


def _process_start_time(pid: int) -> int | None:
    """The process' start time in clock ticks since boot, which tells a recorded pid from a reused one."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs. An exited child of this process is reaped here; an exited process that waits for
    another parent to reap it (a zombie: the init of some containers reaps slowly) counts as gone."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _proc_stat(pid)
    return not fields or fields[0] not in ('Z', 'X')


def _service_alive(record: dict | None) -> bool:
    """Whether the recorded service still runs as the same process (not a later one given its pid)."""
    if record is None or not _pid_alive(record['pid']):
        return False
    started = _process_start_time(record['pid'])
    return record.get('started') is None or started is None or started == record['started']


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM the service's process group (it leads its own session), SIGKILL it if still there after
    ``timeout`` s."""
    for signum, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signum)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return
            time.sleep(0.1)


def _log_tail(record: dict, lines: int = 40) -> str:
    """The last ``lines`` lines the service wrote since it was started."""
    with open(record['log'], 'rb') as stream:
        stream.seek(record['log_offset'])
        text = stream.read().decode(errors='replace')
    return '\n'.join(text.splitlines()[-lines:])


# ---- small helpers


def _celery_env(state: dict[str, dict]) -> dict[str, str]:
    """Where Girder sends girder_worker tasks and where workers take them: the stack's Redis."""
    redis = state['redis']['address']
    return {'GIRDER_WORKER_BROKER': f'{redis}/{BROKER_DB}', 'GIRDER_WORKER_BACKEND': f'{redis}/{BACKEND_DB}'}


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (two starts of one data directory must not interleave)."""
    with open(path, 'a') as stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(stream, fcntl.LOCK_UN)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 600)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, 'w') as stream:
        stream.write(text)


def _free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _require_free_port(host: str, port: int) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            raise StackError(f'cannot serve Girder on {host}:{port}: {error.strerror}; choose another --port') from None


def _url_host(host: str) -> str:
    """The host to put in URLs: a wildcard bind address is reached on the loopback interface."""
    return {'0.0.0.0': '127.0.0.1', '::': '[::1]', '': '127.0.0.1'}.get(host, host)


def _connectable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=1) as sock:
            sock.sendall(b'PING\r\n')
            return sock.recv(64).startswith(b'+PONG')
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
