"""What a Ray cluster can do to a piece of work that is not the work's own doing, and how to tell.

A node, a Ray worker or the object store can vanish while an evaluation runs: a preempted spot
instance, a GPU off the bus, the raylet killed for memory. Those are infrastructure faults: the
work is tried again elsewhere, a bounded number of times, and each lost try is reported with its
cause. Everything else (the work's own result, or an exception it raised) passes through as is.

The driver's link to the cluster is watched from outside Ray (a TCP probe of the GCS): a Ray call
made while the head is gone blocks, and Ray ends the whole process once its own reconnect window
is over, so the loss must be seen, and acted on, before either happens.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

# Ray's exception classes (by name, so this module imports without Ray) that mean the cluster, not
# the work, failed. Subclasses count too: OwnerDiedError and ObjectReconstructionFailedError are
# ObjectLostErrors, and so on.
INFRASTRUCTURE_FAULTS = (
    "NodeDiedError", "WorkerCrashedError", "LocalRayletDiedError", "ObjectLostError", "OwnerDiedError",
    "ObjectFetchTimedOutError", "ObjectStoreFullError", "OutOfDiskError", "RaySystemError", "ActorDiedError",
    "ActorUnavailableError", "OutOfMemoryError",
)
# Ray kills a worker for memory pressure on its node (OutOfMemoryError); a worker that vanishes
# without a word (WorkerCrashedError) is most often the kernel's OOM killer at work.
MEMORY_FAULTS = ("OutOfMemoryError", "WorkerCrashedError")
PROBE_SECONDS = 2.0
CAUSE_CHARS = 200
# Ray's own window before it ends a driver whose GCS is gone is stretched past ours, so that the
# driver, not Ray, decides what happens when the link is lost.
RAY_RECONNECT_VARIABLE = "RAY_gcs_rpc_server_reconnect_timeout_s"
RAY_WINDOW_MARGIN_S = 60


def fault_cause(error: BaseException) -> str | None:
    """'NodeDiedError: <first line>' if `error` is an infrastructure fault, else None."""
    names = {cls.__name__ for cls in type(error).__mro__}
    if not names & set(INFRASTRUCTURE_FAULTS):
        return None
    first_line = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    if len(first_line) > CAUSE_CHARS:  # Ray's messages run on with advice; keep whole sentences
        first_line = first_line[:CAUSE_CHARS].rsplit(". ", 1)[0] + "."
    return f"{type(error).__name__}: {first_line}"


@dataclass(frozen=True)
class LostAttempt:
    attempt: int   # 1-based
    tries: int     # the bound
    cause: str     # fault_cause(...)


class EvaluationLost(Exception):
    """The cluster lost this piece of work on every one of its tries: it ends with this reason.

    `status` is the evaluation status to record: "oom" when every try was lost to memory (a
    candidate that exhausts its node's memory does exactly this), else "crashed"."""

    def __init__(self, lost: list[LostAttempt]):
        self.lost = lost
        memory = all(any(name in a.cause for name in MEMORY_FAULTS) for a in lost)
        self.status = "oom" if memory else "crashed"
        causes = "; ".join(f"try {a.attempt}: {a.cause}" for a in lost)
        hint = ("its Ray worker was killed every time, most likely for memory: lower the candidate's memory use "
                "(state size, chunk size, batch) or give the nodes more memory"
                if memory else "the node, the Ray worker or the object store went away every time: check the "
                "cluster (`archlab doctor --ray ADDRESS`, `ray status`); a candidate that exhausts its node's memory "
                "can take the node down with it")
        self.reason = f"the evaluation was lost on all {len(lost)} tries ({causes}); {hint}"
        super().__init__(self.reason)


@dataclass
class ConnectionWatch:
    """Probes the GCS at `address` (host:port; "" for none) from a thread of its own.

    `on_lost(message)` is called once the GCS has been unreachable for `grace_s`; `on_back(seconds)`
    when it answers again before that (Ray reconnects by itself when the head comes back with its
    state, i.e. with GCS fault tolerance)."""

    address: str
    grace_s: float
    on_lost: Callable[[str], None]
    on_back: Callable[[float], None] = lambda seconds: None
    probe_s: float = PROBE_SECONDS
    _closing: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.address:  # nothing to probe: the link is Ray's alone
            return
        self._thread = threading.Thread(target=self._watch, daemon=True, name="ray-connection-watch")
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join()

    def reachable(self) -> bool:
        if not self.address:
            return True
        host, _, port = self.address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=self.probe_s).close()
            return True
        except (OSError, ValueError):
            return False

    def _watch(self) -> None:
        down_since: float | None = None
        while not self._closing.wait(self.probe_s):
            if self.reachable():
                if down_since is not None:
                    self.on_back(time.monotonic() - down_since)
                down_since = None
                continue
            down_since = down_since if down_since is not None else time.monotonic()
            if time.monotonic() - down_since >= self.grace_s:
                self.on_lost(f"lost the connection to the Ray cluster (GCS at {self.address} unreachable for "
                             f"{self.grace_s:.0f} s); the evaluations in flight restart on `archlab resume` "
                             f"once the cluster is back")
                return


def stretch_ray_reconnect_window(grace_s: float) -> None:
    """Before ray.init: let Ray wait longer than the watch does, unless the user chose a window."""
    os.environ.setdefault(RAY_RECONNECT_VARIABLE, str(int(grace_s + RAY_WINDOW_MARGIN_S)))
