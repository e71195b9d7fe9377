"""Sentinel-2 L2A products as the Copernicus Data Space delivers them: SAFE folders or their zips.

:func:`read_safe_products` turns SAFE products (``S2A_MSIL2A_20170703T101021_N0205_R022_
T32TNR_20170703T101041.SAFE/`` or a ``.zip`` holding one) into the same
:class:`~karstflow.sources.Scene` objects a date table gives, so compositing is unchanged:

* **bands**: the granule JP2 files ``GRANULE/*/IMG_DATA/R{10,20,60}m/*_<band>_<res>m.jp2``
  (the L2A layout of PSD 14.x), each band at its native resolution (B2, B3, B4, B8 at
  10 m; B5, B6, B7, B8A, B11, B12 and SCL at 20 m; B1, B9 at 60 m), falling back to the
  next coarser resolution (then a finer one) where a product lacks it. Files off the
  region grid are warped onto it when read (SCL and other mask layers by nearest).
  Band names are the rest of karstflow's (``B2 ... B12``, ``B8A``, ``SCL``); ``B02``
  is accepted too.
* **zips** are read in place through GDAL's ``/vsizip/`` paths, never extracted.
* **metadata** decides harmonisation exactly as the date table's columns do: the
  processing baseline (``PROCESSING_BASELINE`` of ``MTD_MSIL2A.xml``, else the name's
  ``Nxxyy`` field) and, when the product states it, ``BOA_ADD_OFFSET`` (-1000 from
  baseline 04.00 on; see :mod:`karstflow.sources.harmonise`). The date comes from the
  product name (else ``PRODUCT_START_TIME``), the cloud cover from
  ``Cloud_Coverage_Assessment``.

Products of one date (adjacent tiles) are mosaicked into one scene, as the rows of one
date of a date table are.
"""

from __future__ import annotations

import datetime as dt
import glob
import logging
import os
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from karstflow.sources import S2_BANDS, ImageryError, Layer, MissingBandError, Scene
from karstflow.sources.harmonise import QUANTIFICATION_VALUE, HarmonisationError, parse_baseline

log = logging.getLogger(__name__)

__all__ = ["NATIVE_RESOLUTION", "SafeProduct", "band_name", "expand_paths", "open_product", "read_safe_products"]

#: Native resolution (m) of each L2A layer, by karstflow band name.
NATIVE_RESOLUTION: dict[str, int] = {
    "B1": 60,
    "B2": 10,
    "B3": 10,
    "B4": 10,
    "B5": 20,
    "B6": 20,
    "B7": 20,
    "B8": 10,
    "B8A": 20,
    "B9": 60,
    "B11": 20,
    "B12": 20,
    "SCL": 20,
}

#: Product name: mission, level, sensing start, baseline, relative orbit, tile, discriminator.
_NAME = re.compile(
    r"^(?P<mission>S2[A-D])_MSI(?P<level>L[12][AC])_(?P<start>\d{8}T\d{6})_N(?P<baseline>\d{4})_"
    r"R(?P<orbit>\d{3})_(?P<tile>T\d{2}[A-Z]{3})_(?P<disc>\d{8}T\d{6})$"
)
#: Granule image file, relative to the SAFE root.
_IMAGE = re.compile(
    r"^GRANULE/(?P<granule>[^/]+)/IMG_DATA/R(?P<dir>10|20|60)m/[^/]*_(?P<band>B\d{2}|B8A|SCL)_(?P<res>10|20|60)m\.jp2$",
    re.IGNORECASE,
)
_GLOB_CHARS = re.compile(r"[*?\[]")


def band_name(name: str) -> str:
    """``"B02"`` / ``"b2"`` / ``"B8A"`` / ``"scl"`` -> karstflow's ``"B2"``, ``"B8A"``, ``"SCL"``."""
    text = str(name).strip().upper()
    if text == "SCL":
        return text
    m = re.fullmatch(r"B0*(\d{1,2})(A?)", text)
    if not m:
        raise ImageryError(f"{name!r} is not a Sentinel-2 L2A band name (B1 ... B12, B8A, SCL)")
    out = f"B{int(m.group(1))}{m.group(2)}"
    if out not in NATIVE_RESOLUTION:
        raise ImageryError(f"{name!r}: Sentinel-2 L2A products have no such band ({', '.join(NATIVE_RESOLUTION)})")
    return out


