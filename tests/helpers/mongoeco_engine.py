"""Run a script against the live stack's mongoeco engine (``mongo_wire.GirderSQLiteEngine``) in the stack's Python
3.13 mongoeco virtualenv, made on demand: the engine cannot be imported under the project's Python 3.11."""

import json
import subprocess
from pathlib import Path

from histomics_label.devtools.stack import launcher


def run_engine_script(source: str, tmp_path: Path) -> dict:
    """Run ``source`` with ``mongo_wire``'s folder and a fresh SQLite database path as its two arguments; returns
    the JSON object its last line of output prints."""
    python = launcher.ensure_mongoeco_venv(launcher.default_venv_dir())
    script = tmp_path / 'engine_script.py'
    script.write_text(source)
    wire_dir = Path(launcher.MONGO_WIRE_SCRIPT).parent
    done = subprocess.run([str(python), str(script), str(wire_dir), str(tmp_path / 'db.sqlite')],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
