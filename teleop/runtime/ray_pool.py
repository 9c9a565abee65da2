"""Per-seed work on Ray: the local pool's worker functions as Ray actors, on one machine or a cluster.

The one interface both pools share: ``make()`` builds a worker's warm state (env, policy) and
returns the function that runs one call of it, ``run(*args)``. The local pool calls it in spawned
processes; :func:`ordered_map` calls it in Ray actors and hands results back in call order to the
caller (the one dataset writer), with at most two calls per actor in flight. An actor that dies
is restarted and its calls rerun there, so each call's result comes back exactly once.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from protege.teleop.errors import MissingExtraError, TeleopError

LOCAL = "local"  # start a local Ray instance, or join the one `ray start` left on this machine
AUTO = "auto"  # the cluster RAY_ADDRESS or the last `ray start` names
CLIENT_PREFIX = "ray://"  # a Ray client address; without it, host:port is the cluster's GCS
PROBE_TIMEOUT_S = 10.0  # an address that accepts no connection in this time is refused
RETRIES = 3  # restarts of a lost actor, and reruns of each call it held


class _Actor:
    """One Ray worker process's warm state."""

    def __init__(self, make: Callable[[], Callable[..., Any]]) -> None:
        self.run_one = make()

    def run(self, args: tuple[Any, ...]) -> Any:
        return self.run_one(*args)


def connect(address: str) -> Any:
    """The ray module, connected to ``address`` (``local``, ``auto``, ``ray://host:port`` or ``host:port``);
    one-line TeleopError if it is malformed, nothing answers there (:func:`probe`) or Ray finds no cluster."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError("--ray", "ray") from None
    if not ray.is_initialized():
        if address not in (LOCAL, AUTO):
            probe(address)
        try:
            ray.init(address=None if address == LOCAL else address, logging_level="WARNING", log_to_driver=False)
        except ConnectionError as exc:
            raise TeleopError(f"--ray {address}: {exc}") from None
    return ray


def probe(address: str) -> None:
    """One-line TeleopError unless ``address`` (``host:port`` or ``ray://host:port``) accepts a connection
    within :data:`PROBE_TIMEOUT_S`: Ray itself retries an address where nothing answers for minutes."""
    host, _, port = address.removeprefix(CLIENT_PREFIX).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TeleopError(f"--ray {address}: not an address; give local, auto, HOST:PORT or {CLIENT_PREFIX}HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise TeleopError(f"--ray {address}: nothing answers there ({reason}); start the cluster (ray start --head) "
                          "or check the address") from None


def ordered_map(make: Callable[[], Callable[..., Any]], calls: Sequence[tuple[Any, ...]], actors: int,
                address: str) -> Iterator[Any]:
    """``make()(*args)`` for every ``args`` in ``calls``, in order, from up to ``actors`` Ray actors (one
    CPU each, no more than the cluster has). Closing the iterator (Ctrl-C, an error) ends the actors
    and the calls they hold."""
    ray = connect(address)
    actors = max(1, min(actors, len(calls), int(ray.cluster_resources().get("CPU", 1))))
    remote = ray.remote(num_cpus=1, max_restarts=RETRIES, max_task_retries=RETRIES)(_Actor)
    pool = [remote.remote(make) for _ in range(actors)]
    pending: deque[Any] = deque()
    try:
        for index, args in enumerate(calls):
            if len(pending) == 2 * actors:
                yield ray.get(pending.popleft())
            pending.append(pool[index % actors].run.remote(args))
        while pending:
            yield ray.get(pending.popleft())
    finally:
        for actor in pool:
            ray.kill(actor, no_restart=True)