def _preference(band: str) -> list[int]:
    """Resolutions to look for a band at: native, then coarser, then finer."""
    native = NATIVE_RESOLUTION[band]
    res = (10, 20, 60)
    return [native] + [r for r in res if r > native] + [r for r in reversed(res) if r < native]


# --------------------------------------------------------------------------------------
# paths and globs
# --------------------------------------------------------------------------------------


def expand_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """SAFE folders / zips named by ``paths``: one path or glob, or a list of them.

    Globs are expanded (``**`` included); the result is sorted and deduplicated. A glob
    matching nothing, or a plain path that does not exist, raises naming it.
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise ImageryError("inputs.imagery.safe: name at least one SAFE folder, zip or glob")
    found: dict[str, Path] = {}
    for item in items:
        text = os.fspath(item)
        if _GLOB_CHARS.search(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise ImageryError(f"inputs.imagery.safe: the pattern {text!r} matches no SAFE folder or zip")
        else:
            if not Path(text).exists():
                raise FileNotFoundError(f"inputs.imagery.safe: SAFE product not found: {text}")
            matches = [text]
        for m in matches:
            p = Path(m)
            found.setdefault(str(p.resolve()), p)
    return [found[k] for k in sorted(found)]


# --------------------------------------------------------------------------------------
# one product
# --------------------------------------------------------------------------------------


@dataclass
class SafeProduct:
    """One L2A product: its name, where it lies, its image files and its metadata."""

    path: Path
    name: str
    images: dict[str, dict[str, dict[int, str]]]  # granule -> band -> resolution -> GDAL path
    metadata: dict[str, Any] = field(default_factory=dict)

    def layer_paths(self, band: str) -> list[str]:
        """One file per granule holding ``band``, at the preferred resolution."""
        out = []
        for granule in sorted(self.images):
            have = self.images[granule].get(band, {})
            for res in _preference(band):
                if res in have:
                    out.append(have[res])
                    break
            else:
                held = sorted(self.images[granule])
                raise MissingBandError(
                    f"{self.path}: product {self.name} has no band {band} (granule {granule}, at 10, 20 or 60 m); "
                    f"it holds {', '.join(held) or 'no image files'}"
                )
        return out


def _strip_name(name: str) -> str:
    for suffix in (".zip", ".SAFE", ".safe"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_mtd(text: bytes, where: str) -> dict[str, Any]:
    """What harmonisation and the manifest need from ``MTD_MSIL2A.xml``."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise ImageryError(f"{where}: MTD_MSIL2A.xml is not readable XML ({err})") from None
    out: dict[str, Any] = {}
    offsets: list[float] = []
    for el in root.iter():
        tag = _local(el.tag)
        value = (el.text or "").strip()
        if not value:
            continue
        if tag == "PRODUCT_START_TIME" and "start" not in out:
            out["start"] = value
        elif tag == "PROCESSING_BASELINE" and "baseline" not in out:
            out["baseline"] = value
        elif tag == "PRODUCT_TYPE" and "type" not in out:
            out["type"] = value
        elif tag == "BOA_ADD_OFFSET":
            offsets.append(float(value))
        elif tag == "BOA_QUANTIFICATION_VALUE":
            out["quantification"] = float(value)
        elif tag == "Cloud_Coverage_Assessment" and "cloud" not in out:
            out["cloud"] = float(value)
    if offsets:
        if len(set(offsets)) > 1:
            raise HarmonisationError(
                f"{where}: MTD_MSIL2A.xml gives different BOA_ADD_OFFSET values per band ({sorted(set(offsets))}); "
                "karstflow applies one offset per product"
            )
        out["offset"] = int(round(offsets[0]))
    if "quantification" in out and out["quantification"] != QUANTIFICATION_VALUE:
        raise HarmonisationError(
            f"{where}: BOA_QUANTIFICATION_VALUE is {out['quantification']:g}, "
            f"karstflow expects {QUANTIFICATION_VALUE:g}"
        )
    return out


def _safe_root(names: Sequence[str]) -> str | None:
    """The prefix of a zip's members that is the SAFE root (``X.SAFE/`` or ``""``)."""
    for n in names:
        i = n.find("GRANULE/")
        if i >= 0 and (i == 0 or n[i - 1] == "/"):
            return n[:i]
    for n in names:
        if n.rsplit("/", 1)[-1].upper().startswith("MTD_MSI"):
            return n[: len(n) - len(n.rsplit("/", 1)[-1])]
    return None


