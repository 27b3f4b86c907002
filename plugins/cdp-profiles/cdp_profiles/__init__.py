"""cdp-profiles: the profile product of cdp, as a plugin.

Identity resolution into one profile per person, the profile store (a destination
and a source of the kernel's sync graphs), traits, the Net Promoter Score and its
report, and audience mirrors for ad platforms. The kernel (``cdp_core``) knows none
of it: everything is registered in :mod:`cdp_profiles.plugin`.
"""

__version__ = "0.1.0"
