"""The model card of a pruned folder: rendered from ``model_cards/`` with per-language results and Hub metadata.

``render`` writes ``README.md`` from ``hfprune.json``; ``results`` reads ``hfprune eval`` output into tables and
``model-index`` entries; ``base_model`` carries the base model's licence (and gating) over.
"""

from .render import default_template, read_metadata, render_card, write_card

__all__ = ["default_template", "read_metadata", "render_card", "write_card"]
