"""The cutover: a rehearsal that proves Aurora can take the application's traffic, and its evidence pack."""
