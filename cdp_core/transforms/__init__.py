"""Builtin transforms (registered through ``cdp_register_transforms`` like any plugin's)."""
