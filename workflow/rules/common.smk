# Helpers shared by the stage rules: region lookup, inputs per source, log/benchmark paths.

import re


REGIONS = list(config["regions"])


def regions_where(predicate):
    return [rid for rid, region in config["regions"].items() if predicate(region)]


def demo_regions(kind):
    return regions_where(
        lambda r: r["source"] == "demo" and r["demo"]["kind"] == kind
    )


def one_of(ids):
    """A wildcard constraint matching exactly these ids (never matches when empty)."""
    return "|".join(re.escape(i) for i in ids) if ids else "(?!x)x"


wildcard_constraints:
    region=one_of(REGIONS),


def region_config(wildcards):
    return config["regions"][wildcards.region]


def demo_size_px(region):
    size = config["demo"]["size"]
    return config["demo"]["sizes"][size][region["demo"]["kind"]]


def demo_file(name):
    """Path of a generated demo input of the current region."""
    return f"resources/demo/{{region}}/{name}"


def dem_source(wildcards):
    """The DEM of a region as its source delivers it, before it is put on the grid."""
    region = region_config(wildcards)
    if region["source"] == "demo":
        return demo_file("dem.tif").format(region=wildcards.region)
    return region["inputs"]["dem"]


def aoi_input(wildcards):
    path = region_config(wildcards).get("aoi", {}).get("path")
    return [path] if path else []


def log_path(rule_name):
    return f"logs/{{region}}/{rule_name}.log"


def benchmark_path(rule_name):
    return f"logs/benchmarks/{{region}}/{rule_name}.tsv"
