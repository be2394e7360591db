"""The DMS full-load stage: settings files, table mappings, the file layout, the resource (AWS or the local engine), the raw-zone scan.

- `settings_files.py` the S3 endpoint settings and task settings DMS runs with (two JSON files next to it, read only here)
- `mappings.py`     TableMappings generated from the catalog (and read back by the local engine)
- `preflight.py`    source checks before a load: connectivity, schema drift, LOBs DMS would truncate
- `layout.py`       where a table's files are, their expected schema, reading them back, the load report
- `engine.py`       the local engine writing exactly what DMS writes to S3 (local mode only)
- `resource.py`     `DmsResource`: one full-load interface; `AwsDms` (the replication task) and `LocalDms` (the engine)
- `raw_zone.py`     the raw-zone scan behind `raw_zone_sensor`: which tables got new LOAD files
- `assessment.py`, `versions.py`  DMS's premigration assessment; a source table's data version
"""
