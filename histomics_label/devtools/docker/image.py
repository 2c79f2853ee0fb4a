"""The CLI image built here as a DSA host builds it: the repository's ``Dockerfile`` on a local Python base.

No registry can be reached from these machines' Docker, so the base that a DSA host takes from ``python:3.11-slim``
is made from Debian's packages (``mmdebstrap`` → ``docker import``), trusts the host's certificate authorities (the
package registries are reached through them) and is kept in the daemon between runs. The build context holds the
plugin's wheel (with its built client); the wheels of its requirements, made on the host from pip's cache, are
served to the build over the host's network (as a find-links page, so they leave no layer in the image), and pip
in the image prefers them to the index, downloading only what the image's Python (3.11.2) needs beyond them.
Torch is the CPU build on this machine's disk (torch 2.13.0+cpu, about 190 MB, where PyPI's 2.14.1 is a 5 GB CUDA
build); a DSA host installs the pinned release's CPU build from download.pytorch.org, the Dockerfile's default.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from .. import REPO_ROOT
from .daemon import DockerError, PrivateDaemon

BASE_IMAGE = 'histomics-label-base:python3.11-bookworm'
CLI_IMAGE = 'histomics-label:latest'
DEBIAN_SUITE = 'bookworm'
DEBIAN_SOURCES = [
    'deb http://deb.debian.org/debian bookworm main',
    'deb http://deb.debian.org/debian bookworm-updates main',
    'deb http://deb.debian.org/debian-security bookworm-security main',
]
# what python:3.11-slim has and the Dockerfile expects: python and pip, certificates, and OpenMP for torch and
# scikit-learn (the Dockerfile installs it too, for the slim image)
BASE_PACKAGES = ['python3', 'python3-pip', 'python3-venv', 'python-is-python3', 'ca-certificates', 'libgomp1']
LOCAL_TORCH = 'torch==2.13.0'
HOST_AUTHORITIES = '/usr/local/share/ca-certificates'
CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'
PYPI = 'https://pypi.org/simple'
SOURCE_LABEL = 'org.histomics-label.sources'
CLEANUP_IMAGE = 'busybox:latest'
"""The image girder_worker runs ``chmod`` in to clean a Docker task's temporary folders (its name is fixed there).
A DSA host pulls it from Docker Hub; here the Debian base, which has ``chmod``, is tagged with its name."""


def has_image(daemon: PrivateDaemon, tag: str) -> bool:
    return daemon.docker('image', 'inspect', tag, check=False).returncode == 0


def build_base(daemon: PrivateDaemon) -> str:
    """The Debian Python 3.11 base, made once and kept in the daemon; returns its tag."""
    if has_image(daemon, BASE_IMAGE):
        return BASE_IMAGE
    with tempfile.TemporaryDirectory(prefix='hl-base-') as folder:
        rootfs = Path(folder) / 'rootfs.tar'
        command = ['mmdebstrap', '--variant=minbase', '--aptopt=Acquire::Check-Valid-Until "false"',
                   f'--include={",".join(BASE_PACKAGES)}',
                   # Debian marks its Python externally managed; the image installs system-wide, as python:3.11 does
                   '--customize-hook=rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
                   f'--customize-hook=cp {HOST_AUTHORITIES}/*.crt "$1"{HOST_AUTHORITIES}/ 2>/dev/null; '
                   'chroot "$1" update-ca-certificates',
                   DEBIAN_SUITE, str(rootfs), *DEBIAN_SOURCES]
        made = subprocess.run(command, capture_output=True, text=True, check=False)
        if made.returncode:
            raise DockerError(f'mmdebstrap failed ({made.returncode}): {made.stderr.strip()[-2000:]}')
        trust = [f'--change=ENV {name}={CA_BUNDLE}' for name in ('PIP_CERT', 'SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE')]
        daemon.docker('import', '--change', 'CMD ["python3"]', *trust, str(rootfs), BASE_IMAGE)
    return BASE_IMAGE


def _python_m(*args: str, cwd: Path = REPO_ROOT) -> None:
    result = subprocess.run([sys.executable, '-m', *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode:
        raise DockerError(f'python -m {" ".join(args[:2])} failed ({result.returncode}): '
                          f'{(result.stderr + result.stdout).strip()[-3000:]}')


def build_wheelhouse(folder: Path, torch: str = LOCAL_TORCH) -> Path:
    """The plugin's wheel (built with its client) and a wheel of every requirement, the Girder 5 stack (its
    ``girder5`` extra) and ``torch`` included, in ``folder``: the image installs from these alone."""
    folder.mkdir(parents=True, exist_ok=True)
    _python_m('build', '--wheel', '--no-isolation', '--outdir', str(folder), str(REPO_ROOT))
    wheels = list(folder.glob('histomics_label-*.whl'))
    if len(wheels) != 1:
        raise DockerError(f'expected one histomics_label wheel in {folder}, found {[w.name for w in wheels]}')
    _python_m('pip', 'wheel', '--quiet', '--wheel-dir', str(folder), f'{wheels[0]}[girder5]', torch)
    return folder


def source_digest(torch: str) -> str:
    """A digest of everything the image is made from, so an unchanged checkout reuses the image it built."""
    digest = hashlib.sha256(torch.encode())
    files = [REPO_ROOT / 'Dockerfile', REPO_ROOT / 'setup.py']
    for folder in ('histomics_label', 'slicer_cli'):
        files += sorted(path for path in (REPO_ROOT / folder).rglob('*')
                        if path.is_file() and '__pycache__' not in path.parts)
    for path in files:
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def image_label(daemon: PrivateDaemon, tag: str, label: str) -> str | None:
    result = daemon.docker('image', 'inspect', '--format', f'{{{{index .Config.Labels "{label}"}}}}', tag,
                           check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def image_size(daemon: PrivateDaemon, tag: str) -> int:
    """The image's size in bytes, as ``docker images`` counts it."""
    return int(daemon.docker('image', 'inspect', '--format', '{{.Size}}', tag).stdout)


