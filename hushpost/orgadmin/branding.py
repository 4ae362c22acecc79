"""The admin area's Branding tab: accent colour, logo, footer text and support contact.

"Preview" shows the choices without saving them, on the server (no script needed); with script
the preview follows each keystroke and file pick (static/hushpost/branding.js). The rules, the
logo's re-encoding and the audit event are :mod:`hushpost.orgs.branding`'s.

A logo chosen when "confirm it's you" is due is not lost on the way: a file cannot be carried
through that page, so the logo is re-encoded first and travels through it as ``pending_logo`` (as a
previewed one does; it is public branding, and is checked again when saved). A file that is not a
usable logo is named on that page, so the admin knows to choose another after confirming.
"""

from __future__ import annotations

import base64
from functools import wraps

from django.contrib import messages as flash
from django.shortcuts import redirect, render

from hushpost.accounts import reauth
from hushpost.lib.input import checks_input
from hushpost.lib.refusals import Refused
from hushpost.orgadmin.access import organisation_for_admin
from hushpost.orgadmin.forms import BrandingForm
from hushpost.orgadmin.views import ADMIN_FRAME, org_admin_required
from hushpost.orgs.branding import contrast_ratio, darker, reencode_logo, save_branding
from hushpost.orgs.models import Organization, support_line

TYPED = ("accent", "footer", "support_email", "support_phone")
LOGO_NOTE = "hushpost_logo_note"
LOGO_KEPT = "The logo you chose is kept: it is saved with the rest once you confirm."


def _logo_note(request) -> dict:
    return getattr(request, LOGO_NOTE, {})


confirmed = reauth.required(ADMIN_FRAME, tab="admin", logo_note=_logo_note)


def _keeps_the_logo_through_confirmation(view):
    """When "confirm it's you" is due, the chosen file becomes ``pending_logo`` before that page is shown."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        upload = request.FILES.get("logo")
        if request.method != "POST" or reauth.recent(request):
            pass
        elif request.POST.get("pending_logo") and not upload:  # previewed, or carried to a second try
            setattr(request, LOGO_NOTE, {"text": LOGO_KEPT, "refused": False})
        elif upload:
            try:
                logo = reencode_logo(upload.read())
            except Refused as e:
                setattr(request, LOGO_NOTE, {"text": f"The logo you chose cannot be used: {e} "
                                                     "Choose another one after you confirm.", "refused": True})
            else:
                upload.seek(0)  # the form reads it again should this same request also answer the question
                request.POST = request.POST.copy()
                request.POST["pending_logo"] = base64.b64encode(logo.data).decode()
                setattr(request, LOGO_NOTE, {"text": LOGO_KEPT, "refused": False})
        return view(request, *args, **kwargs)

    return wrapper


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
@_keeps_the_logo_through_confirmation
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
    # What changed, in words, the logo too when it came through "confirm it's you" as pending_logo.
    flash.success(request, f"The branding is saved ({', '.join(changed)}): your recipients see it on the portal "
                           "and in every e-mail." if changed else "Nothing changed.")
    return redirect("orgadmin:branding")
