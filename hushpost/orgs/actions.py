from __future__ import annotations

from django.db import transaction
from django.utils.text import slugify

from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.crypto.keys import create_org_key
from hushpost.lib.refusals import Refused
from hushpost.orgs.models import Domain, Organization


def normalize_domain(domain: str) -> str:
    domain = domain.strip().lower().rstrip(".")
    if not domain or "." not in domain or any(c.isspace() or c in "@/\\" for c in domain):
        raise Refused(f"{domain!r} is not a mail domain")
    return domain


def create_organization(*, name: str, domains: list[str], sender_name: str = "") -> Organization:
    name = " ".join(name.split())
    if not name:
        raise Refused("an organisation needs a name")
    clean = [normalize_domain(d) for d in domains]
    if not clean:
        raise Refused("an organisation needs at least one domain")
    taken = Domain.objects.filter(name__in=clean).values_list("name", flat=True)
    if taken:
        raise Refused(f"domain already belongs to an organisation: {', '.join(taken)}")
    base = slugify(name)[:50] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    with transaction.atomic():
        sender_name = " ".join(sender_name.split())  # it becomes an e-mail header
        org = Organization.objects.create(name=name, slug=slug, sender_name=sender_name or name)
        for d in clean:
            Domain.objects.create(org=org, name=d)
        create_org_key(org)
    return org


def org_for_address(email: str) -> Organization | None:
    domain = email.rsplit("@", 1)[-1].lower()
    found = Domain.objects.select_related("org").filter(name=domain).first()
    return found.org if found else None


def add_domain(org: Organization, domain: str) -> Domain:
    """Another mail domain of the organisation's staff (``hushpost org add-domain``)."""
    domain = normalize_domain(domain)
    if Domain.objects.filter(name=domain).exists():
        raise Refused(f"domain already belongs to an organisation: {domain}")
    return Domain.objects.create(org=org, name=domain)


def change_policy(org: Organization, fields: list[str], *, by) -> None:
    """Save the policy already set on ``org`` (``fields`` name what changed); ``by``, the admin, is recorded."""
    with transaction.atomic():
        org.save()
        record(AuditEvent.Action.ADMIN, actor=by, obj=org, detail="changed the policy: " + ", ".join(fields)[:250])
