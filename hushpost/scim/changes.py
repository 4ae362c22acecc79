"""What a request asks to change about a sender, read from SCIM's JSON.

A full resource (POST, PUT) and a PATCH both become one ``Changes`` dict, keyed
by the SCIM attributes Hushpost keeps: ``userName`` (the sender's address),
``active``, ``displayName``, ``formatted`` (``name.formatted``), ``givenName``,
``familyName`` and ``externalId``; an empty string clears one.

PATCH is read the way Microsoft Entra ID and Okta write it: operation names in
any case ("Replace", "add"), ``active`` as a boolean or as the string "False",
a value object without a path (``{"active": false, "displayName": …}``, at times
with dotted keys such as ``"name.givenName"``). Attributes Hushpost does not keep
(job title, phone numbers, the enterprise extension, ``emails``: a sender's address
is their ``userName``) are accepted and ignored, so the identity provider's default
attribute mappings do not fail every update.
"""

from __future__ import annotations

from hushpost.lib.input import usable
from hushpost.scim.errors import ScimError, invalid_value

Changes = dict[str, object]

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
# The path (lower-cased) and the attribute it names.
PATHS = {
    "username": "userName",
    "active": "active",
    "displayname": "displayName",
    "name.formatted": "formatted",
    "name.givenname": "givenName",
    "name.familyname": "familyName",
    "externalid": "externalId",
}
NAME_PARTS = {"formatted": "formatted", "givenname": "givenName", "familyname": "familyName"}
LENGTHS = {"userName": 254, "displayName": 200, "formatted": 200, "givenName": 100, "familyName": 100,
           "externalId": 255}
REQUIRED = {"username", "active", "id"}


def _text(attribute: str, value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid_value(f"{attribute} must be a string.")
    if not usable(value, LENGTHS[attribute]):
        raise invalid_value(f"{attribute} must be one line of at most {LENGTHS[attribute]} characters.")
    return value.strip()


def _boolean(value) -> bool:
    # Entra ID sends "True" and "False" as strings in PATCH.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid_value("active must be true or false.")


def _set(changes: Changes, attribute: str, value) -> None:
    changes[attribute] = _boolean(value) if attribute == "active" else _text(attribute, value)


def from_resource(body) -> Changes:
    """A whole User resource (POST, PUT): what it says, with what it leaves out cleared (but ``active``)."""
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object.", "invalidSyntax")
    changes: Changes = {}
    user_name = _text("userName", body.get("userName"))
    if not user_name:
        raise invalid_value("userName (the sender's e-mail address) is required.")
    changes["userName"] = user_name
    if "active" in body:  # left out, it stays as it is (a new sender is enabled)
        changes["active"] = _boolean(body["active"])
    changes["displayName"] = _text("displayName", body.get("displayName"))
    name = body.get("name") or {}
    if not isinstance(name, dict):
        raise invalid_value("name must be an object.")
    for key, attribute in NAME_PARTS.items():
        found = next((v for k, v in name.items() if k.lower() == key), None)
        changes[attribute] = _text(attribute, found)
    changes["externalId"] = _text("externalId", body.get("externalId"))
    return changes


def _path(kind: str, path: str, value, changes: Changes) -> None:
    path = path.strip()
    if path.lower().startswith(CORE_USER.lower() + ":"):
        path = path[len(CORE_USER) + 1:]
    key = path.lower()
    if key == "name" and kind != "remove":
        if not isinstance(value, dict):
            raise invalid_value("name must be an object.")
        for part, part_value in value.items():
            _path(kind, f"name.{part}", part_value, changes)
        return
    if key == "id":
        raise ScimError(400, "id cannot be changed.", "mutability")
    attribute = PATHS.get(key)
    if attribute is None:
        return  # an attribute Hushpost does not keep, emails[type eq "work"].value among them
    if kind == "remove":
        if key in REQUIRED:
            raise ScimError(400, f"{attribute} cannot be removed.", "mutability")
        changes[attribute] = ""
        return
    _set(changes, attribute, value)


def from_patch(body) -> Changes:
    """A PatchOp's operations, in order, as the changes they add up to."""
    if not isinstance(body, dict) or not isinstance(body.get("Operations"), list):
        raise ScimError(400, "A PATCH request needs a list of Operations.", "invalidSyntax")
    changes: Changes = {}
    for operation in body["Operations"]:
        if not isinstance(operation, dict):
            raise ScimError(400, "Each operation must be a JSON object.", "invalidSyntax")
        kind = str(operation.get("op", "")).lower()
        if kind not in ("add", "replace", "remove"):
            raise ScimError(400, "op must be add, replace or remove.", "invalidSyntax")
        path, value = operation.get("path"), operation.get("value")
        if path is None and kind == "remove":
            raise ScimError(400, "remove needs a path.", "noTarget")
        if path is None:
            if not isinstance(value, dict):
                raise invalid_value("Without a path, value must be an object of attributes.")
            for key, item in value.items():
                _path(kind, key, item, changes)
        elif isinstance(path, str):
            _path(kind, path, value, changes)
        else:
            raise ScimError(400, "path must be a string.", "invalidPath")
    return changes
