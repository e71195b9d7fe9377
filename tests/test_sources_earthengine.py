"""Earth Engine adapter: request planning, retries and credentials (no live service here).

The live Earth Engine API cannot be reached from the test machine; what is tested is
everything up to the wire: splitting cache tiles into ``computePixels`` requests under
the byte and edge limits and aligned with the grid, the backoff policy, the retry loop
against a real HTTP server on loopback that answers 429 and 503 before 200, the choice
of cloud layers, and the credential checks.
"""

from __future__ import annotations

import http.server
import itertools
import json
import logging
import random
import threading
import urllib.error
import urllib.request

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
    url, handler = flaky_server
    handler.script, handler.hits = [503] * 10, []
    with pytest.raises(urllib.error.HTTPError) as err:
        retry_call(lambda: _post(url), BackoffPolicy(max_retries=2, base_s=0.0), sleep=lambda s: None)
    assert err.value.code == 503 and handler.hits == [503, 503, 503]
    handler.script, handler.hits = [400, 200], []
    with pytest.raises(urllib.error.HTTPError):
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
