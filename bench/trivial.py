"""The baseline web app for ``make bench``: one trivial Django view, nothing else.

Served by gunicorn with exactly the arguments ``hushpost serve`` uses (see
``bench/run.py``), so the ratio sending / trivial measures what Hushpost's
send path costs on top of Django + gunicorn on this machine. It has its own
minimal settings (no database, no middleware) and adds no route to the product.
"""

from __future__ import annotations

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse
from django.urls import path

from hushpost.lib.env import envint, envsecret


def ok(request):
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("", ok)]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=envsecret("SECRET_KEY") or "bench-trivial-not-secret",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={},
        USE_TZ=True,
        # Read by the worker class `hushpost serve` runs (hushpost/server/worker.py): the same
        # request deadlines as Hushpost's own settings, from the same variables.
        REQUEST_TIMEOUT=envint("REQUEST_TIMEOUT", 10),
        REQUEST_MIN_RATE=envint("REQUEST_MIN_RATE", 500),
    )

application = get_wsgi_application()
