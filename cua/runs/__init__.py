"""The run folder: written crash-safe by the loop, read back by replay and reports."""
