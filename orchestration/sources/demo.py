"""The demo generator moved to ``orchestration.demo`` (its own package, catalogue and story as data); this name
stays for code written against it (the end-to-end and services tests, scripts)."""

from orchestration.demo import *  # noqa: F401,F403
