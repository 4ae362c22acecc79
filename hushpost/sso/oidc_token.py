"""The ID token an OpenID Connect provider returns, checked before it names anyone.

Signed with one of the provider's published keys by an asymmetric algorithm (``none`` and
the HMAC algorithms, which would let anyone holding the client secret sign, are refused);
issued by the configured issuer, for this portal's client, within its lifetime (a minute's
leeway for clocks), for this sign-in (its nonce), and presented once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError

from hushpost.lib import clock
from hushpost.sso.oidc_provider import signing_keys
from hushpost.sso.signin import Identity, SSORefused, first_use

LEEWAY = 60
ALGORITHMS = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
# Which check failed, in the words of signin.REASONS.
CLAIM_REASONS = {"iss": "issuer", "aud": "audience", "exp": "expired", "nbf": "not_yet_valid",
                 "iat": "not_yet_valid", "azp": "audience"}


def _algorithm(id_token: str) -> tuple[str, str | None]:
    try:
        header = jws.extract_compact(id_token.encode()).protected
    except (JoseError, ValueError, TypeError):
        raise SSORefused("signature", "not a signed token") from None
    alg, kid = header.get("alg"), header.get("kid")
    if not alg or str(alg).lower() == "none":
        raise SSORefused("unsigned", "alg none")
    if alg not in ALGORITHMS:
        raise SSORefused("signature", f"algorithm {str(alg)[:10]} refused")
    return alg, kid if isinstance(kid, str) else None


def verified_claims(id_token: str, document: dict, client_id: str, flow: dict) -> dict:
    """The token's claims once every check holds; ``SSORefused`` naming the first that does not."""
    alg, kid = _algorithm(id_token)
    keys = signing_keys(document, kid)
    try:
        claims = jwt.decode(id_token, keys, algorithms=[alg]).claims
    except JoseError as error:
        raise SSORefused("signature", error.error) from None
    now = int(clock.now().timestamp())
    registry = jwt.JWTClaimsRegistry(
        now=now, leeway=LEEWAY,
        iss={"essential": True, "value": document["issuer"]},
        aud={"essential": True, "value": client_id},
        exp={"essential": True}, sub={"essential": True})
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise SSORefused("expired") from None
    except (InvalidClaimError, MissingClaimError) as error:
        claim = getattr(error, "claim", "") or str(error.description or "")
        raise SSORefused(CLAIM_REASONS.get(claim, "signature"), f"claim {claim}") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise SSORefused("audience", "several audiences, azp not this portal")
    if claims.get("nonce") != flow["nonce"]:
        raise SSORefused("replay", "nonce not of this sign-in")
    if flow.get("force") and not _fresh(claims.get("auth_time"), flow["at"]):
        raise SSORefused("expired", "the provider did not sign the person in again")
    expires = datetime.fromtimestamp(claims["exp"], tz=UTC)
    if not first_use(document["issuer"], f"nonce:{claims['nonce']}", expires):
        raise SSORefused("replay", "nonce already used")
    return claims


def _fresh(auth_time, started: float) -> bool:
    return isinstance(auth_time, int | float) and auth_time >= started - LEEWAY


def _address(value) -> str:
    value = value.strip() if isinstance(value, str) else ""
    return value if value.count("@") == 1 and "." in value.rsplit("@", 1)[1] else ""


def identity(claims: dict, group_claim: str) -> Identity:
    """Who the token names: ``email``, else Entra ID's ``preferred_username`` or ``upn`` when it is
    an address; an address the provider says it has not verified is refused."""
    if "email" in claims:
        # Only the address the provider gave as the address: never another claim instead of it.
        email = _address(claims.get("email"))
        if email and claims.get("email_verified", True) not in (True, "true"):
            raise SSORefused("no_email", "email_verified is not true", email=email.lower())
    else:
        email = _address(claims.get("preferred_username")) or _address(claims.get("upn"))
    if not email:
        raise SSORefused("no_email")
    groups = claims.get(group_claim) if group_claim else None
    if isinstance(groups, str):
        groups = [groups]
    groups = [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else []
    name = claims.get("name") if isinstance(claims.get("name"), str) else ""
    auth_time = claims.get("auth_time")
    authenticated_at = (datetime.fromtimestamp(auth_time, tz=UTC)
                        if isinstance(auth_time, int | float) and not isinstance(auth_time, bool) else None)
    return Identity(email=email, name=name, groups=groups, subject=str(claims.get("sub", "")),
                    authenticated_at=authenticated_at)
