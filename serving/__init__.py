"""PlayerPulse serving."""
