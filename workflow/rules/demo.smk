# Demo regions: generated deterministically from a seed and a size, no network needed.
# A region with a `demo:` block is an ordinary local region whose input files these rules
# write; its `inputs` point at them (config/config.yaml).

from karstflow.demo import county_files, karst_files

DEMO_FILES = {"county": county_files, "karst": karst_files}


def demo_regions(kind):
    return [
        rid
        for rid, region in config["regions"].items()
        if (region.get("demo") or {}).get("kind") == kind
    ]


def demo_size_px(region):
    return config["demo"]["sizes"][config["demo"]["size"]][region["demo"]["kind"]]


def demo_file(name):
    """Path of a generated demo input of the current region."""
    return f"resources/demo/{{region}}/{name}"


def demo_outputs(kind):
    """Files declared by the demo rule of ``kind``; they depend on the regions' years, which
    Snakemake needs to know before it sees a region, so regions of one kind share them.
    """
    spans = {
        (
            config["regions"][rid]["years"]["first"],
            config["regions"][rid]["years"]["last"],
        )
        for rid in demo_regions(kind)
    }
    if len(spans) > 1:
        raise WorkflowError(
            f"config key regions: demo regions of kind {kind!r} must share their years; "
            f"found {sorted(spans)}"
        )
    first, last = spans.pop()
    return [demo_file(name) for name in DEMO_FILES[kind](range(first, last + 1))]


# A rule exists only for kinds some region uses (its outputs depend on their years).
if demo_regions("county"):

    rule demo_county:
        output:
            demo_outputs("county"),
        log:
            log_path("demo_county"),
        benchmark:
            benchmark_path("demo_county")
        wildcard_constraints:
            region=one_of(demo_regions("county")),
        conda:
            "../envs/karstflow.yaml"
        threads: 1
        resources:
            mem_mb=4000,
        params:
            kind="county",
            demo=lambda w: region_config(w)["demo"],
            size_px=lambda w: demo_size_px(region_config(w)),
            crs=lambda w: region_config(w)["crs"],
            resolution=lambda w: region_config(w)["resolution_m"],
            years=lambda w: region_config(w)["years"],
            periods=lambda w: region_config(w).get("periods", {}),
            out_dir=demo_file(""),
        message:
            "Generating the county demo for {wildcards.region}"
        script:
            "../scripts/make_demo.py"


if demo_regions("karst"):

    rule demo_karst:
        output:
            demo_outputs("karst"),
        log:
            log_path("demo_karst"),
        benchmark:
            benchmark_path("demo_karst")
        wildcard_constraints:
            region=one_of(demo_regions("karst")),
        conda:
            "../envs/karstflow.yaml"
        threads: 1
        resources:
            mem_mb=4000,
        params:
            kind="karst",
            demo=lambda w: region_config(w)["demo"],
            size_px=lambda w: demo_size_px(region_config(w)),
            crs=lambda w: region_config(w)["crs"],
            resolution=lambda w: region_config(w)["resolution_m"],
            years=lambda w: region_config(w)["years"],
            periods=lambda w: region_config(w).get("periods", {}),
            out_dir=demo_file(""),
        message:
            "Generating the karst demo for {wildcards.region}"
        script:
            "../scripts/make_demo.py"
