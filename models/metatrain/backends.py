"""Where ES unrolls run: a local process pool (the default) or a Ray cluster.

Both give ``pool.map(fn, thetas, seeds)`` in order, so the ES step (which happens in
the driver, from the values in order) is the same whichever ran them: the same seed
gives the same meta-parameters on either backend.  Ray (``pip install
'halo-agent[ray]'``) spreads the unrolls over every CPU of a cluster; the objective
is sent once per ES iteration (``ray.put``) and each worker builds its data from its
own disk cache on first use, as a forked process does.

Ray is imported only here, only when asked for.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, List, Optional

BACKENDS = ("process", "ray")


def _apply(fn: Callable, *args: Any) -> Any:
    return fn(*args)


class RayPool:
    """``map`` over Ray tasks, results in submission order.

    ``address``: a running cluster (``ray://host:10001`` or ``auto``); None starts a
    local instance with ``workers`` CPUs (None: all of them) and stops it on
    :meth:`shutdown`.  Raises ``RuntimeError`` naming the fix when Ray is missing.
    """

    def __init__(self, address: Optional[str] = None, workers: Optional[int] = None):
        try:
            import ray
        except ImportError:
            raise RuntimeError("--backend ray needs Ray: pip install 'halo-agent[ray]'") from None
        self._ray = ray
        self._owned = not ray.is_initialized()
        if self._owned:
            kwargs = {"include_dashboard": False, "log_to_driver": False,
                      "configure_logging": False}
            if address is None:
                kwargs["num_cpus"] = workers
            ray.init(address=address, **kwargs)
        self._task = ray.remote(num_cpus=1)(_apply)

    @property
    def cpus(self) -> int:
        return int(self._ray.cluster_resources().get("CPU", 0))

    def map(self, fn: Callable, *iterables) -> List[Any]:
        ref = self._ray.put(fn)
        return self._ray.get([self._task.remote(ref, *args) for args in zip(*iterables)])

    def shutdown(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()


def make_pool(backend: str, workers: int, address: Optional[str] = None):
    """A pool for ``run_es``: None (run in this process) for one local worker, a
    ``ProcessPoolExecutor``, or a :class:`RayPool`.  ``ValueError`` for an unknown backend
    or an address without Ray."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "ray":
        return RayPool(address, workers)
    if address is not None:
        raise ValueError(f"--address {address!r} needs --backend ray")
    return ProcessPoolExecutor(max_workers=workers) if workers > 1 else None


def close_pool(pool) -> None:
    """Shut down what :func:`make_pool` made (None: nothing)."""
    if pool is not None:
        pool.shutdown()
