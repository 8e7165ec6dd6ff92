"""Built-in pruning methods; importing this package registers each one."""

from . import grasp, magnitude, mwanda, ria, snip, sparsegpt, wanda  # noqa: F401
