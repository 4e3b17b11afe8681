"""PlayerPulse playerpulse."""
