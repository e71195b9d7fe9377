"""Entry script of rule landcover_accuracy: accuracy figures of the map; fails below kappa_min."""

import logging

import numpy as np
import pandas as pd

from karstflow.classify import (
    SampleError,
    assess_landcover,
    confusion_table,
    map_to_pixel,
    mapped_area_ha,
)
from karstflow.io import read_raster, read_vector, write_csv, write_json
from karstflow.runtime import run_script
from karstflow.sampling import labelled_codes

log = logging.getLogger("karstflow.scripts.landcover_accuracy")


def main(input, output, params, wildcards, threads=1) -> None:
    legend = {int(k): v for k, v in params.classes.items()}
    landcover = read_raster(input.landcover, masked=False)
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
        points = labelled[codes.notna().to_numpy()].to_crs(landcover.rio.crs)
        reference = codes.dropna().astype(int).to_numpy()
        rows, cols = map_to_pixel(landcover.rio.transform(), points.geometry.x.to_numpy(), points.geometry.y.to_numpy())
        rows, cols = np.floor(rows).astype(int), np.floor(cols).astype(int)
        inside = (rows >= 0) & (rows < landcover.sizes["y"]) & (cols >= 0) & (cols < landcover.sizes["x"])
        if not inside.all():
            ids = points["sample_id"].to_numpy()[~inside] if "sample_id" in points else np.flatnonzero(~inside) + 1
            message = f"{source}: {int((~inside).sum())} validation point(s) lie outside the map: ids {list(ids[:20])}"
            log.error("%s", message)
            raise SampleError(message)
        mapped = landcover.values[rows, cols].astype(int)
        design = "labelled validation file"
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
        design = "stratified seeded split of the reference samples"

    result, report = assess_landcover(mapped, reference, legend, mapped_area=area, alpha=params.alpha)
    report.update(
        validation_source=str(source),
        validation_design=design,
        unlabelled_points_skipped=unlabelled,
        kappa_min=params.kappa_min,
        mapped_area_ha={legend[c]: float(area[c]) for c in legend},
    )
    table = confusion_table(result, legend)
    log.info("confusion matrix (map classes as rows):\n%s", table.to_string())
    log.info(
        "overall accuracy %.4f, Kappa %.4f (95%% CI %.4f-%.4f), quantity disagreement %.4f, "
        "allocation disagreement %.4f",
        result.overall_accuracy,
        result.kappa,
        *result.kappa_ci,
        result.quantity_disagreement,
        result.allocation_disagreement,
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
        "quantity_disagreement": result.quantity_disagreement,
        "allocation_disagreement": result.allocation_disagreement,
        "area_adjusted_overall_accuracy": result.area_adjusted_overall_accuracy,
        "classes_missing_from_validation": report["classes_missing_from_validation"],
        "mapped_area_ha": report["mapped_area_ha"],
    }
    write_json(headline, output.summary)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
