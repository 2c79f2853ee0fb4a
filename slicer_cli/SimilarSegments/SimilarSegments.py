#!/usr/bin/env python
"""SimilarSegments: "more like this" retrieval across slide stores, as a Slicer CLI task.

``--xml`` prints the specification; the DSA runs it from its job panel like SuperpixelClassification.
"""

from __future__ import annotations

import sys
from pathlib import Path

XML_PATH = Path(__file__).with_suffix('.xml')


def parse_args(argv: list[str] | None = None):
    import logging

    from ctk_cli import CLIArgumentParser

    logging.getLogger('ctk_cli.module').setLevel(logging.ERROR)
    return CLIArgumentParser(str(XML_PATH)).parse_args(argv)


def _ids(values) -> list[int]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [v for v in values.split(',') if v.strip()]
    return [int(v) for v in values]


def run(args) -> list[dict]:
    """Find the similar segments for parsed arguments and write them to ``--output``."""
    from histomics_label.core.errors import ConfigurationError
    from histomics_label.core.io.outputs import write_json_atomic
    from histomics_label.core.retrieval.similar import similar_segments

    if not args.output:
        raise ConfigurationError('An output file (--output) is required')
    stores = [args.store, *[s.strip() for s in (args.alsoSearch or []) if s and s.strip()]]
    found = similar_segments(stores, _ids(args.query), args.count, args.extractor, negatives=_ids(args.negatives),
                             cnfp_mix=args.cnfp, metric=args.metric, exclude=_ids(args.exclude))
    write_json_atomic(args.output, {'query': {'store': str(Path(args.store).resolve()), 'segments': _ids(args.query),
                                              'negatives': _ids(args.negatives)},
                                    'extractor': args.extractor, 'metric': args.metric, 'similar': found})
    return found


def main(argv: list[str] | None = None) -> int:
    from histomics_label.core.errors import HistomicsLabelError

    args = parse_args(argv)
    try:
        found = run(args)
    except HistomicsLabelError as exc:
        print(f'Error: {exc}', file=sys.stderr)
        return 2
    print(f'Finished: {len(found)} similar segments', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
