"""Topic names under `<prefix>/<installation_id>/` (docs/mqtt.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    prefix: str
    installation_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.installation_id}"

    @property
    def available(self) -> str:  # retained "online" / "offline" (also the last will)
        return f"{self.base}/available"

    @property
    def stats(self) -> str:
        return f"{self.base}/stats"

    @property
    def state(self) -> str:  # retained
        return f"{self.base}/state"

    @property
    def commands(self) -> str:
        return f"{self.base}/cmd/+"

    @property
    def result(self) -> str:
        return f"{self.base}/cmd/result"

    def command_name(self, topic: str) -> str | None:
        head = f"{self.base}/cmd/"
        if not topic.startswith(head):
            return None
        name = topic[len(head) :]
        return None if name == "result" else name
