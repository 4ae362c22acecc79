from django.conf import settings


def hushpost(request):
    return {
        "DEV_MAILBOX_ENABLED": settings.DEV_MAILBOX_ENABLED,
    }
