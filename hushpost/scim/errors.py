"""SCIM's error answers (RFC 7644 §3.12): a status, a ``scimType`` where one applies, and words."""

from __future__ import annotations

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """A request that cannot be done; nothing it asked for has changed."""

    def __init__(self, status: int, detail: str, scim_type: str = "", *, retry_after: int | None = None):
        super().__init__(detail)
        self.status, self.detail, self.scim_type, self.retry_after = status, detail, scim_type, retry_after

    def body(self) -> dict:
        body = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


def not_found() -> ScimError:
    # The same answer for a sender of another organisation, a recipient and an id nobody has.
    return ScimError(404, "No such user.")


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")
