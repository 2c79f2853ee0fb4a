"""The built web client (``dist/``, made from ``plugin_client/`` by ``python -m histomics_label.devtools.client_build``)
and its registration with Girder 5, whose own client loads a plugin's script and stylesheet through
``GET /system/plugin_static_files``. On Girder 3 the same ``dist/`` reaches the pages through the client package
here (``package.json``, ``girder3.js``), which ``girder build`` compiles with every other plugin's.

``dist/`` is a build output, not in git; without it the server and its REST API work as before and the log says the
web client is missing, so a server set up without node still starts.
"""

import logging
from pathlib import Path

DIST_DIR = Path(__file__).parent / 'dist'
SCRIPT = 'histomics-label.umd.cjs'
STYLESHEET = 'style.css'

logger = logging.getLogger(__name__)


def client_built() -> bool:
    """Whether ``dist/`` holds the built script and stylesheet."""
    return (DIST_DIR / SCRIPT).is_file() and (DIST_DIR / STYLESHEET).is_file()


def register_client(info: dict) -> bool:
    """Serve ``dist/`` under ``/plugin_static/histomics_label`` and list its files for Girder's client; called from
    the plugin's ``load``. Returns whether the client was registered (never on Girder 3, whose ``girder build``
    compiles plugins' client sources itself)."""
    from ..girder_compat import serves_built_clients

    if not serves_built_clients():
        return False
    from girder.plugin import registerPluginStaticContent

    if not client_built():
        logger.warning('Histomics Label web client is not built (%s is missing): the REST API works, the web views '
                       'do not; build it with: python -m histomics_label.devtools.client_build', DIST_DIR / SCRIPT)
        return False
    registerPluginStaticContent(plugin='histomics_label', css=[f'/{STYLESHEET}'], js=[f'/{SCRIPT}'],
                                staticDir=DIST_DIR, tree=info['serverRoot'])
    return True
