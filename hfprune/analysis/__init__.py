"""What pruning did to each language: calibration-language sweeps, mask overlap, language-specific neurons."""
