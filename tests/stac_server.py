"""ASGI app of the STAC tests: stac-fastapi-static over a static catalog on disk.

The catalog folder is also mounted as static files (Starlette serves HTTP range
requests), so the COG assets, whose hrefs stac-fastapi-static rewrites to URLs under the
API root, are read over HTTP as from a bucket. Run with
``CATALOG_HREF=/path/catalog.json uvicorn stac_server:app --app-dir tests``.
"""

import os

from stac_fastapi.static.app import app
from starlette.staticfiles import StaticFiles

app.mount(
    "/", StaticFiles(directory=os.path.dirname(os.path.abspath(os.environ["CATALOG_HREF"]))), name="catalog-files"
)
