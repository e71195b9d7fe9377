"""Earth Engine adapter: request planning, retries, credentials, defects found live, product pulls.

The live Earth Engine API cannot be reached from the test machine; what is tested is
everything up to the wire: splitting cache tiles into ``computePixels`` requests under
the byte and edge limits and aligned with the grid, the backoff policy, the retry loop
against a real HTTP server on loopback that answers 429 and 503 before 200, the choice
of cloud layers, and the credential checks. Below those, a loopback Earth Engine: the real
earthengine-api client (its bundled discovery document and algorithm list, googleapiclient,
``ee.data.computePixels``) talks HTTP to a local server answering computePixels with NPY
pixels (masked pixels as 0 unless unmasked, as the service does) or with the service's JSON
errors; nothing of ``ee.data`` is faked in-process except the algorithm list (as in
earthengine-api's own tests). Each defect found against the live service has a test here
that fails on the code before the fix.
"""

from __future__ import annotations

import http.server
import io
import itertools
import json
import logging
import random
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from karstflow.grid import RegionGrid
from karstflow.sources import CredentialsError, get_source
from karstflow.sources.earthengine import (
    ENV_CREDENTIALS,
    MAX_GRID_PX,
    MAX_REQUEST_BYTES,
    EarthEngineSource,
    bytes_per_pixel,
    load_credentials,
    mask_layers,
    plan_requests,
)
from karstflow.sources.fetch import BackoffPolicy, http_status, is_retryable, retry_call

S2_DTYPES = ["uint16"] * 9  # six bands, CS_CDF and two MSK_CLASSI layers


def covered_exactly(grid: RegionGrid, reqs) -> bool:
    """The windows form a partition of the grid: a product of contiguous row and column runs."""
    h, w = grid.shape

    def contiguous(runs, n):
        runs = sorted(set(runs))
        return (
            runs[0][0] == 0
            and all(a[0] + a[1] == b[0] for a, b in itertools.pairwise(runs))
            and runs[-1][0] + runs[-1][1] == n
        )

    rows = {(r.row_off, r.height) for r in reqs}
    cols = {(r.col_off, r.width) for r in reqs}
    pairs = {(r.row_off, r.height, r.col_off, r.width) for r in reqs}
    return contiguous(rows, h) and contiguous(cols, w) and len(pairs) == len(reqs) == len(rows) * len(cols)


def test_a_default_cache_tile_is_one_request():
    grid = RegionGrid.from_bounds("EPSG:32650", 10, (501760, 2899840, 512000, 2910080))  # 1024 px
    reqs = plan_requests(grid, S2_DTYPES)
    assert len(reqs) == 1
    assert reqs[0].nbytes(S2_DTYPES) == 1024 * 1024 * 9 * 3 <= MAX_REQUEST_BYTES


@pytest.mark.parametrize(
    ("shape", "dtypes"),
    [
        ((4000, 3000), S2_DTYPES),
        ((1024, 1024), ["float64"] * 40),
        ((3, 70000), ["uint8"]),
        ((50000, 50000), ["uint16"]),
    ],
)
def test_requests_respect_byte_and_edge_limits_and_tile_the_grid(shape, dtypes):
    h, w = shape
    grid = RegionGrid("EPSG:32650", 10.0, (400000.0, 2900000.0, 400000.0 + 10 * w, 2900000.0 + 10 * h))
    reqs = plan_requests(grid, dtypes)
    assert all(r.nbytes(dtypes) <= MAX_REQUEST_BYTES for r in reqs)
    assert all(r.width <= MAX_GRID_PX and r.height <= MAX_GRID_PX for r in reqs)
    assert covered_exactly(grid, reqs)
    # aligned with the grid: each window's origin is the grid origin plus whole pixels
    for r in reqs:
        g = r.grid()
        t = g["affineTransform"]
        assert g["crsCode"] == "EPSG:32650" and t["scaleX"] == 10.0 and t["scaleY"] == -10.0
        assert t["translateX"] == grid.bounds[0] + 10 * r.col_off
        assert t["translateY"] == grid.bounds[3] - 10 * r.row_off
        assert g["dimensions"] == {"width": r.width, "height": r.height}


def test_mask_bytes_are_counted():
    assert bytes_per_pixel(["uint16", "float32", "uint8"]) == (2 + 1) + (4 + 1) + (1 + 1)
    # 48 MB of uint16 pixels alone would fit 2 bytes/px; with the mask byte it needs 3
    side = 4500
    grid = RegionGrid("EPSG:32650", 10.0, (0.0, 0.0, 10.0 * side, 10.0 * side))
    one = plan_requests(grid, ["uint16"], safety=1.0)
    assert side * side * 2 < MAX_REQUEST_BYTES < side * side * 3
    assert len(one) == 2


