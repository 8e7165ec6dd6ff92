"""Pruning: methods (one file each under ``methods/``), the blockwise engine, statistics, masks and profiles.

Read it in the order data flows: ``stats`` (per-language activation statistics of each layer's input) ->
``methods`` (a layer's mask from its statistics) -> ``masks`` / ``structure`` (unstructured or N:M) ->
``engine`` (block by block over the calibration samples) -> ``profiles`` / ``allocation`` (layerwise sparsity).
Nothing here knows about the Hub or files.
"""
