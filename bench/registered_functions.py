"""The registered acquisition functions a benchmark harness can run (``bench_selection``, ``bench_active_learning``).

Whatever is registered when a benchmark runs takes part, so a new function is measured without editing the
benchmarks; one the harness cannot create without options, or that needs an input the harness cannot give, is left
out with a note the report prints.
"""

from __future__ import annotations

from collections.abc import Collection


def runnable_functions(feedable: Collection[str], only: Collection[str] | None = None
                       ) -> tuple[list[tuple[str, object, tuple[str, ...]]], list[str]]:
    """``(name, function, needs)`` of each registered function (of ``only`` when given) whose needs are all in
    ``feedable``, in registry order; and a note per function left out."""
    from histomics_label.core.acquisition import acquisition_functions

    found, notes = [], []
    for name in acquisition_functions.names():
        if only and name not in only:
            continue
        try:
            function = acquisition_functions.create(name)
        except Exception as exc:  # a constructor that needs options the harness does not know
            notes.append(f'{name}: skipped, cannot be created without options ({exc})')
            continue
        needs = tuple(getattr(function, 'needs', ()) or ())
        missing = [need for need in needs if need not in feedable]
        if missing:
            notes.append(f'{name}: skipped, needs {", ".join(missing)}, which this harness cannot provide')
            continue
        found.append((name, function, needs))
    return found, notes
