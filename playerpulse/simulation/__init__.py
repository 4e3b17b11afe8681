"""The game simulator: a seeded world of players, the mess their clients make, and a sender.

``simulate`` makes the history (with its ground truth), ``live_events`` makes fresh events for
the demo, and ``send_deliveries`` posts either to the collector the way a game client would.
"""

from playerpulse.simulation.delivery import Delivery, InjectedEvent
from playerpulse.simulation.live import live_events
from playerpulse.simulation.players import GAME_ID, device_of, player_id
from playerpulse.simulation.sender import SendReport, send_deliveries
from playerpulse.simulation.simulator import Simulation, simulate, write_ground_truth

__all__ = [
    "GAME_ID",
    "Delivery",
    "InjectedEvent",
    "SendReport",
    "Simulation",
    "device_of",
    "live_events",
    "player_id",
    "send_deliveries",
    "simulate",
    "write_ground_truth",
]
