"""Segments and computed traits kept in the store: materialized values, membership with history, refresh.

Built on the segment engine (cdp_profiles/segments/): its queries say who is in a segment and what
each computed trait is; this package writes the answers into the store, set-based, and reads
them back for the commands, the 360° view and the segment streams (docs/segments.md).
"""
