"""The admin area's Branding tab: accent colour, logo, footer text and support contact.

"Preview" shows the choices without saving them, on the server (no script needed); with script
the preview follows each keystroke and file pick (static/hushpost/branding.js). The rules, the
logo's re-encoding and the audit event are :mod:`hushpost.orgs.branding`'s.
"""

from __future__ import annotations

import base64

from django.contrib import messages as flash
from django.shortcuts import redirect, render

from hushpost.lib.input import checks_input
from hushpost.orgadmin.access import organisation_for_admin
from hushpost.orgadmin.forms import BrandingForm
from hushpost.orgadmin.views import confirmed, org_admin_required
from hushpost.orgs.branding import contrast_ratio, darker, save_branding
from hushpost.orgs.models import Organization, support_line

TYPED = ("accent", "footer", "support_email", "support_phone")


def _preview(org: Organization, *, accent: str, footer: str, support_email: str, support_phone: str,
             logo_src: str, logo_size: tuple[int | None, int | None]) -> dict:
    return {"name": org.name, "accent": accent, "accent_dark": darker(accent) if accent else "",
            "accent_css": f"/brand/accent/{accent[1:]}.css" if accent else "", "footer": footer,
            "ratio": f"{int(contrast_ratio(accent) * 100) / 100:.2f}" if accent else "",
            "support": support_line(support_email, support_phone), "logo_src": logo_src,
            "logo_width": logo_size[0], "logo_height": logo_size[1]}


def _saved(org: Organization) -> dict:
    return _preview(org, accent=org.brand_accent, footer=org.brand_footer, support_email=org.support_email,
                    support_phone=org.support_phone, logo_src=org.logo_path,
                    logo_size=(org.logo_width, org.logo_height))


@checks_input(*TYPED)
@org_admin_required
@confirmed
def branding(request):
    org = organisation_for_admin(request.user)
    context = {"tab": "admin", "section": "branding", "org": org}
    if request.method != "POST":
        form = BrandingForm(initial={"accent": org.brand_accent, "footer": org.brand_footer,
                                     "support_email": org.support_email, "support_phone": org.support_phone})
        return render(request, "orgadmin/branding.html", {**context, "form": form, "preview": _saved(org)})
    form = BrandingForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(request, "orgadmin/branding.html", {**context, "form": form, "preview": _saved(org)},
                      status=400)
    data, logo = form.cleaned_data, form.new_logo
    if request.POST.get("action") == "preview":
        pending = base64.b64encode(logo.data).decode() if logo else ""
        shown = "" if data["remove_logo"] else (f"data:{logo.content_type};base64,{pending}" if logo
                                                 else org.logo_path)
        size = (logo.width, logo.height) if logo else (org.logo_width, org.logo_height)
        again = BrandingForm(initial={**{name: data[name] for name in TYPED}, "pending_logo": pending,
                                      "remove_logo": data["remove_logo"]})
        return render(request, "orgadmin/branding.html", {**context, "form": again, "previewing": True,
                      "preview": _preview(org, **{name: data[name] for name in TYPED}, logo_src=shown,
                                          logo_size=size)})
    changed = save_branding(org, **{name: data[name] for name in TYPED}, logo=logo,
                            remove_logo=data["remove_logo"], by=request.user)
    # What changed, in words: a logo dropped on the way (a file is not carried through "confirm it's
    # you") shows by its absence here.
    flash.success(request, f"The branding is saved ({', '.join(changed)}): your recipients see it on the portal "
                           "and in every e-mail." if changed else "Nothing changed.")
    return redirect("orgadmin:branding")
