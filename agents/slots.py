"""Device slots: at most one sandboxed evaluation per slot (a CPU share or one GPU) at a time."""
from __future__ import annotations

import queue
from collections.abc import Iterator
from contextlib import contextmanager


class DeviceSlots:
    def __init__(self, devices: list[str]):
        if not devices:
            raise ValueError("at least one device slot is needed")
        self.devices = list(devices)
        self._free: queue.Queue[str] = queue.Queue()
        for device in devices:
            self._free.put(device)

    @contextmanager
    def hold(self) -> Iterator[str]:
        """Wait for a free slot and hold it for the duration of the block."""
        device = self._free.get()
        try:
            yield device
        finally:
            self._free.put(device)
