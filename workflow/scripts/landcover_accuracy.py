"""Entry script of rule landcover_accuracy: accuracy figures of the map; fails below kappa_min.

The area estimates, area-adjusted accuracies and area-weighted disagreement are computed
only for a probability sample (karstflow.accuracy.DESIGNS): a labelled validation file
whose design (column ``design``, KML description or landcover.validation.design) is
map-stratified or simple-random. A map-stratified file whose strata are still the classes
of this map, and a simple-random one (post-stratified by this map), get the Olofsson et al.
(2014) estimator; a map-stratified file drawn from another map (the usual case: naming a
validation file retrains the classifier) gets the Stehman (2014) estimator, each point's
stratum being its ``map_code`` and each stratum's size its ``stratum_pixels``.
``area_estimator`` in accuracy.json says which. The held-out split of the reference
samples is ``reference-split``: its Kappa and accuracies are reported, its area figures
are "not evaluated" with the reason.
"""

import logging

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (the .rio accessor)

from karstflow.accuracy import design_reason
from karstflow.classify import (
    LANDCOVER_NODATA,
    SampleError,
    assess_landcover,
    confusion_table,
    map_to_pixel,
    mapped_area_ha,
)
from karstflow.io import read_raster, read_vector, write_csv, write_json
from karstflow.runtime import run_script
from karstflow.sampling import labelled_codes, strata_mismatch, stratum_sizes, validation_design

log = logging.getLogger("karstflow.scripts.landcover_accuracy")


