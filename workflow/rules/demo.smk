# Demo regions: generated deterministically from a seed and a size, no network needed.
# A region with a `demo:` block is an ordinary local region whose input files these rules
# write; its `inputs` point at them (config/config.yaml).


include: "functions/demo.smk"


# A rule exists only for kinds some region uses (its outputs depend on their years).
if generated_regions("county"):

    rule demo_county:
        output:
            demo_outputs("county"),
        log:
            log_path("demo_county"),
        benchmark:
            benchmark_path("demo_county")
        wildcard_constraints:
            region=one_of(generated_regions("county")),
        conda:
            "../envs/karstflow.yaml"
        threads: 1
        resources:
            mem_mb=mem_mb("demo_county"),
            runtime=runtime("demo_county"),
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


if generated_regions("karst"):

    rule demo_karst:
        output:
            demo_outputs("karst"),
        log:
            log_path("demo_karst"),
        benchmark:
            benchmark_path("demo_karst")
        wildcard_constraints:
            region=one_of(generated_regions("karst")),
        conda:
            "../envs/karstflow.yaml"
        threads: 1
        resources:
            mem_mb=mem_mb("demo_karst"),
            runtime=runtime("demo_karst"),
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
