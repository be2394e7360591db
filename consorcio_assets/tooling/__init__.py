"""Operator tooling: the `consorcio` CLI, run launching and progress, verify, docs, the benchmark."""
