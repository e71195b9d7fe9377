# Demo regions: generated deterministically from a seed and a size, no network needed.

from karstflow.demo import COUNTY_FILES, KARST_FILES


rule demo_county:
    message:
        "Generating the county demo for {wildcards.region}"
    output:
        [demo_file(name) for name in COUNTY_FILES],
    params:
        kind="county",
        demo=lambda w: region_config(w)["demo"],
        size_px=lambda w: demo_size_px(region_config(w)),
        crs=lambda w: region_config(w)["crs"],
        resolution=lambda w: region_config(w)["resolution_m"],
        years=lambda w: region_config(w)["years"],
        periods=lambda w: region_config(w).get("periods", {}),
        out_dir=demo_file(""),
    wildcard_constraints:
        region=one_of(demo_regions("county")),
    log:
        log_path("demo_county"),
    benchmark:
        benchmark_path("demo_county")
    threads: 1
    resources:
        mem_mb=4000,
    script:
        "../scripts/make_demo.py"


rule demo_karst:
    message:
        "Generating the karst demo for {wildcards.region}"
    output:
        [demo_file(name) for name in KARST_FILES],
    params:
        kind="karst",
        demo=lambda w: region_config(w)["demo"],
        size_px=lambda w: demo_size_px(region_config(w)),
        crs=lambda w: region_config(w)["crs"],
        resolution=lambda w: region_config(w)["resolution_m"],
        years=lambda w: region_config(w)["years"],
        periods=lambda w: region_config(w).get("periods", {}),
        out_dir=demo_file(""),
    wildcard_constraints:
        region=one_of(demo_regions("karst")),
    log:
        log_path("demo_karst"),
    benchmark:
        benchmark_path("demo_karst")
    threads: 1
    resources:
        mem_mb=4000,
    script:
        "../scripts/make_demo.py"
