#!/usr/bin/env python
"""SimilarSegments: "more like this" retrieval across slide stores, as a Slicer CLI task.

``--xml`` prints the specification; the DSA runs it from its job panel like SuperpixelClassification.
"""

from __future__ import annotations

import sys
from pathlib import Path

# cli_utils sits in the folder above, which is not a package: put it on the path (script, slicer_cli_web, Docker).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cli_utils  # noqa: E402

XML_PATH = Path(__file__).with_suffix('.xml')


def parse_args(argv: list[str] | None = None):
    return cli_utils.parse_args(XML_PATH, argv)


def run(args) -> list[dict]:
    """Find the similar segments for parsed arguments and write them to ``--output``."""
    from histomics_label.core.errors import ConfigurationError
    from histomics_label.core.io.outputs import write_json_atomic
    from histomics_label.core.retrieval.similar import similar_segments

    if not args.output:
        raise ConfigurationError('An output file (--output) is required')
    stores = [args.store, *cli_utils.strings(args.alsoSearch)]
    query, negatives = cli_utils.integers(args.query), cli_utils.integers(args.negatives)
    found = similar_segments(stores, query, args.count, args.extractor, negatives=negatives, cnfp_mix=args.cnfp,
                             metric=args.metric, exclude=cli_utils.integers(args.exclude))
    write_json_atomic(args.output, {'query': {'store': str(Path(args.store).resolve()), 'segments': query,
                                              'negatives': negatives},
                                    'extractor': args.extractor, 'metric': args.metric, 'similar': found})
    return found


def main(argv: list[str] | None = None) -> int:
    return cli_utils.main(XML_PATH, run, lambda found: f'{len(found)} similar segments', argv)


if __name__ == '__main__':
    sys.exit(main())
