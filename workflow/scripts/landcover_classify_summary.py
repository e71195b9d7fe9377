"""Entry script of rule landcover_classify_summary: the sample table (samples.csv: each
reference sample with the class the map gives its pixel) and the classification figures
(classification.json: features and their importance, samples per class, unclassified
pixels), from the region's map (after the tiles, if any, are put together), the sample table
and the model of rule landcover_train.

The map is read block by block: memory is one block, whatever the region size.
"""

import logging

import joblib
import numpy as np
import pandas as pd
import rasterio

from karstflow.classify import LANDCOVER_NODATA
from karstflow.io import write_csv, write_json
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.landcover_classify_summary")

COLUMNS = ["sample_id", "group", "class_code", "map_code", "is_validation", "design", "row", "col", "x", "y"]


def map_codes_and_unclassified(path: str, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, int]:
    """The map's codes at pixels (``rows``, ``cols``) and its count of unclassified pixels."""
    codes = np.full(len(rows), LANDCOVER_NODATA, dtype=np.int64)
    unclassified = 0
    with rasterio.open(path) as ds:
        for _, w in ds.block_windows(1):
            block = ds.read(1, window=w)
            unclassified += int((block == LANDCOVER_NODATA).sum())
            r, c = rows - w.row_off, cols - w.col_off
            inside = (r >= 0) & (r < w.height) & (c >= 0) & (c < w.width)
            codes[inside] = block[r[inside], c[inside]]
    return codes, unclassified


def main(input, output, params, wildcards, threads=1) -> None:
    legend = {int(k): v for k, v in params.classes.items()}
    # as text, so the table's values reach samples.csv as landcover_train wrote them
    samples = pd.read_csv(input.samples, dtype=str, keep_default_na=False)
    samples["class_code"] = samples["class_code"].astype(np.int64)
    samples["is_validation"] = samples["is_validation"].map({"True": True, "False": False}).astype(bool)
    trained = joblib.load(input.model)
    model, names = trained["model"], list(trained["features"])
    codes, unclassified = map_codes_and_unclassified(
        input.landcover, samples["row"].astype(np.int64).to_numpy(), samples["col"].astype(np.int64).to_numpy()
    )
    samples["map_code"] = codes
    write_csv(samples[COLUMNS], output.samples, index=False)

    counts = samples.groupby(["class_code", "is_validation"]).size().unstack(fill_value=0)
    importances = pd.Series(model.feature_importances_, index=names).sort_values(ascending=False)
    summary = {
        "features": names,
        "feature_importance": {k: float(v) for k, v in importances.items()},
        "training_samples": int((~samples["is_validation"]).sum()),
        "validation_samples": int(samples["is_validation"].sum()),
        "training_samples_per_class": {legend[k]: int(counts.loc[k].get(False, 0)) for k in counts.index},
        "validation_samples_per_class": {legend[k]: int(counts.loc[k].get(True, 0)) for k in counts.index},
        "unclassified_pixels": unclassified,
        "n_estimators": int(model.n_estimators),
    }
    write_json(summary, output.summary)
    log.info("%s: %d samples, %d unclassified pixels", wildcards.region, len(samples), unclassified)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