def open_product(path: str | os.PathLike[str]) -> SafeProduct:
    """List a SAFE folder's or zip's granule images and read its metadata (no pixel read)."""
    path = Path(path)
    where = str(path)
    if path.is_dir():
        members = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        root_name = path.name

        def gdal_path(rel: str) -> str:
            return str((path / rel).resolve())

        def read(rel: str) -> bytes:
            return (path / rel).read_bytes()

    elif path.is_file() and path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
        except (zipfile.BadZipFile, OSError) as err:
            raise ImageryError(f"{where}: not a readable zip of a SAFE product ({err})") from None
        prefix = _safe_root(names)
        if prefix is None:
            raise ImageryError(f"{where}: the zip holds no SAFE product (no GRANULE folder nor MTD_MSIL2A.xml)")
        members = [n[len(prefix) :] for n in names if n.startswith(prefix)]
        root_name = prefix.rstrip("/").rsplit("/", 1)[-1] if prefix else path.name
        zip_abs = path.resolve().as_posix()

        def gdal_path(rel: str) -> str:
            return f"/vsizip/{zip_abs}/{prefix}{rel}"

        def read(rel: str) -> bytes:
            try:
                with zipfile.ZipFile(path) as zf:
                    return zf.read(prefix + rel)
            except (zipfile.BadZipFile, OSError, KeyError) as err:
                raise ImageryError(f"{where}: cannot read {rel} from the zip ({err})") from None

    elif path.exists():
        raise ImageryError(f"{where}: not a SAFE product (expected a .SAFE folder or a .zip of one)")
    else:
        raise FileNotFoundError(f"SAFE product not found: {where}")

    name = _strip_name(root_name)
    m = _NAME.match(name)
    if (m and m.group("level") == "L1C") or any(n.upper() == "MTD_MSIL1C.XML" for n in members):
        raise ImageryError(
            f"{where}: {name} is a Level-1C product; karstflow composites Level-2A surface reflectance (MSIL2A)"
        )
    mtd_name = next((n for n in members if n.upper() == "MTD_MSIL2A.XML"), None)
    if not m and mtd_name is None:
        raise ImageryError(
            f"{where}: not a Sentinel-2 L2A SAFE product: its name {name!r} is not of the form "
            "S2A_MSIL2A_<start>_Nxxyy_Rxxx_Txxxxx_<time> and it has no MTD_MSIL2A.xml"
        )
    images: dict[str, dict[str, dict[int, str]]] = {}
    for rel in members:
        im = _IMAGE.match(rel)
        if im is None:
            continue
        band = band_name(im.group("band"))
        images.setdefault(im.group("granule"), {}).setdefault(band, {})[int(im.group("res"))] = gdal_path(rel)
    if not images:
        raise ImageryError(
            f"{where}: not a SAFE product with L2A images: no GRANULE/*/IMG_DATA/R10m|R20m|R60m/*_<band>_<res>m.jp2"
        )

    mtd = _parse_mtd(read(mtd_name), f"{where} ({mtd_name})") if mtd_name else {}
    meta: dict[str, Any] = {"name": name, "mtd": mtd}
    if m:
        meta.update(
            start=m.group("start"),
            baseline_name=f"{m.group('baseline')[:2]}.{m.group('baseline')[2:]}",
            tile=m.group("tile"),
            orbit=m.group("orbit"),
            mission=m.group("mission"),
        )
    return SafeProduct(path=path, name=name, images=images, metadata=meta)


def _product_date(p: SafeProduct) -> dt.date:
    start = p.metadata.get("start")
    if start:
        return dt.datetime.strptime(start, "%Y%m%dT%H%M%S").date()
    text = str(p.metadata["mtd"].get("start", ""))
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise ImageryError(
            f"{p.path}: no acquisition date: the name has none and MTD_MSIL2A.xml PRODUCT_START_TIME is {text!r}"
        ) from None