def main(input, output, params, wildcards, threads=1) -> None:
    legend = {int(k): v for k, v in params.classes.items()}
    landcover = read_raster(input.landcover, masked=False)
    stratum: np.ndarray | None = None
    stratum_ha: dict[int, float] = {}
    differ: str | None = None
    pixel_area_m2 = abs(landcover.rio.resolution()[0] * landcover.rio.resolution()[1])
    area = mapped_area_ha(landcover, list(legend), pixel_area_m2)

    if "validation" in input:
        labelled = read_vector(input.validation)
        source = (
            f"{params.validation_file} (harmonised as {input.validation})"
            if params.get("validation_file")
            else input.validation
        )
        try:
            codes = labelled_codes(labelled, legend, label_column=params.label_column, source=source)
        except SampleError as err:
            log.error("%s", err)
            raise
        unlabelled = int(codes.isna().sum())
        if unlabelled:
            log.warning(
                "%s: %d of %d points are not labelled yet and are skipped",
                source,
                unlabelled,
                len(codes),
            )
        try:
            design, origin = validation_design(
                labelled, params.get("design"), source=source, rows=codes.notna().to_numpy()
            )
        except SampleError as err:
            log.error("%s", err)
            raise
        points = labelled[codes.notna().to_numpy()].to_crs(landcover.rio.crs)
        reference = codes.dropna().astype(int).to_numpy()
        rows, cols = map_to_pixel(landcover.rio.transform(), points.geometry.x.to_numpy(), points.geometry.y.to_numpy())
        rows, cols = np.floor(rows).astype(int), np.floor(cols).astype(int)
        inside = (rows >= 0) & (rows < landcover.sizes["y"]) & (cols >= 0) & (cols < landcover.sizes["x"])
        if not inside.all():
            ids = points["sample_id"].to_numpy()[~inside] if "sample_id" in points else np.flatnonzero(~inside) + 1
            message = (
                f"{source}: {int((~inside).sum())} validation point(s) lie outside the map: ids {ids[:20].tolist()}"
            )
            log.error("%s", message)
            raise SampleError(message)
        mapped = landcover.values[rows, cols].astype(int)
        withheld = None
        if design == "unknown":
            withheld = (
                f"{design_reason(design)}; declare it in a column design of {params.get('validation_file') or source} "
                "or with config key landcover.validation.design"
            )
        if design == "map-stratified":
            values = np.asarray(landcover.values)
            counts = np.bincount(values[values != LANDCOVER_NODATA].ravel().astype(np.int64), minlength=256)
            differ = strata_mismatch(points, mapped, {c: int(counts[c]) for c in legend})
            if differ is not None:
                try:
                    # every row, labelled or not: a stratum without labels yet is still population
                    pixels = stratum_sizes(labelled, source=source)
                except SampleError as err:
                    log.error("%s", err)
                    raise
                if pixels is None:
                    withheld = (
                        f"{differ}; but {source} has no stratum_pixels column, so the stratum sizes Stehman's "
                        "estimator needs are unknown: keep the columns map_code and stratum_pixels of "
                        "validation_sample.gpkg"
                    )
                else:
                    stratum = pd.to_numeric(points["map_code"]).to_numpy().astype(np.int64)
                    stratum_ha = {h: n * pixel_area_m2 / 1e4 for h, n in pixels.items()}
                    log.info("%s: %s (strata: %s pixels)", source, differ, pixels)
    else:
        source = input.samples
        samples = pd.read_csv(input.samples)
        held_out = samples[samples["is_validation"]]
        if held_out.empty:
            raise SampleError(
                f"{source}: no validation sample was held out (every class has a single reference "
                "group); "
                "add reference samples or name a labelled validation file (inputs.validation)"
            )
        mapped, reference = held_out["map_code"].to_numpy(), held_out["class_code"].to_numpy()
        unlabelled = 0
        design, origin = "reference-split", "held-out split of the reference samples (landcover.validation.fraction)"
        withheld = None

    result, report = assess_landcover(
        mapped,
        reference,
        legend,
        mapped_area=area,
        alpha=params.alpha,
        design=design,
        not_evaluated=withheld,
        stratum=stratum if stratum_ha else None,
        stratum_size=stratum_ha or None,
    )
    if stratum_ha:
        report["strata_differ_from_map"] = differ
    if not result.has_area:
        log.warning(
            "%s: area estimates, area-adjusted accuracies and area-weighted disagreement not evaluated: %s",
            source,
            result.area_not_evaluated_reason,
        )
    report.update(
        validation_source=str(source),
        validation_design=design,
        validation_design_origin=origin,
        unlabelled_points_skipped=unlabelled,
        kappa_min=params.kappa_min,
        mapped_area_ha={legend[c]: float(area[c]) for c in legend},
    )
    table = confusion_table(result, legend)
    log.info("confusion matrix (map classes as rows):\n%s", table.to_string())
    log.info(
        "design %s (area estimator %s): overall accuracy %.4f, Kappa %.4f (95%% CI %.4f-%.4f), "
        "quantity disagreement %s, allocation disagreement %s (%s)",
        design,
        report.get("area_estimator"),
        result.overall_accuracy,
        result.kappa,
        *result.kappa_ci,
        report["quantity_disagreement"],
        report["allocation_disagreement"],
        result.disagreement_basis,
    )
    if report["classes_missing_from_validation"]:
        log.warning(
            "classes without validation samples (not assessed): %s",
            ", ".join(report["classes_missing_from_validation"]),
        )
    if not result.kappa >= params.kappa_min:
        message = (
            f"landcover_accuracy: Cohen's Kappa of the land-cover map of {wildcards.region} is "
            f"{result.kappa:.4f} (95% CI {result.kappa_ci[0]:.4f}-{result.kappa_ci[1]:.4f}, "
            f"{report['validation_samples']} "
            f"validation samples from {source}), below the minimum {params.kappa_min} (config key "
            "landcover.validation.kappa_min); see the confusion matrix in this log"
        )
        log.error("%s", message)
        raise SystemExit(message)

    write_csv(table, output.matrix)
    write_json(report, output.accuracy)
    headline = {
        "validation_samples": report["validation_samples"],
        "overall_accuracy": result.overall_accuracy,
        "kappa": result.kappa,
        "kappa_ci_low": result.kappa_ci[0],
        "kappa_ci_high": result.kappa_ci[1],
        "design": design,
        "quantity_disagreement": report["quantity_disagreement"],
        "allocation_disagreement": report["allocation_disagreement"],
        "area_adjusted_overall_accuracy": report.get("area_adjusted_overall_accuracy"),
        "area_estimator": report.get("area_estimator"),
        "classes_missing_from_validation": report["classes_missing_from_validation"],
        "mapped_area_ha": report["mapped_area_ha"],
    }
    write_json(headline, output.summary)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
