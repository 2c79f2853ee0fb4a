"""``python -m histomics_label.devtools.stack start|stop|status``: run the local live stack in the background."""

import argparse
import sys

from .launcher import Stack, StackError


def main(argv: list[str] | None = None) -> int:
    """Run one command on the stack of ``--data``; return the exit status (1 when it failed or does not run)."""
    parser = argparse.ArgumentParser(prog='python -m histomics_label.devtools.stack', description=__doc__)
    parser.add_argument('command', choices=('start', 'stop', 'status'))
    parser.add_argument('--data', default='./live-data', help='data directory (default: %(default)s)')
    parser.add_argument('--port', type=int, default=8080, help="Girder's port (default: %(default)s)")
    parser.add_argument('--host', default='127.0.0.1', help="Girder's interface (default: %(default)s)")
    parser.add_argument('--password', help="the admin's password on the first start (default: a random one)")
    parser.add_argument('--timeout', type=float, default=180.0,
                        help='seconds to wait for each service to answer (default: %(default)s)')
    parser.add_argument('--workers', type=int, default=0,
                        help='girder_worker processes to start after Girder (default: %(default)s)')
    parser.add_argument('--docker-host', help="the Docker daemon the workers run Docker tasks on (DOCKER_HOST)")
    parser.add_argument('--girder', choices=('5', '3'), default='5',
                        help='Girder 5 (the default: the labeling views run in its pages) or Girder 3.2 with '
                             'HistomicsUI 1.8.1, in an environment of its own made on the first start, with its '
                             'client built by girder build (the views in Girder 3\'s pages, the project menu in '
                             'HistomicsUI\'s image view)')
    args = parser.parse_args(argv)
    try:
        python = None
        if args.girder == '3' and args.command == 'start':
            from ..girder3_client import girder3_python

            python = girder3_python()
        stack = Stack(args.data, args.port, args.host, password=args.password, timeout=args.timeout,
                      workers=args.workers, docker_host=args.docker_host, python=python)
        if args.command == 'start':
            info = stack.start()
            state = 'already running' if info.already_running else f'started in {info.start_seconds:.1f} s'
            print(f'Histomics Label {state}: {info.url}')
            print(f'  login {info.admin_login}, password {info.admin_password} '
                  f'(saved in {stack.credentials_file})')
            print(f'  data {info.data_dir}, logs {stack.logs_dir}')
            return 0
        if args.command == 'stop':
            stopped = stack.stop()
            print(f'stopped {", ".join(stopped)}' if stopped else f'nothing runs for {stack.data_dir}')
            return 0
        services = stack.status()
        if not services:
            print(f'not running ({stack.data_dir})')
            return 1
        for service in services:
            state = f'running, pid {service.pid}' if service.running else 'stopped'
            print(f'{service.name:8} {state:20} {service.address}  log {service.log}')
        return 0 if all(service.running for service in services) else 1
    except StackError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
