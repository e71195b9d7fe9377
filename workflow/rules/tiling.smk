# Tiling (docs/tiling.md): a tiled region runs each per-pixel rule once per tile, as
# `<rule>_tile` (the same script, on the tile's window with its halo: karstflow.tiling),
# and `<rule>_mosaic` puts the tiles together as the file the rule writes untiled. A
# stage declares both beside its rule; the helpers are in functions/tiling.smk.


include: "functions/tiling.smk"


wildcard_constraints:
    tile=TILE_ID_PATTERN,


# The template of every `<rule>_mosaic` (`use rule tile_mosaic as <rule>_mosaic with:`
# input, output, wildcard_constraints); it never matches a region itself.
rule tile_mosaic:
    input:
        grid=results("grid.json"),
    output:
        mosaic=results("tiles/mosaic-template"),
    log:
        log_path("tile_mosaic"),
    benchmark:
        benchmark_path("tile_mosaic")
    wildcard_constraints:
        region=one_of([]),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("tile_mosaic"),
        runtime=runtime("tile_mosaic"),
    params:
        tile_px=lambda w: TILE_PX[w.region],
    message:
        "Putting the tiles of {rule} together for {wildcards.region}"
    script:
        "../scripts/tile_mosaic.py"
