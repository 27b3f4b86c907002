"""The plugin test kit: pytest fixtures, in-memory plugins, helpers and a conformance suite.

Enable it explicitly in a test suite's ``conftest.py`` (it is not loaded
through a ``pytest11`` entry point, so it never changes a suite that did not ask)::

    pytest_plugins = ["cdp_core.testing"]

Fixtures: ``cdp_plugins``, ``register_plugin``, ``cdp_store_url``, ``cdp_store``,
``cdp_respx``, ``cdp_http``, ``cdp_collector``. See docs/testing.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cdp_core.http import FakeClock, HttpFactory, set_default_factory
from cdp_core.plugins import Plugins
from cdp_core.store import SystemStore
from cdp_core.testing.conformance import (
    DestinationConformance,
    ForgetConformance,
    SourceConformance,
    TransformConformance,
)
from cdp_core.testing.fakes import (
    COLLECTOR_SERVICE,
    CollectConfig,
    CollectingDestination,
    Collector,
    ListSource,
    ListSourceConfig,
    ListStream,
    ListStreamConfig,
    UpsertCollectingDestination,
    kit_plugin,
)
from cdp_core.testing.helpers import (
    PluginSpec,
    installed_plugin,
    run_twice,
    load_test_plugins,
    make_context,
    make_records,
    read_keys,
    roundtrip,
    run_graph,
    store_url_for,
    to_toml,
)

if TYPE_CHECKING:
    import respx

__all__ = [
    "COLLECTOR_SERVICE",
    "CollectConfig",
    "CollectingDestination",
    "Collector",
    "DestinationConformance",
    "ForgetConformance",
    "ListSource",
    "ListSourceConfig",
    "ListStream",
    "ListStreamConfig",
    "RegisterPlugin",
    "SourceConformance",
    "TransformConformance",
    "UpsertCollectingDestination",
    "kit_plugin",
    "installed_plugin",
    "run_twice",
    "load_test_plugins",
    "make_context",
    "make_records",
    "read_keys",
    "roundtrip",
    "run_graph",
    "store_url_for",
    "to_toml",
]

RegisterPlugin = Callable[..., Plugins]
"""``register_plugin(obj, name=None, *, extra=()) -> Plugins``."""


@pytest.fixture
def cdp_plugins() -> Plugins:
    """A fresh plugin manager with the builtins only: entry points off, nothing disabled."""
    return load_test_plugins()


@pytest.fixture
def register_plugin() -> RegisterPlugin:
    """A function returning a NEW :class:`Plugins` with the builtins and the given plugin.

    ``register_plugin(obj, name=None, *, extra=())``: ``obj`` is a module or an
    instance with ``@cdp_core.hookimpl`` functions; ``name`` defaults to the
    module name (or ``cdp.testing`` for :data:`kit_plugin`); ``extra`` adds more
    plugin objects or (name, object) pairs to the same manager. Each call builds
    a new manager, so nothing outlives the test.
    """

    def register(obj: object, name: str | None = None, *, extra: Iterable[PluginSpec] = ()) -> Plugins:
        first: PluginSpec = (name, obj) if name is not None else obj
        return load_test_plugins(first, *extra)

    return register


@pytest.fixture
def cdp_store_url(tmp_path: Path) -> str:
    """``sqlite:///{tmp_path}/store.sqlite``: the store :func:`run_graph` uses too."""
    return store_url_for(tmp_path)


@pytest.fixture
def cdp_store(cdp_store_url: str) -> Iterator[SystemStore]:
    """A created :class:`SystemStore` (sync state, runs, quarantine) at ``cdp_store_url``."""
    store = SystemStore(cdp_store_url).create()
    yield store
    store.engine.dispose()


@pytest.fixture
def cdp_respx() -> Iterator[respx.Router]:
    """A respx router active for the test; an HTTP request it does not mock fails the test.

    Routes need not all be called (``assert_all_called=False``).
    """
    import respx  # a dev dependency: imported only when the fixture is used

    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


@pytest.fixture
def cdp_http() -> Iterator[HttpFactory]:
    """An :class:`~cdp_core.http.HttpFactory` that never really sleeps, also the default for the test.

    Its clock is a :class:`~cdp_core.http.FakeClock`: every sleep (backoff, ``Retry-After``,
    rate limit) is recorded in ``cdp_http.clock.sleeps`` and moves the clock on. Sources
    whose context has no ``"http"`` service (the conformance suite's) get it through
    ``client_for(context)``; pass it on with ``make_context(..., services={"http": cdp_http})``.
    """
    clock = FakeClock()
    factory = HttpFactory(sleep=clock.sleep, clock=clock)
    previous = set_default_factory(factory)
    yield factory
    set_default_factory(previous)


@pytest.fixture
def cdp_collector() -> Collector:
    """Gathers what ``collect`` destinations built by :func:`run_graph` receive (pass ``collector=``)."""
    return Collector()
