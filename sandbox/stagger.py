"""Staggered first starts on a shared GPU: the first evaluations on a GPU that K slots share start one after
another, each when the one before it on that GPU has begun training (or ended).

Why: an evaluation spends its first tens of seconds off the GPU (the sandbox's start, compilation, the
checks). K evaluations submitted together set up together, leaving the GPU idle, then train together,
each at a K-th of the speed; evaluations of one budget take about as long as each other, so the next K
start together again, wave after wave. Started one after another, one's set-up overlaps the other's
training, and the evaluations that follow keep the offset. Only the first evaluation of each slot waits:
later ones start as soon as their slot is free.

Whether an evaluation has begun training comes from its progress events (`evaluator.progress`, the
`train` phase), which are advisory: a candidate that forges or hides them can only make the next start
earlier or later, never change a result; an evaluation's end always releases the next.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from sandbox.slots import DeviceSlot

WAIT_POLL_SECONDS = 0.5  # how often a waiting start looks at the caller's stop
TRAINING_PHASE = "train"


class StaggeredStarts:
    """Which slot waits for which, and whether each slot's first evaluation has begun training.

    Slots are known by their position in the pool's list; a slot's first evaluation waits for the
    first evaluation of the slot before it on the same GPU (unshared GPUs and the CPU never wait)."""

    def __init__(self, slots: list[DeviceSlot]):
        self._began = [threading.Event() for _ in slots]
        self._after: list[int | None] = []
        last_on: dict[str, int] = {}
        for position, slot in enumerate(slots):
            shared = slot.sharing > 1  # parse_slots gives a CPU slot sharing 1
            self._after.append(last_on.get(slot.device) if shared else None)
            if shared:
                last_on[slot.device] = position
        self._started = [False] * len(slots)  # touched only by the thread that holds the slot

    def wait_turn(self, position: int, stop: threading.Event | None) -> None:
        """Before a slot's first evaluation: wait until the slot before it has begun training, or the stop came."""
        if self._started[position]:
            return
        self._started[position] = True
        previous = self._after[position]
        if previous is None:
            return
        while not self._began[previous].wait(WAIT_POLL_SECONDS):
            if stop is not None and stop.is_set():
                return

    def watch(self, position: int, on_progress: Callable[[Any], None] | None) -> Callable[[Any], None]:
        """The progress callback to give the work: notes when it begins training, then passes each event on."""
        began = self._began[position]

        def relay(event: Any) -> None:
            if getattr(event, "kind", None) == "phase" and getattr(event, "name", None) == TRAINING_PHASE:
                began.set()
            if on_progress is not None:
                on_progress(event)
        return relay

    def ended(self, position: int) -> None:
        """The slot's evaluation ended (whatever its outcome): nothing waits for it any longer."""
        self._began[position].set()
