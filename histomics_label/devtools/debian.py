"""Debian packages the set-up needs and a fresh machine lacks (Chromium, Docker), installed with apt-get as root."""

from __future__ import annotations

import os
import shutil
import subprocess


class DebianPackageError(RuntimeError):
    """The packages could not be installed; the message says how to install them by hand."""


def ensure_debian_packages(packages: list[str]) -> None:
    """Install ``packages`` with apt-get, refreshing the package lists once when the first try fails."""
    apt = shutil.which('apt-get')
    if apt is None or os.geteuid() != 0:
        raise DebianPackageError(f'{", ".join(packages)} missing: install as root with apt-get install -y '
                                 f'{" ".join(packages)}')
    install = [apt, 'install', '-y', '--no-install-recommends', *packages]
    env = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}  # a package's questions take their defaults
    if subprocess.run(install, check=False, env=env).returncode == 0:
        return
    for command in ([apt, 'update'], install):
        result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        if result.returncode:
            raise DebianPackageError(f'{" ".join(command)} failed ({result.returncode}): '
                                     f'{(result.stderr or result.stdout).strip()[-1500:]}')
