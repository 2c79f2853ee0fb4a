"""Developer tooling that runs from a source checkout: the web client build, the bundled sample data, the local
live stack and the demos. Nothing here is imported by the plugin or the engine."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout that holds ``plugin_client/`` and ``slicer_cli/`` beside the package."""
