"""Standard Webhooks signatures: ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` (``v1,`` and the base64 of an HMAC-SHA256 over
``id.timestamp.body`` keyed with the secret's bytes), so receivers verify deliveries
with that specification's libraries in any language."""

from __future__ import annotations

import base64
import hashlib
import hmac

from repository.webhooks import secret_key


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes
                   ) -> dict[str, str]:
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, message_id, timestamp, body)}
