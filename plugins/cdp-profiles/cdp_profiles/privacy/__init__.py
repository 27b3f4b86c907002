"""Privacy: forget, suppress and export a person, carried to destinations; retention (docs/privacy.md).

Its tables are in cdp_profiles/store/privacy_models.py.

- :mod:`.config`: the ``[privacy]`` section (the privacy key, retention);
- :mod:`.keys`: keyed hashes of identifiers (suppression list, audit log) and sealed payloads;
- :mod:`.person`: everything that identifies one person in the store, found from any identifier.
"""
