"""The bytes of a Lambda HTTP event's body, whatever a client managed to put in it.

API Gateway hands the body over as a string: base64 when it was binary, else text that may hold
lone surrogates (JSON escapes like \\ud800 survive into the event). Neither may become a 500:
undecodable base64 is ``None`` (the caller answers 400), and text is encoded so that invalid
code points reach the JSON decoder as invalid UTF-8, which it refuses with a 400.
"""

from __future__ import annotations

import base64
import binascii


def event_body(body: str | None, is_base64_encoded: bool) -> bytes | None:
    raw = body or ""
    if is_base64_encoded:
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return None
    return raw.encode("utf-8", "surrogatepass")
