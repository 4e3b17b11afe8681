"""Drop-in collector for the analytics SDKs games already ship: Segment, Snowplow, GameAnalytics.

One module per wire format reads its vendor's events; ``mapping`` turns them into PlayerPulse
events by the game's declared rules (``conf/vendors/*.yaml``); ``ingest`` hands them to the
one collector core. The routes are in ``serving/routes/vendors.py``.
"""
