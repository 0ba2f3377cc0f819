"""Hypergradients by reversible learning: exact reverse of SGD with momentum, schedule tuning.

Importing the package registers the ``momentum-schedule`` optimizer (a tuned schedule,
see :mod:`models.hypergrad.schedule`) with :data:`models.registry.LEARNED`.
"""

from models.hypergrad.schedule import NAME, build
from models.registry import LEARNED

LEARNED[NAME] = (build, None)
