"""PlayerPulse training."""
