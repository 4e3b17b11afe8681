"""PlayerPulse pipelines."""
