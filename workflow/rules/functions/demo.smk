# Helpers and input functions of the rules in demo.smk.

from karstflow.demo import county_files, karst_files

DEMO_FILES = {"county": county_files, "karst": karst_files}


def generated_regions(kind):
    """Regions whose input files the demo generator of ``kind`` writes (a `demo:` block);
    only the generator rules use this: every other rule treats them as local regions."""
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
        for rid in generated_regions(kind)
    }
    if len(spans) > 1:
        raise WorkflowError(
            f"config key regions: demo regions of kind {kind!r} must share their years; "
            f"found {sorted(spans)}"
        )
    first, last = spans.pop()
    return [demo_file(name) for name in DEMO_FILES[kind](range(first, last + 1))]
