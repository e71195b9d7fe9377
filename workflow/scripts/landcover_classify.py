"""Entry script of rule landcover_classify: features, reference samples, random forest, map."""

import logging

import numpy as np
import pandas as pd

from karstflow.classify import (
    SampleError,
    predict_map,
    reference_samples,
    split_samples,
    train_random_forest,
)
from karstflow.features import build_features, named_bands
from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, read_vector, write_csv, write_json, write_raster
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.landcover_classify")


def main(input, output, params, wildcards, threads=1) -> None:
    legend = {int(k): v for k, v in params.classes.items()}
    grid = RegionGrid.from_dict(read_json(input.grid))
    chunks = {"y": params.chunk_px, "x": -1}

    composites = {}
    for period, path in zip(params.periods, input.composites, strict=True):
        composite = read_raster(path, chunks=chunks)
        if not grid.matches(composite):
            raise ValueError(f"{path}: the composite is not on the region grid {grid.to_dict()}")
        composites[period] = named_bands(composite, path)
    terrain = {}
    if params.features["terrain"]:
        terrain = {
            "elevation": read_raster(input.dem, chunks=chunks),
            "slope": read_raster(input.slope, chunks=chunks),
        }
    features = build_features(composites, indices=params.features["indices"], **terrain)
    names = [str(f) for f in features["feature"].values]
    log.info("%d features: %s", len(names), ", ".join(names))

    reference = read_vector(input.reference)
    try:
        samples = reference_samples(
            features,
            reference,
            params.reference["class_column"],
            legend,
            source=input.reference,
            id_column=params.reference["id_column"],
        )
    except SampleError as err:
        log.error("%s", err)
        raise
    no_features = samples[names].isna().all(axis=1)
    if no_features.any():
        log.warning(
            "%s: %d sample(s) lie on pixels without any clear observation and are not used (ids %s)",
            input.reference,
            int(no_features.sum()),
            ", ".join(map(str, samples.loc[no_features, "sample_id"].head(20))),
        )
        samples = samples[~no_features].reset_index(drop=True)

    if params.validation_file:
        # a labelled validation file is assessed instead: every reference sample trains
        samples["is_validation"] = False
        log.info("validation from %s: all %d reference samples train", params.validation_file, len(samples))
    else:
        samples["is_validation"] = split_samples(
            samples["group"], samples["class_code"], params.split["fraction"], params.split["seed"]
        )
    train = samples[~samples["is_validation"]]
    c = params.classifier
    model = train_random_forest(
        train[names].to_numpy(),
        train["class_code"].to_numpy(),
        n_estimators=c["n_estimators"],
        seed=c["seed"],
        n_jobs=threads,
        min_samples_leaf=c["min_samples_leaf"],
        max_features=c["max_features"],
        class_weight=None if c["class_weight"] == "none" else c["class_weight"],
        max_samples_per_class=c["max_samples_per_class"],
    )
    landcover = predict_map(model, features, chunk_px=params.chunk_px)
    samples["map_code"] = landcover.values[samples["row"].to_numpy(), samples["col"].to_numpy()].astype(np.int64)
    # the held-out samples are a split stratified by reference class, not a probability
    # sample of the map (karstflow.accuracy.DESIGNS): recorded with every one of them
    samples["design"] = np.where(samples["is_validation"], "reference-split", "")

    colours = {int(k): tuple(v) for k, v in params.colours.items()}
    colours = {code: colours.get(code, (128, 128, 128)) for code in legend}
    write_raster(landcover, output.landcover, dtype="uint8", nodata=255, colormap=colours)
    columns = [
        "sample_id",
        "group",
        "class_code",
        "map_code",
        "is_validation",
        "design",
        "row",
        "col",
        "x",
        "y",
    ]
    write_csv(samples[columns], output.samples, index=False)

    counts = samples.groupby(["class_code", "is_validation"]).size().unstack(fill_value=0)
    importances = pd.Series(model.feature_importances_, index=names).sort_values(ascending=False)
    summary = {
        "features": names,
        "feature_importance": {k: float(v) for k, v in importances.items()},
        "training_samples": int((~samples["is_validation"]).sum()),
        "validation_samples": int(samples["is_validation"].sum()),
        "training_samples_per_class": {legend[k]: int(counts.loc[k].get(False, 0)) for k in counts.index},
        "validation_samples_per_class": {legend[k]: int(counts.loc[k].get(True, 0)) for k in counts.index},
        "unclassified_pixels": int((landcover.values == 255).sum()),
        "n_estimators": c["n_estimators"],
    }
    write_json(summary, output.summary)
    log.info(
        "classified %d x %d px; most important features %s",
        grid.width,
        grid.height,
        ", ".join(importances.index[:5]),
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
