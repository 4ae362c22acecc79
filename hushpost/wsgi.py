import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hushpost.settings")

from hushpost.server.startup import make_database_dir, refuse_unsafe_production  # noqa: E402

refuse_unsafe_production()
make_database_dir()
application = get_wsgi_application()
