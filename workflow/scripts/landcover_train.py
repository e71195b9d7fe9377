"""Entry script of rule landcover_train: the reference samples of the whole region, their split
into training and validation, and the seeded random forest trained on them (a region step:
the samples come from anywhere in the region, so the forest is fitted once and every tile of
rule landcover_classify predicts with it).

Writes the model (joblib: the forest, its feature names and the legend) and the sample table
(reference_samples.csv: one row per sample pixel, its class, group, split and place); the
map codes are added to it by rule landcover_classify_summary once the map exists.
"""

import logging

import joblib
import numpy as np

from karstflow.classify import SampleError, reference_samples, split_samples, train_random_forest
from karstflow.features import classifier_features
from karstflow.grid import RegionGrid
from karstflow.io import atomic_path, read_json, read_vector, write_csv
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.landcover_train")

#: Columns of the sample table, as samples.csv lists them (samples.csv adds map_code).
SAMPLE_COLUMNS = ["sample_id", "group", "class_code", "is_validation", "design", "row", "col", "x", "y"]


def main(input, output, params, wildcards, threads=1) -> None:
    legend = {int(k): v for k, v in params.classes.items()}
    grid = RegionGrid.from_dict(read_json(input.grid))
    features = classifier_features(input, params, grid)
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
    # the held-out samples are a split stratified by reference class, not a probability
    # sample of the map (karstflow.accuracy.DESIGNS): recorded with every one of them
    samples["design"] = np.where(samples["is_validation"], "reference-split", "")
    with atomic_path(output.model, suffix=".joblib") as tmp:
        joblib.dump({"model": model, "features": names, "classes": legend}, tmp)
    write_csv(samples[SAMPLE_COLUMNS], output.samples, index=False)
    log.info(
        "random forest of %d trees on %d training samples (%d held out)",
        c["n_estimators"],
        len(train),
        int(samples["is_validation"].sum()),
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
