"""A forgotten person's audience member keys (cdp_profiles/privacy/audience_keys.py) are the keys this plugin uses."""

from __future__ import annotations

from cdp_profiles.audiences import PersonFields
from cdp_profiles.privacy.audience_keys import member_keys

from cdp_meta_audiences.normalize import member


def test_forget_derives_the_member_key_meta_uses() -> None:
    for fields, identifiers in (
        ({"email": "Jo.Doe@Example.org", "phone": "+49 171 1234567"}, [("email", "jo.doe@example.org")]),
        ({"phone": "0171 1234567"}, [("phone", "+491711234567")]),
    ):
        made = member(PersonFields(fields), ["EMAIL", "PHONE", "FN"])
        assert not isinstance(made, str)
        assert made[0] in member_keys(identifiers, {})
