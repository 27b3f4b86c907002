"""connectors.toml for a read command: ``[store]`` and the sections the command reads, nothing else.

``cdp profiles show``, ``cdp segments list`` and ``cdp nps`` read the store: they need its URL and
a few of the plugins' sections (``[identity]``, ``[consent]``...), not the connectors, the graphs or
the plugins' checks of the whole file, which load every source, transform and job. ``cdp validate``,
``cdp sync``, ``cdp run`` and the scheduler check the whole file (:func:`cdp_core.config.load_config`).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from pydantic import BaseModel, ValidationError

from cdp_core.base import PluginConfig
from cdp_core.config import (
    Config,
    ConfigError,
    ConfigIssue,
    RootConfig,
    StoreConfig,
    _interpolate,
    _is_secret,
    _register_secrets,
    _unknown_section,
    read_toml,
)
from cdp_core.keypaths import PathPart, format_path, validation_messages
from cdp_core.plugins import Plugins
from cdp_core.secrets import Redactor
from cdp_core.storeurl import check_store_url
from cdp_core.tomllines import Locator


def load_sections(
    path: str | os.PathLike[str],
    plugins: Plugins,
    names: Collection[str],
    env: dict[str, str] | None = None,
) -> Config:
    """Read connectors.toml for a read command: ``[store]`` and the plugins' sections ``names`` only.

    No connector, graph or plugin check is loaded (``cdp validate``, ``cdp sync`` and ``cdp run``
    check the whole file): a read command needs the store and the sections it reads, and a
    problem anywhere else does not stop it. A problem in those is a :class:`ConfigError` as usual.
    ``Config.sections`` holds ``names`` (a registered absent one at its defaults).
    """
    file = Path(path)
    env = dict(os.environ) if env is None else env
    text, raw = read_toml(file)
    locate = Locator(text)
    wanted = ("store", *names)
    redact = Redactor()
    secret_paths: set[tuple[PathPart, ...]] = set()
    found: list[ConfigIssue] = []
    raw = _interpolate(raw, (), env, redact, secret_paths, found)  # every ${ENV} value is redacted, read or not
    issues = [issue for issue in found if issue.parts[:1] and issue.parts[0] in wanted]
    for issue in issues:
        issue.line = locate(issue.parts)
    missing_paths = {issue.parts for issue in issues}

    def add_validation_errors(exc: ValidationError, key: str, model: type[BaseModel]) -> None:
        hide = lambda loc: _is_secret(loc, secret_paths)  # noqa: E731
        for loc, message in validation_messages(exc.errors(include_url=False), (key,), hide, model):
            if not any(loc[: len(m)] == m or m[: len(loc)] == loc for m in missing_paths):
                issues.append(ConfigIssue(format_path(loc), message, locate(loc)))

    root = RootConfig()
    if "store" in raw:
        try:
            root.store = StoreConfig.model_validate(raw["store"])
        except ValidationError as exc:
            add_validation_errors(exc, "store", StoreConfig)
    if not any(issue.path.split(".")[0] == "store" for issue in issues):
        problem = check_store_url(root.store.url, file.absolute().parent)
        if problem:
            issues.append(ConfigIssue("store.url", problem, locate(("store", "url"))))
    sections: dict[str, PluginConfig] = {}
    registered = plugins.section_models(names)
    warnings: list[ConfigIssue] = []
    for name in names:
        model = registered.get(name)
        if model is None:
            if name in raw:
                issues.append(ConfigIssue(format_path((name,)), _unknown_section(plugins, name), locate((name,))))
            continue
        try:
            sections[name] = model.model_validate(raw[name]) if name in raw else model()
        except ValidationError as exc:
            add_validation_errors(exc, name, model)
            continue
        _register_secrets(sections[name], (name,), redact, secret_paths, warnings, locate)
    if issues:
        issues.sort(key=lambda i: i.line or 0)
        for issue in issues:
            issue.message = redact(issue.message)
        raise ConfigError(str(file), issues)
    return Config(path=file, root=root, connectors={}, redact=redact, text=text, sections=sections)
