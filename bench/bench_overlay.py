"""Does the painting view stay smooth with a million segments? The web client's segment overlay in Chromium.

One run starts the local live stack (as ``bench_latency.py`` does, and with its synthetic projects: one slide whose
store holds ``N`` square segments on a grid of the same size for every ``N`` (8,000 pixels square: 8-pixel segments
at a million, 80-pixel ones at 10,000), with clustered embeddings, its segment-id image with outlines uploaded as a
large image, 30 labels and a trained round), then drives Debian Chromium (npm ``playwright-core`` from
``tests/browser``, WebGL through SwiftShader: the CPU draws every frame, as on a server without a GPU) through the
painting view of each size:

* **open**: from navigation to the map having drawn the slide and the labels overlay (1 byte per segment fetched,
  the colour table of every segment built);
* **predictions**: switching the Predictions overlay on (fetch + colour table again);
* **panning**: dragging the map back and forth in Pan mode for ``--seconds`` with predictions and borders on,
  counting the page's animation frames: frames per second and the median and 95th-percentile frame time;
* **next card**: the guided view opened beside it, ``--keypresses`` category keys, each timed from the key to the
  next card's slide view drawn with its segment outlined (the map idle): median and 95th percentile;
* **round to views**: a round trained through the REST API from the page (``POST .../train?wait=true``), timed from
  its answer to each open view (painting, guided) naming the new round, through Girder's notification stream.

The bound is the same painting view on the same slide with no segments at all (a second item of the last project,
the sample slide without a store: the view opens read-only in Pan mode, with no overlay layer), panned the same way
in the same run: no overlay can pan faster than the slide alone, so each size's frame rate is judged against it.
The first size (10,000 segments) is a reference beside it, not a peer: it is our own view (the colour lookup lives
on the GPU side, so panning should not depend on the number of segments at all). Only part of the synthetic segment
image lies under the sample slide's bounds, the same part at every size; the colour table holds every segment
whatever is in view.
Run ``python bench/bench_overlay.py --help``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

from bench_latency import CATEGORIES, benchmark_stack, make_project, truth, upload_image  # noqa: E402
from measure import timed  # noqa: E402
from report import publish  # noqa: E402

BROWSER_DIR = ROOT / 'tests' / 'browser'
RASTER_SIDE = 8000
"""Pixels across the synthetic segment raster at every size, so that sizes differ only in their segment count."""


def prepare(client, size: int, data_dir: Path, slide: Path) -> tuple[str, str]:
    """A synthetic project of ``size`` segments with 30 labels and a trained round; returns (folder, item)."""
    cell = RASTER_SIDE // math.ceil(math.sqrt(size))
    if not 1 <= cell <= 256:
        raise SystemExit(f'{size:,} segments do not fit an {RASTER_SIDE}-pixel grid of 1 to 256-pixel squares')
    folder, item = make_project(client, size, data_dir, slide, cell=cell)
    base = f'histomics_label/project/{folder}'
    labels = [{'item': item, 'segment': s, 'category': truth(s)} for s in range(1, 31)]
    client.put(f'{base}/labels', json={'labels': labels, 'view': 'bulk'})
    trained = client.post(f'{base}/train', parameters={'wait': 'true'})
    if trained.get('round') is None:
        raise RuntimeError(f'The round failed: {trained}')
    return folder, item


def bare_slide(client, folder: str, slide: Path) -> str:
    """The sample slide once more in ``folder``, with no store: a slide without segments (the bound's)."""
    return upload_image(client, folder, slide, filename='bare-slide.svs')['_id']


def drive(info, folder: str, item: str, chromium: str, seconds: float, keypresses: int, bare: bool = False) -> dict:
    """The Chromium driver's figures for one slide (``bare``: a slide without segments, opened and panned only)."""
    request = {'url': info.url.rstrip('/'), 'login': info.admin_login, 'password': info.admin_password,
               'projectId': folder, 'itemId': item, 'chromium': chromium,
               'nodeModules': str(BROWSER_DIR / 'node_modules'), 'seconds': seconds, 'keypresses': keypresses,
               'bare': bare}
    run = subprocess.run(['node', str(ROOT / 'bench' / 'overlay_pan.mjs')], capture_output=True, text=True,
                         env={**os.environ, 'HL_BENCH_INPUT': json.dumps(request)}, timeout=900, check=False)
    if run.returncode != 0:
        raise RuntimeError(f'the Chromium driver failed: {run.stderr}')
    result = json.loads(run.stdout)
    if 'failure' in result:
        raise RuntimeError(f'the Chromium driver failed: {result["failure"]}')
    return result


def report(results: list[dict], bound: dict) -> str:
    lines = [f'{"segments":>10} {"open s":>7} {"predictions s":>13} {"pan fps":>8} {"frame ms (median)":>17} '
             f'{"frame ms (p95)":>14} {"fps vs bound":>12} {"next card ms (p50/p95)":>22} '
             f'{"round to paint/guided s":>23}', '-' * 137]
    lines.append(f'{"none":>10} {bound["open_s"]:>7.2f} {"-":>13} {bound["fps"]:>8.1f} '
                 f'{bound["frame_ms_median"]:>17.1f} {bound["frame_ms_p95"]:>14.1f} {1:>12.2f}')
    for r in results:
        lines.append(f'{r["segments"]:>10,} {r["open_s"]:>7.2f} {r["predictions_s"]:>13.2f} {r["fps"]:>8.1f} '
                     f'{r["frame_ms_median"]:>17.1f} {r["frame_ms_p95"]:>14.1f} {r["fps"] / bound["fps"]:>12.2f} '
                     f'{r["next_card_ms_median"]:>14.0f} / {r["next_card_ms_p95"]:>5.0f} '
                     f'{r["round_to_paint_s"]:>14.2f} / {r["round_to_guided_s"]:>5.2f}')
    lines.append('bound: the first row, the same view on the same slide with no segments (no overlay), same run. '
                 'Chromium with SwiftShader (software WebGL); labels, predictions and borders drawn while panning.')
    return '\n'.join(lines)


SMOOTH_RATIO = 0.8
"""Panning at the largest size counts as smooth when its frame rate is at least this share of the slide alone's."""
SWITCH_S = 0.5
"""Goal: an overlay switched at the largest size in at most this long."""
NEXT_CARD_MS = 150
"""Goal: 95th percentile from a category key to the next card drawn with its outline."""
ROUND_TO_VIEWS_S = 2.0
"""Goal: from a round finishing to every open view naming it."""


def goals(results: list[dict], bound: dict) -> list:
    """The issue's goals at the largest size: smooth panning against the slide alone (the bound), the overlay
    switch, the next card and the round reaching the open views."""
    from report import Goal

    largest = results[-1]
    ratio = largest['fps'] / bound['fps']
    size = f'{largest["segments"]:,} segments'
    slowest_view = max(largest['round_to_paint_s'], largest['round_to_guided_s'])
    return [
        Goal(f'the painting view pans with {size} nearly as smoothly as the slide alone, no overlay (frame rate ≥ '
             f'{SMOOTH_RATIO:g}× the bound\'s)', f'{largest["fps"]:.1f} against {bound["fps"]:.1f} frames/s '
             f'({ratio:.2f}×)', ratio >= SMOOTH_RATIO,
             '' if ratio >= SMOOTH_RATIO else f'{ratio:.2f}× the bound\'s frame rate: see the frame times'),
        Goal(f'an overlay switched with {size} in ≤ {SWITCH_S:g} s', f'{largest["predictions_s"]:.2f} s',
             largest['predictions_s'] <= SWITCH_S, ''),
        Goal(f'a category key to the next card drawn with its outline, p95 ≤ {NEXT_CARD_MS} ms ({size})',
             f'{largest["next_card_ms_p95"]:.0f} ms (median {largest["next_card_ms_median"]:.0f} ms, '
             f'{len(largest["next_card_ms"])} keys)', largest['next_card_ms_p95'] <= NEXT_CARD_MS,
             'software WebGL on shared CPUs: the map redraw, not the request, is most of it'
             if largest['next_card_ms_p95'] > NEXT_CARD_MS else ''),
        Goal(f'a round finishing to every open view naming it in ≤ {ROUND_TO_VIEWS_S:g} s ({size})',
             f'painting {largest["round_to_paint_s"]:.2f} s, guided {largest["round_to_guided_s"]:.2f} s',
             slowest_view <= ROUND_TO_VIEWS_S, ''),
    ]


def section(directory: Path, results: list[dict], bound: dict, seconds: float) -> str:
    """The benchmarks page's section (bench/report.py), its plot saved in ``directory``."""
    from report import figure, save_plot, table

    rows = [['none (the slide alone: the bound)', f'{bound["open_s"]:.2f}', '-', f'{bound["fps"]:.1f}',
             f'{bound["frame_ms_median"]:.1f}', f'{bound["frame_ms_p95"]:.1f}', '1.00', '-', '-']]
    rows += [[f'{r["segments"]:,}', f'{r["open_s"]:.2f}', f'{r["predictions_s"]:.2f}', f'{r["fps"]:.1f}',
              f'{r["frame_ms_median"]:.1f}', f'{r["frame_ms_p95"]:.1f}', f'{r["fps"] / bound["fps"]:.2f}',
              f'{r["next_card_ms_median"]:.0f} / {r["next_card_ms_p95"]:.0f}',
              f'{r["round_to_paint_s"]:.2f} / {r["round_to_guided_s"]:.2f}']
             for r in results]
    fig, ax = figure(5.5, 3.2)
    ax.bar(['none'] + [f'{r["segments"]:,}' for r in results], [bound['fps']] + [r['fps'] for r in results],
           color=['#a9a9a9'] + ['#4363d8'] * len(results))
    ax.set_xlabel('segments drawn')
    ax.set_ylabel('frames per second while panning')
    plot = save_plot(fig, directory, 'overlay', 'fps')
    return f"""## The painting view with {results[-1]['segments']:,} segments

`bench/bench_overlay.py`: the same synthetic projects as the latency benchmark, with the segment grid 8,000 pixels
square at every size so that sizes differ only in their number of segments; Debian Chromium (WebGL through
SwiftShader: the CPU draws every frame) opens the painting view, switches the predictions overlay on, and pans by
dragging for {seconds:g} s with labels, predictions and borders drawn, counting animation frames. The bound is the
first row: the same view on the same slide with no segments, so no overlay (no overlay can pan faster), panned the
same way in the same run; the 10,000-segment row is our own view at a small size, for reference.

{table(['segments', 'open s', 'predictions on s', 'frames/s', 'median frame ms', 'p95 frame ms', 'frames/s vs bound',
        'next card ms (median / p95)', 'round to painting / guided view s'], rows)}

![Frames per second while panning]({plot})

The colour of every segment is a lookup on the GPU side (geojs' pixelmap layer over the segment image), so the
number of segments changes only the one-off cost of building the colour table (the *predictions on* column), not
the cost of a frame. The 95th-percentile frames are tile loads while dragging with software rendering. *Next card*:
the guided view beside it, from a category key to the next card's slide view drawn with its segment outlined;
*round to view*: from the answer of a round trained through the REST API to each open view naming it.
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', help='segment counts (default 10000 1000000); the goals '
                        'are judged at the largest')
    parser.add_argument('--quick', action='store_true', help='10,000 and 100,000 segments, 4 s of panning')
    parser.add_argument('--seconds', type=float, help='seconds of panning per size (default 8; 4 with --quick)')
    parser.add_argument('--keypresses', type=int, default=20, help='category keys timed in the guided view')
    parser.add_argument('--data', type=Path, default=ROOT / 'bench-output' / 'overlay-stack',
                        help='data folder of the live stack this run starts')
    parser.add_argument('--json', type=Path, help='also write the figures to this JSON file')
    parser.add_argument('--report', type=Path, help="write the benchmarks page's section here (bench/report.py)")
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ([10_000, 100_000] if args.quick else [10_000, 1_000_000])
    args.seconds = args.seconds or (4 if args.quick else 8)
    return args


def main(argv: list[str] | None = None) -> int:
    from histomics_label.devtools.client_build import build_client, ensure_chromium, npm_ci

    args = parse_args(argv)
    build_client()
    npm_ci(BROWSER_DIR)
    chromium = ensure_chromium()
    results = []
    with benchmark_stack(args.data) as (info, client, data_dir, slide):
        for size in args.sizes:
            preparing, (folder, item) = timed(prepare, client, size, data_dir, slide)
            print(f'{size:,} segments: project ready in {preparing:.0f} s', flush=True)
            figures = drive(info, folder, item, chromium, args.seconds, args.keypresses)
            results.append({'segments': size, **figures})
            print(f'  open {figures["open_s"]:.2f} s, predictions {figures["predictions_s"]:.2f} s '
                  f'(bytes fetched in {figures["predictions_fetch_s"]:.2f} s), '
                  f'panning {figures["fps"]:.1f} fps, next card p95 {figures["next_card_ms_p95"]:.0f} ms, '
                  f'round to views {figures["round_to_paint_s"]:.2f} / {figures["round_to_guided_s"]:.2f} s',
                  flush=True)
        bound = drive(info, folder, bare_slide(client, folder, slide), chromium, args.seconds, 0, bare=True)
        print(f'the slide alone (no segments): open {bound["open_s"]:.2f} s, panning {bound["fps"]:.1f} fps',
              flush=True)
    text = report(results, bound)
    print(f'\n{datetime.date.today()}, {os.cpu_count()} CPUs, {platform.machine()}, Python '
          f'{platform.python_version()}\n{text}')
    figures = {'date': str(datetime.date.today()), 'categories': len(CATEGORIES), 'seconds': args.seconds,
               'results': results, 'bound': bound}
    publish(figures, args.json, args.report, 'overlay',
            lambda directory: section(directory, results, bound, args.seconds), goals(results, bound))
    return 0


if __name__ == '__main__':
    sys.exit(main())
