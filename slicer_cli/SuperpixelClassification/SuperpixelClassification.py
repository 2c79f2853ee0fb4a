#!/usr/bin/env python
"""SuperpixelClassification: segments → features → train → predict → rank, as a Slicer CLI task.

Runs the same way on a local slide file, inside the Docker image slicer_cli_web launches from the DSA job panel,
and through ``slicer_cli_list.json``. ``--xml`` prints the specification.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# cli_utils sits in the folder above, which is not a package: put it on the path (script, slicer_cli_web, Docker).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cli_utils  # noqa: E402

XML_PATH = Path(__file__).with_suffix('.xml')


def parse_args(argv: list[str] | None = None):
    return cli_utils.parse_args(XML_PATH, argv)


def _explain_unlabeled_outputs(args) -> None:
    """Say which requested outputs a run without labels cannot write."""
    from histomics_label.core.acquisition import acquisition_functions

    if args.annotation:
        print('No label file given: there is no model to predict with, so no annotation (it needs --labelfile)',
              file=sys.stderr)
    if args.suggestions and acquisition_functions.get(args.certainty).uses_model:
        print(f'No label file given: {args.certainty} ranks with a trained model, so no suggestions; give '
              '--labelfile, or --certainty kmeans_cold_start or coreset for a first batch', file=sys.stderr)


def run(args) -> dict:
    """Run the pipeline for parsed arguments and write the requested outputs; returns a short summary."""
    from histomics_label.core.errors import ConfigurationError
    from histomics_label.core.io import outputs
    from histomics_label.core.io.label_tiff import write_segment_tiff
    from histomics_label.core.io.labels import read_labels
    from histomics_label.core.io.store import SlideStore, pack_rounds
    from histomics_label.core.pipeline import PipelineConfig, run_pipeline

    if not args.store:
        raise ConfigurationError('An output store path (--store) is required')
    pixelmaps = bool(args.segmentImageId)
    if (args.annotation or args.embeddingMap) and not pixelmaps:
        # the job panel names every output file by default, so this is the usual first run from the DSA
        print('No --segmentimageid: a pixelmap annotation refers to the segment image by its Girder item id, so '
              'the prediction and embedding map annotations are not written; run again with the id of the segment '
              'image this run makes to have them', file=sys.stderr)
    labels = None
    if args.labelFile:
        labels = read_labels(args.labelFile, cli_utils.strings(args.labels))
        if cli_utils.strings(args.exclude):
            labels = labels.exclude(cli_utils.strings(args.exclude))
    else:
        _explain_unlabeled_outputs(args)
    config = PipelineConfig(
        slide=args.image, store=args.store, segments=args.segments, polygons=args.polygons or None,
        magnification=args.magnification, radius=args.radius, compactness=args.compactness, tile_size=args.tileSize,
        feature=args.feature, extractor=args.extractor, extractor_model=args.extractorModel or None,
        weights=args.weights or None, patch_size=args.patchSize,
        device=args.device,
        feature_batch_size=args.batchSize, model=args.model, epochs=args.epochs, split=args.split, seed=args.seed,
        certainty=args.certainty, suggestions=args.suggestionCount, scheduler=args.scheduler or None,
        workers=args.numWorkers or None, embedding_map=bool(args.embeddingMap))
    report = cli_utils.progress_reporter(args)
    guard = outputs.OutputFiles([args.store, args.segmentImage, args.annotation, args.embeddingMap,
                                 args.suggestions])
    with guard.guard():
        result = run_pipeline(config, labels, report)
        if args.segmentImage:
            with SlideStore(args.store) as store:
                write_segment_tiff(store.label_raster, args.segmentImage)
        if args.annotation and pixelmaps and result.round is not None:
            document = outputs.prediction_annotation(args.store, args.segmentImageId)
            if args.heatmaps:
                document = [document, outputs.certainty_annotation(args.store, args.segmentImageId)]
            outputs.write_json_atomic(args.annotation, document)
        if args.embeddingMap and pixelmaps:
            outputs.write_json_atomic(args.embeddingMap, outputs.embedding_map_annotation(
                args.store, args.segmentImageId, args.extractor))
        if args.suggestions and result.suggestions:
            outputs.write_json_atomic(args.suggestions, outputs.suggestions_document(
                args.image, args.store, result.round, args.certainty, result.suggestions))
        # the store is an output file (the DSA uploads it alone): it carries its rounds itself
        pack_rounds(args.store)
    if hasattr(report, 'close'):
        report.close()
    return {'segments': result.n_segments, 'round': result.round, 'metrics': result.metrics,
            'reused': result.reused}


def _finished(summary: dict) -> str:
    accuracy = summary['metrics'].get('accuracy')
    measured = ('no cross-validated accuracy (an image model, or a category with a single label)' if accuracy is None
                else f'cross-validated balanced accuracy {accuracy["balanced_accuracy"]:.0%} '
                     f'(95 % interval {accuracy["low"]:.0%}–{accuracy["high"]:.0%}, {accuracy["labels"]} labels)')
    return f'{summary["segments"]} segments, round {summary["round"]}, {measured}'


def main(argv: list[str] | None = None) -> int:
    return cli_utils.main(XML_PATH, run, _finished, argv)


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
    sys.exit(main())
