"""karstflow: land-use and karst ecosystem analysis from satellite tiles.

The library is pure: functions take and return xarray / geopandas / numpy objects.
File I/O lives in :mod:`karstflow.io` and in the workflow's entry scripts.
"""

__version__ = "0.1.0"