def test_backoff_policy_grows_exponentially_with_jitter_and_a_cap():
    p = BackoffPolicy(max_retries=8, base_s=1.0, max_s=20.0, jitter=0.5)
    delays = p.delays(random.Random(0))
    assert len(delays) == 8
    for k, d in enumerate(delays):
        full = min(20.0, 2.0**k)
        assert full * 0.5 <= d <= full
    no_jitter = BackoffPolicy(max_retries=5, base_s=0.5, max_s=3.0, jitter=0.0).delays()
    assert no_jitter == [0.5, 1.0, 2.0, 3.0, 3.0]


class _Flaky(http.server.BaseHTTPRequestHandler):
    script: list[int] = []
    hits: list[int] = []

    def do_POST(self):  # noqa: N802 - http.server API
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status = self.script.pop(0) if self.script else 200
        self.hits.append(status)
        body = json.dumps({"ok": status == 200}).encode()
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def flaky_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/projects/p/image:computePixels", _Flaky
    finally:
        server.shutdown()
        server.server_close()


def _post(url: str) -> dict:
    req = urllib.request.Request(url, data=b"{}", method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def test_retry_rides_out_429_and_503_from_a_real_server(flaky_server, caplog):
    url, handler = flaky_server
    handler.script, handler.hits = [429, 503, 429], []
    slept: list[float] = []
    policy = BackoffPolicy(max_retries=5, base_s=0.01, max_s=0.05)
    with caplog.at_level(logging.WARNING, logger="karstflow.sources.fetch"):
        body = retry_call(lambda: _post(url), policy, what="computePixels", sleep=slept.append, rng=random.Random(1))
    assert body == {"ok": True}
    assert handler.hits == [429, 503, 429, 200]
    assert len(slept) == 3 and slept[0] <= slept[2] * 4  # growing (jittered) delays
    assert "HTTP 429" in caplog.text and "HTTP 503" in caplog.text


def test_retry_gives_up_after_the_policy_and_never_retries_a_400(flaky_server):
    from karstflow.sources import RemoteError

    url, handler = flaky_server
    host = url.split("/")[2]
    handler.script, handler.hits = [503] * 10, []
    with pytest.raises(RemoteError, match=rf"^region x: DEM: HTTP 503 at {host} .*gave up after 3 attempts") as err:
        retry_call(
            lambda: _post(url), BackoffPolicy(max_retries=2, base_s=0.0), what="region x: DEM", sleep=lambda s: None
        )
    # the library's exception stays chained for a traceback
    assert isinstance(err.value.__cause__, urllib.error.HTTPError) and err.value.__cause__.code == 503
    assert handler.hits == [503, 503, 503]
    handler.script, handler.hits = [400, 200], []
    with pytest.raises(RemoteError, match=r"HTTP 400 at .*gave up after 1 attempt in .*not retried"):
        retry_call(lambda: _post(url), BackoffPolicy(max_retries=3, base_s=0.0), sleep=lambda s: None)
    assert handler.hits == [400]


def test_status_is_read_from_earth_engine_style_messages():
    from ee.ee_exception import EEException

    assert (
        http_status(
            EEException(
                "Too Many Requests: Request was rejected because the request rate or concurrency limit was exceeded."
            )
        )
        == 429
    )
    assert http_status(EEException("<HttpError 503 when requesting https://earthengine.googleapis.com/...>")) == 503
    assert is_retryable(EEException("HTTP Error 502: Bad Gateway"))
    assert not is_retryable(EEException("Image.select: Pattern 'B99' did not match any bands."))


def test_cloud_layers_prefer_cloud_score_plus_then_msk_classi_then_qa60():
    with_msk = ["B2", "QA60", "MSK_CLASSI_OPAQUE", "MSK_CLASSI_CIRRUS", "SCL"]
    assert mask_layers(with_msk, True) == ["CS_CDF", "MSK_CLASSI_OPAQUE", "MSK_CLASSI_CIRRUS"]
    assert mask_layers(with_msk, False) == ["MSK_CLASSI_OPAQUE", "MSK_CLASSI_CIRRUS"]
    assert mask_layers(["B2", "QA60"], False) == ["QA60"]
    assert mask_layers(["B2", "QA60"], True) == ["CS_CDF", "QA60"]


def test_clear_mask_uses_the_cloud_score_threshold_and_falls_back_per_pixel():
    from karstflow.sources import MaskRules
    from karstflow.sources.rasters import clear_mask

    cs = np.array([[0, 5999, 6000, 9000]], dtype=np.uint16)  # 0 = no score there
    qa = np.array([[1 << 10, 0, 1 << 10, 0]], dtype=np.uint16)
    ok = np.ones_like(cs, dtype=bool)
    clear = clear_mask({"CS_CDF": cs, "QA60": qa}, {"CS_CDF": ok, "QA60": ok}, MaskRules(cs_cdf_threshold=0.6))
    assert clear.tolist() == [[False, False, True, True]]  # first pixel: QA60 opaque cloud


def test_earthengine_without_credentials_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_CREDENTIALS, raising=False)
    region = {
        "source": "earthengine",
        "aoi": {"bounds": [500000, 2900000, 501000, 2901000]},
        "crs": "EPSG:32650",
        "resolution_m": 10,
        "years": {"first": 2022, "last": 2022},
        "earthengine": {"project": "my-project"},
    }
    src = get_source("xunwu", region, {}, cache_root=tmp_path)
    assert isinstance(src, EarthEngineSource) and src.dem_choice == "aster-gdem"
    import datetime as dt

    from karstflow.sources import Period

    grid = RegionGrid.from_bounds("EPSG:32650", 10, (500000, 2900000, 501000, 2901000))
    with pytest.raises(
        CredentialsError, match=rf"region xunwu, period 2022: .*set the environment variable {ENV_CREDENTIALS}"
    ):
        src.scenes(Period("2022", dt.date(2022, 1, 1), dt.date(2022, 12, 31)), grid)
    monkeypatch.setenv(ENV_CREDENTIALS, str(tmp_path / "missing.json"))
    with pytest.raises(CredentialsError, match=rf"{ENV_CREDENTIALS} names a file that does not exist"):
        src.dem(grid)


