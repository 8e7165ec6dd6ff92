"""Whole jobs built from the rooms below: ``hfprune run`` (pull -> prune -> eval -> card -> push, resumable) and
``hfprune demo`` (the same, offline, on the project's tiny model)."""
