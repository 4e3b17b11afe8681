"""PlayerPulse's shared vocabulary: the event contract, feature definitions, configuration, and
the stream, dead-letter and online-store interfaces with their backends. No Spark at import.
"""