def test_service_account_key_is_loaded_and_never_logged(tmp_path, caplog):
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    from cryptography.hazmat.primitives import serialization

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "abc123",
        "private_key": pem,
        "client_email": "karstflow@p.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = tmp_path / "key.json"
    path.write_text(json.dumps(info))
    with caplog.at_level(logging.DEBUG):
        creds, kind = load_credentials("xunwu", "2022", env={ENV_CREDENTIALS: str(path)})
    assert kind == "service_account" and creds.service_account_email == info["client_email"]
    assert "PRIVATE KEY" not in caplog.text and str(path) not in caplog.text
    path.write_text(json.dumps({"type": "external_account"}))
    with pytest.raises(CredentialsError, match="type 'external_account'"):
        load_credentials("xunwu", "2022", env={ENV_CREDENTIALS: str(path)})


# --------------------------------------------------------------------------------------
# against a loopback Earth Engine: the real client (googleapiclient, ee.data) talks HTTP to
# a local server speaking the Cloud API's computePixels (NPY body, JSON errors), so the
# exception chain, the wire format and masked pixels behave as with the live service.
# --------------------------------------------------------------------------------------


class _FakeEE(http.server.BaseHTTPRequestHandler):
    """``POST /v1/projects/<p>/image:computePixels``: NPY of the requested grid and bands.

    Pixel value = 100 * band index + row (float32). The westmost column is masked, as a
    footprint edge: masked pixels come back 0, unless the expression unmasks them (then the
    unmask value), as computePixels does. ``script`` holds error statuses to answer first.
    """

    script: list[tuple[int, str]] = []
    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        if self.script:
            status, message = self.script.pop(0)
            self.requests.append({"status": status})
            out = json.dumps({"error": {"code": status, "message": message, "status": "RESOURCE_EXHAUSTED"}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
        else:
            grid, bands = body["grid"], body["bandIds"]
            w, h = grid["dimensions"]["width"], grid["dimensions"]["height"]
            fill = _unmask_value(body["expression"])
            arr = np.zeros((h, w), dtype=[(b, "<f4") for b in bands])
            for i, b in enumerate(bands):
                arr[b] = 100 * i + np.arange(h, dtype=np.float32)[:, None]
                arr[b][:, 0] = fill
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            out = buf.getvalue()
            self.requests.append({"status": 200, "grid": grid, "bands": bands, "bytes": len(out), "body": body})
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def _unmask_value(expr: dict) -> float:
    """The value of the outermost Image.unmask of a serialised expression, else 0."""
    values = expr.get("values", {})
    node = values.get(expr.get("result"), {})
    fi = node.get("functionInvocationValue", {})
    if fi.get("functionName") == "Image.unmask":
        v = fi["arguments"]["value"]
        v = values[v["valueReference"]] if "valueReference" in v else v
        if "functionInvocationValue" in v:  # a number is promoted to Image.constant(value)
            v = v["functionInvocationValue"]["arguments"]["value"]
            v = values[v["valueReference"]] if "valueReference" in v else v
        return float(v.get("constantValue", 0.0))
    return 0.0


@pytest.fixture()
def loopback_ee(monkeypatch):
    ee = pytest.importorskip("ee")
    import os

    from ee import _cloud_api_utils, apitestcase

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeEE)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    ee.Reset()
    monkeypatch.setattr(ee.data, "_install_cloud_api_resource", lambda: None)
    monkeypatch.setattr(ee.data, "getAlgorithms", apitestcase.GetAlgorithms)
    ee.Initialize(None, "", project="my-project")
    doc_path = os.path.join(os.path.dirname(apitestcase.__file__), "tests", "cloud_api_discovery_document.json")
    with open(doc_path, encoding="utf-8") as f:
        doc = json.load(f)
    doc["rootUrl"] = doc["baseUrl"] = url
    state = ee.data._get_state()
    state.cloud_api_resource_raw = _cloud_api_utils.build_cloud_resource_from_document(doc, raw=True)
    state.cloud_api_resource = _cloud_api_utils.build_cloud_resource_from_document(doc)
    state.max_retries = 0  # googleapiclient would otherwise retry 429 itself, sleeping
    _FakeEE.script, _FakeEE.requests = [], []
    try:
        yield ee, _FakeEE
    finally:
        ee.Reset()
        server.shutdown()
        server.server_close()


def _source(tmp_path, ee, **kw):
    src = EarthEngineSource("xunwu", tmp_path / "resources", tile_px=32, max_concurrent=1, **kw)
    src._ee = ee  # initialised by the fixture: no credentials involved
    src.policy = BackoffPolicy(max_retries=3, base_s=0.0, max_s=0.0)
    return src


GRID64 = RegionGrid("EPSG:32650", 30.0, (0.0, 0.0, 64 * 30.0, 32 * 30.0))  # two 32 px cache tiles


def test_masked_pixels_become_nan_not_zero(loopback_ee, tmp_path):
    import rasterio

    ee, fake = loopback_ee
    src = _source(tmp_path, ee, dem="nasadem")
    (path, _) = src.dem(GRID64)
    with rasterio.open(path) as ds:
        z = ds.read(1)
    assert np.isnan(z[:, 0]).all()  # the masked column
    assert z[5, 3] == 5.0 and np.isfinite(z[:, 1:]).all()


def test_dem_assets_have_their_catalog_types_and_glo30_is_resampled_per_tile(loopback_ee):
    from ee import serializer

    from karstflow.sources.earthengine import DEMS, dem_image

    ee, _ = loopback_ee
    assert DEMS["aster-gdem"] == ("projects/sat-io/open-datasets/ASTER/GDEM", "b1", False)  # an ee.Image
    assert DEMS["copernicus-glo30"] == ("COPERNICUS/DEM/GLO30_2024_1", "DEM", True)
    aster = json.dumps(serializer.encode(dem_image(ee, "aster-gdem"), is_compound=False, for_cloud_api=True))
    assert '"Image.load"' in aster and "ImageCollection" not in aster
    tree = serializer.encode(dem_image(ee, "copernicus-glo30", "bilinear"), is_compound=False, for_cloud_api=True)
    text = json.dumps(tree)
    mosaic = text.index('"ImageCollection.mosaic"')
    # the resample sits inside the function mapped over the tiles, i.e. below the mosaic
    assert text.index('"Collection.map"') > mosaic and text.index('"Image.resample"') > text.index('"Collection.map"')
    assert '"bilinear"' in text and "COPERNICUS/DEM/GLO30_2024_1" in text


def test_429_from_the_service_is_retried_through_the_eeexception_chain(loopback_ee, caplog):
    from ee.ee_exception import EEException
    from googleapiclient.errors import HttpError

    from karstflow.sources import RemoteError

    ee, fake = loopback_ee
    fake.script = [(429, "Too many concurrent aggregations.")]
    params = {
        "expression": ee.Image.constant(1).rename("x"),
        "fileFormat": "NPY",
        "grid": {"dimensions": {"width": 2, "height": 2}, "affineTransform": {}, "crsCode": "EPSG:4326"},
        "bandIds": ["x"],
    }
    with pytest.raises(EEException) as err:
        ee.data.computePixels(dict(params))
    # what earthengine-api raises: the message only, the HttpError as the context
    assert str(err.value) == "Too many concurrent aggregations."
    assert isinstance(err.value.__context__, HttpError) and err.value.__context__.resp.status == 429
    assert http_status(err.value) == 429 and is_retryable(err.value)
    fake.script = [(429, "Too many concurrent aggregations."), (503, "The service is currently unavailable.")]
    with caplog.at_level(logging.WARNING, logger="karstflow.sources.fetch"):
        raw = retry_call(lambda: ee.data.computePixels(dict(params)), BackoffPolicy(3, 0.0, 0.0), sleep=lambda s: None)
    assert [r["status"] for r in fake.requests[-3:]] == [429, 503, 200]
    assert np.load(io.BytesIO(raw))["x"].shape == (2, 2)
    assert "HTTP 429" in caplog.text and "HTTP 503" in caplog.text
    # a computation too big is not retried, whatever its status
    fake.script = [(400, "User memory limit exceeded.")]
    n = len(fake.requests)
    with pytest.raises(RemoteError, match=r"HTTP 400 at 127\.0\.0\.1:\d+ \(User memory limit exceeded\.\)") as err:
        retry_call(lambda: ee.data.computePixels(dict(params)), BackoffPolicy(3, 0.0, 0.0), sleep=lambda s: None)
    assert isinstance(err.value.__cause__, EEException)
    assert len(fake.requests) == n + 1


def test_status_follows_the_exception_chain_and_real_texts():
    from ee.ee_exception import EEException

    class Resp(dict):
        status = 503
        reason = "Service Unavailable"

    from googleapiclient.errors import HttpError

    try:
        try:
            raise HttpError(Resp(), b'{"error": {"message": "Earth Engine capacity exceeded."}}')
        except HttpError as e:
            raise EEException("Earth Engine capacity exceeded.") from e
    except EEException as chained:
        assert http_status(chained) == 503 and is_retryable(chained)
    assert http_status(EEException("Quota exceeded for quota metric 'Requests'")) == 429
    assert not is_retryable(EEException("User memory limit exceeded."))
    assert not is_retryable(EEException("Computation timed out."))


def test_composite_is_one_request_per_tile_and_period_cached_with_bytes_and_units(loopback_ee, tmp_path):
    import datetime as dt

    import rasterio

    from karstflow.sensors import SensorRules
    from karstflow.sources import Period

    ee, fake = loopback_ee
    src = _source(tmp_path, ee)
    period = Period("2020", dt.date(2020, 1, 1), dt.date(2020, 12, 31))
    paths = src.vegetation_composite("landsat", period, GRID64, method="median", rules=SensorRules())
    ok = [r for r in fake.requests if r["status"] == 200]
    assert len(paths) == 2 and len(ok) == 2  # one computePixels per (tile, period), not per scene
    refl = ["blue", "red", "nir", "swir1", "swir2"]
    assert all(r["bands"] == ["ndvi", "evi", "kndvi", "clear_count", *refl] for r in ok)
    assert src.bytes_pulled == sum(r["bytes"] for r in ok) > 0
    entries = src.cache.manifest("earthengine")
    assert sorted(e["bytes_pulled"] for e in entries) == sorted(r["bytes"] for r in ok)
    assert all(len(e["expression_sha256"]) == 64 and e["request"]["windows"] == 1 for e in entries)
    assert entries[0]["request"]["grid"][0]["crsCode"] == "EPSG:32650"
    with rasterio.open(paths[0]) as ds:
        assert ds.descriptions == ("ndvi", "evi", "kndvi", "clear_count", *refl)
        assert [ds.tags(i)["units"] for i in range(1, 10)] == ["1", "1", "1", "count", *["1"] * 5]
        assert ds.dtypes[0] == "float32" and np.isnan(ds.nodata)
        assert np.isnan(ds.read(4)[:, 0]).all() and ds.read(4)[7, 5] == 300 + 7
    # a rerun fetches nothing the cache holds
    again = src.vegetation_composite("landsat", period, GRID64, method="median", rules=SensorRules())
    assert again == paths and len([r for r in fake.requests if r["status"] == 200]) == 2
    assert src.bytes_pulled == sum(r["bytes"] for r in ok)


def test_products_split_only_over_the_limits(loopback_ee, tmp_path):
    import rasterio

    ee, fake = loopback_ee
    # 32 x 32 px x 132 float32 bands (+ mask byte) is 675,840 bytes: a 200 kB limit needs 4 windows
    src = _source(tmp_path, ee, max_request_bytes=200_000)
    grid = RegionGrid("EPSG:32650", 30.0, (0.0, 0.0, 32 * 30.0, 32 * 30.0))
    (path,) = src.climate_monthly("era5-land", 2020, grid)
    ok = [r for r in fake.requests if r["status"] == 200]
    assert len(ok) == 4 and all(len(r["bands"]) == 132 for r in ok)
    with rasterio.open(path) as ds:
        assert ds.count == 132 and ds.descriptions[0] == "temperature_2m_2020-01"
        assert ds.tags(132)["units"] == "m" and ds.tags(1)["units"] == "K"
        rows = ds.read(1)[:, 5]
    heights = sorted({r["grid"]["dimensions"]["height"] for r in ok})
    # each window restarts its row counter: the assembled tile shows the window edges
    assert rows[0] == 0 and rows[heights[0]] == 0 and rows[heights[0] - 1] == heights[0] - 1
    (soil,) = src.soil(grid, ["clay"], ["0-5cm", "5-15cm"])
    with rasterio.open(soil) as ds:
        assert ds.descriptions == ("clay_0-5cm", "clay_5-15cm") and ds.tags(1)["units"] == "%"
    (pop,) = src.population(2020, grid)
    with rasterio.open(pop) as ds:
        assert ds.descriptions == ("population_density",) and ds.tags(1)["units"] == "persons km-2"
    with pytest.raises(ValueError, match="worldpop has the years"):
        src.population(2023, grid)
    (lc,) = src.landcover("worldcover", 2021, grid)
    with rasterio.open(lc) as ds:
        assert ds.descriptions == ("landcover",)
    with pytest.raises(ValueError, match="worldcover has the years"):
        src.landcover("worldcover", 2018, grid)


def test_cloud_score_below_0_0001_is_a_score_not_no_score(loopback_ee):
    from ee import serializer

    from karstflow.sources import MaskRules
    from karstflow.sources.earthengine import cs_cdf_band, encode_cs_cdf
    from karstflow.sources.rasters import clear_mask

    ee, _ = loopback_ee
    text = json.dumps(serializer.encode(cs_cdf_band(ee, "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED/x"), False, True))
    assert '"Image.floor"' in text and '"Image.max"' in text and '"Image.toUint16"' in text
    codes = encode_cs_cdf(np.array([0.00005, 0.0, np.nan, 0.59999, 0.6, 1.0]))
    assert codes.tolist() == [1, 1, 0, 5999, 6000, 10000]
    # the pixel with cs_cdf 0.00005 (very likely cloud) and a clear QA60 is not clear
    cs = codes[None, :].astype(np.uint16)
    qa = np.zeros_like(cs)
    ok = np.ones(cs.shape, dtype=bool)
    clear = clear_mask({"CS_CDF": cs, "QA60": qa}, {"CS_CDF": cs > 0, "QA60": ok}, MaskRules(cs_cdf_threshold=0.6))
    assert clear.tolist() == [[False, False, True, False, True, True]]


def test_cloud_fallback_follows_the_acquisition_date():
    import datetime as dt

    bands = ["B2", "QA60", "MSK_CLASSI_OPAQUE", "MSK_CLASSI_CIRRUS", "SCL"]  # listed on every image
    assert mask_layers(bands, False, dt.date(2021, 6, 1)) == ["QA60"]
    assert mask_layers(bands, False, dt.date(2023, 6, 1)) == ["SCL"]  # QA60 and MSK_CLASSI both masked
    assert mask_layers(bands, True, dt.date(2022, 1, 25)) == ["CS_CDF", "SCL"]
    assert mask_layers(bands, False, dt.date(2024, 2, 28)) == ["MSK_CLASSI_OPAQUE", "MSK_CLASSI_CIRRUS"]
    assert mask_layers(["B2", "QA60", "SCL"], False, dt.date(2025, 1, 1)) == ["QA60"]  # older band list


def test_authorized_user_credentials_keep_their_granted_scopes(tmp_path):
    info = {"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(info))
    creds, kind = load_credentials("xunwu", "2022", env={ENV_CREDENTIALS: str(path)})
    assert kind == "authorized_user" and creds.scopes is None and not creds.requires_scopes


def test_a_crs_without_epsg_code_goes_as_wkt():
    albers = "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +x_0=0 +y_0=0 +ellps=krass +units=m +no_defs"
    grid = RegionGrid(albers, 30.0, (0.0, 0.0, 3000.0, 3000.0))
    (req,) = plan_requests(grid, ["float32"])
    g = req.grid()
    assert "crsCode" not in g and "Albers" in g["crsWkt"] and g["crsWkt"].startswith("PROJCS")
    (utm,) = plan_requests(GRID64, ["float32"])
    assert utm.grid()["crsCode"] == "EPSG:32650" and "crsWkt" not in utm.grid()


def test_the_workflow_scripts_pull_an_earth_engine_composite_not_its_scenes(loopback_ee, tmp_path, monkeypatch):
    """Rules vegetation_fetch and vegetation_composite of an earthengine region: one pixel
    request per cache tile for the season, the composite put on the grid from the cached
    tiles, and the bytes pulled in the summary."""
    import rasterio

    from karstflow.io import read_json, write_json
    from karstflow.runtime import call_script

    ee, fake = loopback_ee
    monkeypatch.setattr(EarthEngineSource, "connect", lambda self, *a, **k: setattr(self, "_ee", ee) or ee)
    monkeypatch.chdir(tmp_path)
    write_json(GRID64.to_dict(), tmp_path / "grid.json")
    scripts = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
    veg = {"composite": "median", "landsat_qa_not_clear": ["fill", "cloud", "cloud_shadow"],
           "scl_not_clear": [3, 8, 9], "modis_reliability_clear": [0, 1]}  # fmt: skip
    region = {"source": "earthengine", "earthengine": {"project": "my-project"}}
    table = tmp_path / "fetched" / "landsat_2015.csv"
    table.parent.mkdir()
    wildcards = {"region": "xunwu", "sensor": "landsat", "year": "2015"}
    call_script(
        scripts / "vegetation_fetch.py",
        {"grid": str(tmp_path / "grid.json")},
        {"table": str(table), "manifest": str(table.with_suffix(".json"))},
        {
            "region": region,
            "imagery": {"cache_tile_px": 32, "fetch": {"max_concurrent": 1}},
            "season_months": [5, 6, 7, 8, 9],
            "vegetation": veg,
        },  # fmt: skip
        wildcards,
    )
    served = [r for r in fake.requests if r["status"] == 200]
    assert len(served) == 2  # two cache tiles, one request each for the whole season
    manifest = read_json(table.with_suffix(".json"))
    assert manifest["server_side_composite"] and manifest["bytes_pulled"] == sum(r["bytes"] for r in served)
    out = tmp_path / "results" / "landsat_2015.tif"
    out.parent.mkdir()
    call_script(
        scripts / "vegetation_composite.py",
        {"scenes": str(table), "grid": str(tmp_path / "grid.json")},
        {"composite": str(out), "summary": str(out.with_suffix(".json"))},
        {
            "source": "earthengine",
            "season_months": [5, 6, 7, 8, 9],
            "gdal_cache_mb": 64,
            "vegetation": {**veg, "resampling": "bilinear", "chunk_px": 32},
        },  # fmt: skip
        wildcards,
    )
    with rasterio.open(out) as ds:
        # the reflectance bands of the server-side composite pass through under the names
        # vegetation_stack reads
        assert ds.descriptions == ("ndvi", "evi", "kndvi", "clear_count", "blue", "red", "nir", "swir1", "swir2")
        assert ds.shape == GRID64.shape
        ndvi, clear_count, blue, swir2 = ds.read(1), ds.read(4), ds.read(5), ds.read(9)
    # pixel value = 100 * band index + row of its tile; the masked westmost column of each
    # tile has no value (NDVI NaN) and no clear observation (count 0)
    assert clear_count[7, 5] == 300 + 7 and ndvi[7, 5] == 7
    assert blue[7, 5] == 400 + 7 and swir2[7, 5] == 800 + 7 and np.isnan(swir2[:, [0, 32]]).all()
    assert np.isnan(ndvi[:, [0, 32]]).all() and (clear_count[:, [0, 32]] == 0).all()
    call_script(
        scripts / "vegetation_composite_summary.py",
        {"composite": str(out), "manifest": str(table.with_suffix(".json"))},
        {"summary": str(out.with_suffix(".json"))},
        {"source": "earthengine"},
        wildcards,
    )
    summary = read_json(out.with_suffix(".json"))
    assert summary["bytes_pulled"] == manifest["bytes_pulled"] and summary["sensor"] == "landsat"


# --------------------------------------------------------------------------------------
# without network: one retry layer bounded by one budget, errors that name region,
# period, product and host with a plain cause, not the transport library's text
# --------------------------------------------------------------------------------------


def test_the_budget_stops_retrying_before_it_would_be_overrun():
    from karstflow.sources import RemoteError

    now = [0.0]
    calls: list[float] = []

    def refused():
        calls.append(now[0])
        raise ConnectionRefusedError(111, "Connection refused")

    def sleep(s):
        now[0] += s

    policy = BackoffPolicy(max_retries=10, base_s=1.0, max_s=60.0, jitter=0.0, budget_s=10.0)
    with pytest.raises(RemoteError, match=r"^region x, period 2022: S2: connection refused at h:1; gave up after 4 "):
        retry_call(refused, policy, what="region x, period 2022: S2", host="h:1", sleep=sleep, clock=lambda: now[0])
    # attempts at 0, 1, 3, 7 s; the next wait (8 s) would end at 15 s, past the 10 s budget
    assert calls == [0.0, 1.0, 3.0, 7.0]


def test_a_retry_call_inside_another_is_not_retried_again():
    from karstflow.sources import RemoteError

    calls = []

    def inner():
        calls.append(1)
        raise ConnectionRefusedError(111, "Connection refused")

    policy = BackoffPolicy(max_retries=2, base_s=0.0, max_s=0.0)
    with pytest.raises(RemoteError):
        retry_call(lambda: retry_call(inner, policy, sleep=lambda s: None), policy, sleep=lambda s: None)
    assert len(calls) == 3  # the inner loop's attempts only, not 3 x 3


def test_causes_and_hosts_are_read_from_library_texts_without_credentials():
    import urllib.error

    from ee.ee_exception import EEException
    from rasterio.errors import RasterioIOError

    from karstflow.sources import RemoteError
    from karstflow.sources.fetch import failure_cause, failure_host

    curl = RasterioIOError("CURL error: Failed to connect to 10.1.2.3 port 443 after 0 ms: Couldn't connect to server")
    assert failure_cause(curl) == "connection failed" and failure_host(curl) == "10.1.2.3:443"
    assert failure_cause(RasterioIOError("HTTP response code: 503")) == "HTTP 503"
    assert failure_cause(RasterioIOError("CURL error: Connection timed out after 5001 milliseconds")) == "timed out"
    # Earth Engine refusing a computation is not a transport timeout, and no failure of ours is one
    assert failure_cause(EEException("Computation timed out.")) is None
    assert failure_cause(ValueError("odc-stac returned 2 times for 1 items")) is None
    assert failure_host(ValueError("see https://user:pw@host.example:8443/x?sig=1")) == "host.example:8443"
    # a signed href in the server's text: the host is named, the token is not
    href = "https://acct.blob.core.windows.net/c/x.tif?se=2030&sig=S3CRET"
    forbidden = urllib.error.HTTPError(href, 403, f"Forbidden {href}", {}, None)  # type: ignore[arg-type]

    def fail():
        raise forbidden

    with pytest.raises(RemoteError) as err:
        retry_call(fail, BackoffPolicy(max_retries=3, base_s=0.0), what="region x, period 2022: landcover")
    msg = str(err.value)
    assert msg.startswith("region x, period 2022: landcover: HTTP 403 at acct.blob.core.windows.net")
    assert "S3CRET" not in msg and "gave up after 1 attempt" in msg


def _adc_with_token(tmp_path, monkeypatch, token_uri: str) -> tuple[dict, Path]:
    """Authorized-user credentials holding an access token valid until 2999, so no token
    refresh is attempted: the first request goes to the Earth Engine URL itself."""
    info = {
        "type": "authorized_user",
        "client_id": "client-id-x",
        "client_secret": "client-secret-x",
        "refresh_token": "refresh-token-x",
        "token": "access-token-x",
        "expiry": "2999-01-01T00:00:00Z",
        "token_uri": token_uri,
    }
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(info))
    monkeypatch.setenv(ENV_CREDENTIALS, str(path))
    return info, path


@pytest.fixture()
def ee_module():
    ee = pytest.importorskip("ee")
    ee.Reset()
    yield ee
    ee.Reset()


def test_earthengine_dem_against_a_refused_port_fails_fast_naming_what_and_where(
    ee_module, refused_url, tmp_path, monkeypatch, caplog
):
    """Before: two retry layers (ours x googleapiclient's 5) took about 300 s to fail."""
    import time

    from karstflow.sources import RemoteError

    info, path = _adc_with_token(tmp_path, monkeypatch, f"{refused_url}/token")
    region = {"earthengine": {"project": "my-project", "url": refused_url}}
    src = EarthEngineSource.from_config("xunwu", region, {}, cache_root=tmp_path / "resources")  # default fetch
    start = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(RemoteError) as err:
        src.dem(GRID64)
    elapsed = time.monotonic() - start
    msg, host = str(err.value), refused_url.split("//", 1)[1]
    assert msg.startswith(
        "region xunwu, period static: DEM aster-gdem (Earth Engine asset projects/sat-io/open-datasets/ASTER/GDEM)"
    )
    assert f": connection refused at {host}; gave up after " in msg
    assert not any(t in msg for t in ("urllib3", "HTTPConnection", "Max retries", "NewConnectionError"))
    assert elapsed < 30, f"{elapsed:.1f} s"
    assert ee_module.data._get_state().max_retries == 0  # earthengine-api's own retries are off
    for secret in (info["token"], info["refresh_token"], info["client_secret"], str(path)):
        assert secret not in caplog.text and secret not in msg
    assert not list((tmp_path / "resources").rglob("*.tif"))


def test_earthengine_search_names_the_period_and_collection(ee_module, refused_url, tmp_path, monkeypatch):
    import datetime as dt

    from karstflow.sources import Period, RemoteError

    _adc_with_token(tmp_path, monkeypatch, f"{refused_url}/token")
    region = {"earthengine": {"project": "my-project", "url": refused_url}}
    imagery = {"fetch": {"retry_budget_s": 1.0}}
    src = EarthEngineSource.from_config("xunwu", region, imagery, cache_root=tmp_path)
    with pytest.raises(RemoteError) as err:
        src.scenes(Period("2022", dt.date(2022, 1, 1), dt.date(2022, 12, 31)), GRID64)
    msg = str(err.value)
    assert msg.startswith("region xunwu, period 2022: Sentinel-2 COPERNICUS/S2_SR_HARMONIZED: Earth Engine")
    assert f"connection refused at {refused_url.split('//', 1)[1]}" in msg and "retry budget of 1 s" in msg
