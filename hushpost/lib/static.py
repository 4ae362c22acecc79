"""Where the pages' own scripts and styles are served from.

WhiteNoise serves and compresses them; their names carry no content hash (a release
changes ``STATIC_URL``'s files in place and the pages ask browsers to revalidate), so a
file's address depends on its name alone. Each page names five or more of them, and
working an address out (``filepath_to_uri`` and ``urljoin``) took about 9 µs each time:
here each name's address is worked out once per process.
"""

from __future__ import annotations

from whitenoise.storage import CompressedStaticFilesStorage


class StaticFiles(CompressedStaticFilesStorage):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._urls: dict[str, str] = {}

    def url(self, name):
        found = self._urls.get(name)
        if found is None:
            found = super().url(name)
            if len(self._urls) < 1000:  # the templates name a few dozen
                self._urls[name] = found
        return found
