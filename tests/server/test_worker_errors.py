"""The reason shown for a failed worker child: its own ``Error:`` line, else its last line, else its exit code."""

from histomics_label.jobs.workers.errors import child_error


def test_the_workers_error_line_wins_over_later_logging():
    stderr = ['INFO loading\n', 'Error: magnification 80 is above the slide\'s 20\n', 'WARNING shutting down\n']
    assert child_error(stderr, 2, 'the pipeline') == "magnification 80 is above the slide's 20"


def test_a_crash_shows_its_last_line_and_silence_its_exit_code():
    assert child_error(['Traceback (most recent call last):', '  ...', 'MemoryError', ''], 1, 'x') == 'MemoryError'
    assert child_error(['', '  '], -9, 'the round') == 'the round exited with code -9'
