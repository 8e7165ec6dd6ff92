"""Publishing pruned models: ``push`` to the Hub (or a local Hub-layout folder), verified; the CLI commands."""