def _product_meta(p: SafeProduct) -> dict[str, Any]:
    """Scene metadata with the keys of the date table's columns."""
    mtd = p.metadata["mtd"]
    from_name, from_mtd = p.metadata.get("baseline_name"), mtd.get("baseline")
    baseline = None
    if from_mtd:
        try:
            major, minor = parse_baseline(from_mtd)
        except HarmonisationError as err:
            raise HarmonisationError(f"{p.path}: MTD_MSIL2A.xml PROCESSING_BASELINE: {err}") from None
        baseline = f"{major:02d}.{minor:02d}"
        if from_name and from_name != baseline:
            log.warning(
                "%s: the name says baseline %s, MTD_MSIL2A.xml %s; using the latter", p.path, from_name, baseline
            )
    elif from_name:
        baseline = from_name
    meta: dict[str, Any] = {}
    if baseline:
        meta["processing_baseline"] = baseline
    if "offset" in mtd:
        meta["boa_add_offset"] = mtd["offset"]
    if "cloud" in mtd:
        meta["cloud_cover_pct"] = mtd["cloud"]
    if p.metadata.get("tile"):
        meta["tile"] = p.metadata["tile"]
    meta["source_items"] = p.name
    if "processing_baseline" not in meta and "boa_add_offset" not in meta:
        raise HarmonisationError(
            f"{p.path}: cannot tell the processing baseline: the name has no Nxxyy field and MTD_MSIL2A.xml "
            "neither PROCESSING_BASELINE nor BOA_ADD_OFFSET"
        )
    return meta


# --------------------------------------------------------------------------------------
# products -> scenes
# --------------------------------------------------------------------------------------


def read_safe_products(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    bands: Sequence[str] | None = S2_BANDS,
) -> list[Scene]:
    """Scenes (one per date, encoding ``s2-l2a-dn``) of Sentinel-2 L2A SAFE products.

    ``paths``: a SAFE folder or zip, a glob, or a list of them (see :func:`expand_paths`).
    ``bands``: the reflectance bands to carry (``B2`` or ``B02`` style); the SCL layer is
    always carried for cloud masking. ``None`` carries every band the products hold.

    Raises (naming the product path) when a path is not a SAFE product, a band or SCL
    is missing, a zip is unreadable, or the metadata does not decide harmonisation.
    """
    products = [open_product(p) for p in expand_paths(paths)]
    by_name: dict[str, SafeProduct] = {}
    for p in products:
        if p.name in by_name:
            log.warning(
                "SAFE product %s given twice (%s and %s); reading %s",
                p.name,
                by_name[p.name].path,
                p.path,
                by_name[p.name].path,
            )
            continue
        by_name[p.name] = p
    wanted = None if bands is None else list(dict.fromkeys(band_name(b) for b in bands))
    by_date: dict[dt.date, list[tuple[SafeProduct, dict[str, Any], dict[str, list[str]]]]] = {}
    for p in by_name.values():
        names = (
            wanted
            if wanted is not None
            else [b for b in NATIVE_RESOLUTION if b != "SCL" and all(b in g for g in p.images.values())]
        )
        layers = {b: p.layer_paths(b) for b in [*names, *(["SCL"] if "SCL" not in names else [])]}
        by_date.setdefault(_product_date(p), []).append((p, _product_meta(p), layers))
    scenes = []
    for day in sorted(by_date):
        group = sorted(by_date[day], key=lambda g: g[0].name)
        decisive = {(g[1].get("boa_add_offset"), g[1].get("processing_baseline")) for g in group}
        if len(decisive) > 1:
            raise ImageryError(
                f"the SAFE products of {day} disagree on processing baseline / BOA offset "
                f"({', '.join(str(g[0].path) + ': ' + str(g[1].get('processing_baseline')) for g in group)}); "
                "list products of one baseline per date"
            )
        merged: dict[str, list[Layer]] = {}
        for _, _, layers in group:
            for b, files in layers.items():
                merged.setdefault(b, []).extend(Layer(f, 1) for f in files)
        if wanted is None:  # keep only bands every product of the date has
            merged = {b: v for b, v in merged.items() if all(b in g[2] for g in group)}
        meta = dict(group[0][1])
        if len(group) > 1:
            meta["tile"] = ";".join(str(g[1].get("tile", "")) for g in group)
            meta["source_items"] = ";".join(g[0].name for g in group)
            ccs = [g[1]["cloud_cover_pct"] for g in group if "cloud_cover_pct" in g[1]]
            if ccs:
                meta["cloud_cover_pct"] = float(sum(ccs) / len(ccs))
        sid = "+".join(g[0].name for g in group)
        scenes.append(
            Scene(id=sid, date=day, layers={k: tuple(v) for k, v in merged.items()}, meta=meta, encoding="s2-l2a-dn")
        )
    return scenes
