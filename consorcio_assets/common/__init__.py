"""Names and small helpers shared by every stage: asset keys, units, the lake, the private home."""
