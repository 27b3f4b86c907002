"""Builtin plugins: registered through the same hooks as any external plugin."""
