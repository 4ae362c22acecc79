import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hushpost.settings")

from hushpost.server.startup import refuse_unsafe_production  # noqa: E402

refuse_unsafe_production()
application = get_wsgi_application()
