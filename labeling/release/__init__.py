"""Dataset release: fold splits, the per-clip rows every export reads, the DFEW export."""
