"""What Hushpost answers about itself and its senders, as SCIM resources (RFC 7643)."""

from __future__ import annotations

from django.conf import settings

from hushpost.accounts.models import User
from hushpost.scim.changes import CORE_USER
from hushpost.scim.models import ScimIdentity

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SERVICE_PROVIDER_CONFIG = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
MAX_RESULTS = 200


def base_url() -> str:
    return f"{settings.BASE_URL}/scim/v2"


def user(sender: User, identity: ScimIdentity | None) -> dict:
    """A sender as a SCIM User: ``id`` is the account's number and never changes."""
    resource = {
        "schemas": [CORE_USER],
        "id": str(sender.pk),
        "userName": sender.email,
        "displayName": sender.name or sender.email,
        "name": {"formatted": sender.name or sender.email},
        "emails": [{"value": sender.email, "type": "work", "primary": True}],
        "active": sender.is_active,
        "meta": {
            "resourceType": "User",
            "created": sender.created_at.isoformat(),
            "location": f"{base_url()}/Users/{sender.pk}",
        },
    }
    if identity is not None:
        resource["meta"]["lastModified"] = identity.updated_at.isoformat()
        if identity.external_id:
            resource["externalId"] = identity.external_id
        for key, value in (("givenName", identity.given_name), ("familyName", identity.family_name)):
            if value:
                resource["name"][key] = value
    return resource


def list_response(resources: list[dict], total: int, start: int) -> dict:
    return {"schemas": [LIST_RESPONSE], "totalResults": total, "startIndex": start,
            "itemsPerPage": len(resources), "Resources": resources}


def service_provider_config() -> dict:
    unsupported = {"supported": False}
    return {
        "schemas": [SERVICE_PROVIDER_CONFIG],
        "documentationUri": f"{settings.BASE_URL}/",
        "patch": {"supported": True},
        "bulk": {**unsupported, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": unsupported,
        "sort": unsupported,
        "etag": unsupported,
        "authenticationSchemes": [{
            "type": "oauthbearertoken", "name": "Bearer token", "primary": True,
            "description": "A provisioning token made on the Provisioning page of Hushpost's admin area.",
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base_url()}/ServiceProviderConfig"},
    }


def resource_types() -> list[dict]:
    return [{
        "schemas": [RESOURCE_TYPE], "id": "User", "name": "User", "endpoint": "/Users",
        "description": "A sender of the organisation", "schema": CORE_USER,
        "meta": {"resourceType": "ResourceType", "location": f"{base_url()}/ResourceTypes/User"},
    }]


def _attribute(name: str, kind: str = "string", *, required: bool = False, unique: str = "none",
               mutability: str = "readWrite", sub: list[dict] | None = None, multi: bool = False) -> dict:
    attribute = {"name": name, "type": kind, "multiValued": multi, "required": required,
                 "caseExact": False, "mutability": mutability, "returned": "default", "uniqueness": unique}
    if sub is not None:
        attribute["subAttributes"] = sub
    return attribute


def user_schema() -> dict:
    """The attributes of a User that Hushpost keeps; others are accepted and ignored."""
    return {
        "schemas": [SCHEMA], "id": CORE_USER, "name": "User", "description": "A sender of the organisation",
        "attributes": [
            _attribute("userName", required=True, unique="server"),
            _attribute("name", "complex", sub=[_attribute("formatted"), _attribute("givenName"),
                                               _attribute("familyName")]),
            _attribute("displayName"),
            _attribute("emails", "complex", mutability="readOnly", multi=True,
                       sub=[_attribute("value"), _attribute("type"), _attribute("primary", "boolean")]),
            _attribute("active", "boolean"),
            _attribute("externalId"),
        ],
        "meta": {"resourceType": "Schema", "location": f"{base_url()}/Schemas/{CORE_USER}"},
    }
