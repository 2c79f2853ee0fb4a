"""Build the CLI image on a private Docker daemon: ``python -m histomics_label.devtools.docker [--force]``.

Installs Docker and mmdebstrap when missing (Debian, as root), starts the daemon, makes the Debian Python base once,
builds the Dockerfile's ``cli`` target as ``histomics-label:latest`` (skipped when this checkout's image is there),
prints its size, and stops the daemon.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..debian import DebianPackageError
from .daemon import DockerError, PrivateDaemon
from .image import CLI_IMAGE, build_cli_image, image_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--force', action='store_true', help='rebuild even when this checkout was built')
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        with PrivateDaemon() as daemon:
            built = build_cli_image(daemon, force=args.force)
            size = image_size(daemon, CLI_IMAGE)
    except (DockerError, DebianPackageError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(f'{CLI_IMAGE} {"built" if built else "up to date"} in {time.monotonic() - start:.0f} s '
          f'({size / 2**30:.2f} GiB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
