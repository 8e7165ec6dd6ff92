"""Built-in pruning methods; importing this package registers each one."""

from . import magnitude, sparsegpt, wanda  # noqa: F401
