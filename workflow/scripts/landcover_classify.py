"""Entry script of rule landcover_classify: the land-cover map predicted by the random forest
of rule landcover_train, pixel by pixel, over the region or (rule landcover_classify_tile) one
tile of it.

Every feature is a value of its own pixel (bands, indices, seasonal NDVI statistics,
elevation, slope: karstflow.features), so a tile's map is the region's over the tile. The
sample table and the classification figures come from rule landcover_classify_summary.
"""

import logging

import joblib

from karstflow.classify import predict_map
from karstflow.features import classifier_features
from karstflow.grid import RegionGrid
from karstflow.io import read_json, write_raster
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.landcover_classify")


def main(input, output, params, wildcards, threads=1) -> None:
    legend = {int(k): v for k, v in params.classes.items()}
    grid = RegionGrid.from_dict(read_json(input.grid))
    features = classifier_features(input, params, grid)
    names = [str(f) for f in features["feature"].values]
    trained = joblib.load(input.model)
    if list(trained["features"]) != names:
        raise ValueError(
            f"{input.model}: the model was trained on the features {trained['features']}, the composites "
            f"and terrain give {names}; rerun rule landcover_train (snakemake --forcerun landcover_train)"
        )
    model = trained["model"]
    model.n_jobs = threads  # the prediction job's threads, not the training job's
    landcover = predict_map(model, features, chunk_px=params.chunk_px)
    colours = {int(k): tuple(v) for k, v in params.colours.items()}
    colours = {code: colours.get(code, (128, 128, 128)) for code in legend}
    write_raster(landcover, output.landcover, dtype="uint8", nodata=255, colormap=colours)
    log.info("classified %d x %d px", grid.width, grid.height)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
