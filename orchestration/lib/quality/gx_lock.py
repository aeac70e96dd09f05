"""The one lock around Great Expectations: its context and renderers are not thread-safe (Dagster runs checks in
threads), and validation (engine) and page rendering (result) must share it, so it lives below both."""

import threading

GX_LOCK = threading.RLock()
