# Helpers of the rules in public_landcover.smk.


def public_landcover_years(region_id):
    chosen = config["landcover"]["public"]["years"] or config["services"]["years"]
    if chosen:
        return sorted(chosen)
    years = config["regions"][region_id]["years"]
    return sorted({years["first"], years["last"]})
