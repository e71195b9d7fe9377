"""Entry script of rule landcover_sampling_design: stratified random validation points to label.

Every output records the design (map-stratified: strata = the map classes of this map):
a ``design`` column in sampling_design.csv and validation_sample.gpkg (with each point's
stratum ``map_code`` and ``stratum_pixels``), and ``design: map-stratified`` in every KML
placemark's description, so a labelled copy given back as ``inputs.validation`` gets area
estimates (landcover_accuracy) without further configuration.
"""

import logging

import numpy as np
import pandas as pd

from karstflow.io import atomic_path, read_raster, write_csv, write_vector
from karstflow.runtime import run_script
from karstflow.sampling import SAMPLE_DESIGN, kml_description, sampling_design, stratified_sample

log = logging.getLogger("karstflow.scripts.landcover_sampling_design")


def main(input, output, params, wildcards, threads=1) -> None:
    legend = {int(k): v for k, v in params.classes.items()}
    s = params.sampling
    landcover = read_raster(input.landcover, masked=False)
    values = np.asarray(landcover.values)
    counts = pd.Series(np.bincount(values[values != 255].ravel().astype(np.int64), minlength=max(legend) + 1))
    counts = counts[[c for c in legend if c < len(counts)]]
    design = sampling_design(
        counts,
        legend,
        target_se=s["target_overall_se"],
        users_accuracy=s["users_accuracy"],
        min_per_class=s["min_per_class"],
    )
    sample = stratified_sample(landcover, design, legend, seed=s["seed"])
    log.info(
        "design %s; Olofsson et al. (2014) eq. 13: n = %d for S(O) = %s and U = %s; allocated %d "
        "(floor %d per class):\n%s",
        SAMPLE_DESIGN,
        int(design["n_eq13"].iloc[0]),
        s["target_overall_se"],
        s["users_accuracy"],
        int(design["n_samples"].sum()),
        s["min_per_class"],
        design.to_string(index=False),
    )

    write_csv(design, output.design, index=False)
    write_vector(sample, output.gpkg)
    # KML for Google Earth: WGS84, the sample id as the placemark name, the legend and the
    # "reference_code:" line to fill in as its description (what Google Earth lets one edit).
    kml = sample.to_crs("EPSG:4326")
    kml.insert(0, "Name", kml["sample_id"].astype(str))
    kml.insert(1, "Description", kml_description(legend))
    kml["reference_code"] = kml["reference_code"].astype("string")
    with atomic_path(output.kml, suffix=".kml") as tmp:
        kml.to_file(tmp, driver="KML", layer="validation_sample")


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
