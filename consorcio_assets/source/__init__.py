"""The source system: SQL Server in production, a DuckDB stand-in locally."""
