"""Prometheus metrics of the rooms: a collector that reads the hub's plain counters at scrape time
(nothing Prometheus-related runs on the per-frame hot path)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from vrhub.rooms.hub import RoomHub


class RoomsCollector(Collector):
    def __init__(self, hub: RoomHub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        hub = self.hub
        s = hub.stats
        local = sum(len(r.clients) for r in hub.rooms.values())
        total = sum(len(r.participants) for r in hub.rooms.values())
        g = GaugeMetricFamily(
            "vrhub_room_participants", "Participants in rooms on this hub", labels=["where"]
        )
        g.add_metric(["local_connected"], local)
        g.add_metric(["all"], total)
        yield g
        yield GaugeMetricFamily("vrhub_rooms", "Rooms with participants on this hub", value=len(hub.rooms))
        counters = {
            "frames_in": "Expression frames accepted from local clients",
            "frames_out": "Participant frames written to clients (entries in room frames)",
            "messages_out": "Binary room frames written to clients",
            "superseded": "Frames replaced by a newer frame of the same participant before their tick",
            "superseded_remote": "Frames from other hubs replaced by a newer one before this hub's tick",
            "skipped_sends": "Room frames not sent because the client's send buffer was over its limit",
            "catch_up_sends": "Catch-up room frames sent to clients that had skipped ticks",
            "rate_limited": "Frames dropped by the per-participant rate limit",
            "bad_messages": "Malformed, oversized or unknown messages",
            "slow_disconnects": "Clients disconnected for a send buffer over the hard limit",
            "ticks": "Room ticks run",
        }
        for name, doc in counters.items():
            yield CounterMetricFamily(f"vrhub_room_{name}", doc, value=getattr(s, name))
        ticks = max(s.ticks, 1)
        yield GaugeMetricFamily(
            "vrhub_room_tick_lag_seconds_avg",
            "Mean delay of room ticks behind schedule",
            value=s.tick_lag_sum / ticks,
        )
        yield GaugeMetricFamily(
            "vrhub_room_tick_lag_seconds_max",
            "Largest delay of a room tick behind schedule",
            value=s.tick_lag_max,
        )
        bus = hub.bus
        if bus is not None:
            yield GaugeMetricFamily(
                "vrhub_redis_connected", "1 when the Redis bus is connected", value=float(bus.connected)
            )
            yield GaugeMetricFamily(
                "vrhub_redis_lag_seconds",
                "Latest publish->receive delay of frames from other hubs",
                value=bus.lag,
            )
            yield GaugeMetricFamily(
                "vrhub_redis_lag_seconds_max", "Largest publish->receive delay seen", value=bus.lag_max
            )
            yield CounterMetricFamily("vrhub_redis_publishes", "Frame batches published", value=bus.publishes)
            yield CounterMetricFamily(
                "vrhub_redis_received", "Frame batches received from other hubs", value=bus.received
            )
            yield CounterMetricFamily(
                "vrhub_redis_reconnects", "Reconnections to Redis", value=bus.reconnects
            )
            yield CounterMetricFamily(
                "vrhub_redis_dropped", "Publishes dropped while Redis was unreachable", value=bus.dropped
            )


def make_registry(hub: RoomHub) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RoomsCollector(hub))
    return registry