def build_cli_image(daemon: PrivateDaemon, tag: str = CLI_IMAGE, torch: str = LOCAL_TORCH,
                    force: bool = False) -> bool:
    """Build the ``cli`` target of the Dockerfile as ``tag`` on the local base; returns False when the image of
    this very checkout is already there."""
    base = build_base(daemon)
    if not has_image(daemon, CLEANUP_IMAGE):
        daemon.docker('tag', base, CLEANUP_IMAGE)
    digest = source_digest(torch)
    if not force and image_label(daemon, tag, SOURCE_LABEL) == digest:
        return False
    with tempfile.TemporaryDirectory(prefix='hl-image-') as folder:
        context, wheelhouse = Path(folder) / 'context', build_wheelhouse(Path(folder) / 'wheels', torch)
        (context / 'dist').mkdir(parents=True)
        plugin = next(wheelhouse.glob('histomics_label-*.whl'))
        plugin.rename(context / 'dist' / plugin.name)
        shutil.copytree(REPO_ROOT / 'slicer_cli', context / 'slicer_cli',
                        ignore=shutil.ignore_patterns('__pycache__'))
        with serve_folder(wheelhouse) as wheels_url:
            daemon.docker('build', '--network', 'host', '--target', 'cli', '--file', str(REPO_ROOT / 'Dockerfile'),
                          '--build-arg', f'BASE_IMAGE={base}', '--build-arg', f'TORCH_REQUIREMENT={torch}',
                          '--build-arg', f'TORCH_INDEX_URL={PYPI}', '--build-arg', f'EXTRA_WHEELS={wheels_url}',
                          '--label', f'{SOURCE_LABEL}={digest}', '--tag', tag, str(context))
    # the image this one replaced, untagged now, and its layers (2 GB a build)
    daemon.docker('image', 'prune', '--force')
    return True


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        """pip asks for hundreds of files; the build's own output says what it installed."""


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder``'s listing and files on the loopback interface; yields its URL (a pip find-links page)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}/'
    finally:
        server.shutdown()
        server.server_close()
