"""Open a versioned store by URL: the one module that knows both backends.

Why a module of its own: `push.store` holds the contract every backend implements and the backends import
it, so the choice of backend from a URL must live above all three; otherwise the contract would import its
own implementations and the circle would be hidden inside a function.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from push.errors import BadArgument, StoreNotFound
from push.redis_store import RedisStore
from push.rocks_store import RocksStore
from push.store import StoreOptions, VersionedStore

REDIS_SCHEMES = ("redis://", "rediss://")
URL_HELP = "a folder path or redis://HOST:PORT/DB"


def open_store(url: str, options: StoreOptions | None = None, clock: Callable[[], float] = time.time,
               recover: bool = True, create: bool = False) -> VersionedStore:
    """`redis://HOST:PORT/DB[?ns=NAME]` opens the Redis backend; anything else is a RocksDB folder.

    A store that does not exist raises StoreNotFound unless `create` (push paths only), which creates it
    with `options`' settings. `recover=False` opens without recovery or cleanup: nothing is written, which
    is how readers open. A backend that cannot be reached raises StoreUnavailable naming the URL."""
    store = backend_for(url, options, clock)
    try:
        if not store.exists():
            if not create:
                raise StoreNotFound(f"{store.describe()}: no store there (expected {store.manifest_name()}); "
                                    "only a push creates a store, check the path or URL")
            store.create()
        if recover:
            store.recover()
    except BaseException:
        store.close()
        raise
    return store


def backend_for(url: str, options: StoreOptions | None = None,
                clock: Callable[[], float] = time.time) -> VersionedStore:
    """The backend object for a store URL; nothing is read or written yet."""
    if not url:
        raise BadArgument(f"--store: expected {URL_HELP}, found an empty string")
    if url.startswith(REDIS_SCHEMES):
        return RedisStore(url, options, clock)
    if "://" in url:
        raise BadArgument(f"--store: expected {URL_HELP}, found {url!r}")
    return RocksStore(url, options, clock)
