"""The DMS full-load stage: settings files, table mappings, the AWS resource and the local engine.

- `settings.py`     the S3 endpoint settings and task settings DMS runs with (two JSON files next to it, read only here)
- `mappings.py`     TableMappings generated from the catalog (and read back by the local engine)
- `preflight.py`    source checks before a load: connectivity, schema drift, LOBs DMS would truncate
- `layout.py`       where a table's files are, their expected schema, reading them back, the load report
- `engine.py`       the local engine writing exactly what DMS writes to S3 (local mode only)
- `resource.py`     `DmsResource`: one full-load interface; `AwsDms` (the replication task) and `LocalDms` (the engine)
"""
