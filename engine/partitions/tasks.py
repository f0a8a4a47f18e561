"""Where a planning step's parts run: in this process, or as Ray tasks whose results stay in the object store.

``Tasks.submit(fn, *args, returns=k)`` gives ``k`` handles: the values themselves in process, Ray object refs
on Ray (an argument that is a ref reaches ``fn`` as its value, so one task's output feeds the next without
passing through the driver). ``Tasks.get`` turns handles into values where the driver needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

TASK_RETRIES = 3  # a part whose worker died (a node lost) is run again; parts are pure functions of their inputs


@dataclass(frozen=True)
class Tasks:
    """``on_ray``: parts run as Ray tasks (Ray must be up), else here, one after the other."""

    on_ray: bool = False

    def submit(self, fn: Callable[..., Any], *args: Any, returns: int = 1) -> list[Any]:
        """Run ``fn(*args)``; its ``returns`` results (a tuple when more than one) as handles."""
        if not self.on_ray:
            found = fn(*args)
            return list(found) if returns > 1 else [found]
        refs = _remote(fn).options(num_returns=returns).remote(*args)
        return list(refs) if returns > 1 else [refs]

    def put(self, value: Any) -> Any:
        """``value`` as a handle: itself in process, in the object store on Ray (so tasks share one copy)."""
        if not self.on_ray:
            return value
        import ray

        return ray.put(value)

    def get(self, handles: Sequence[Any]) -> list[Any]:
        """The values of ``handles`` (waiting for their tasks on Ray)."""
        if not self.on_ray:
            return list(handles)
        import ray

        return list(ray.get(list(handles)))


@cache
def _remote(fn: Callable[..., Any]) -> Any:
    """``fn`` as a Ray remote function, made once (each one made is exported to the cluster)."""
    import ray

    return ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(fn)


IN_PROCESS = Tasks()
ON_RAY = Tasks(on_ray=True)
