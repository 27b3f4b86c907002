"""A forgotten person's audience member keys (cdp_profiles/privacy/audience_keys.py) are the keys this plugin uses."""

from __future__ import annotations

from cdp_profiles.audiences import PersonFields
from cdp_profiles.privacy.audience_keys import member_keys

from cdp_google_ads.normalize import member


def test_forget_derives_the_member_key_google_uses() -> None:
    address = {"first_name": " Zoë ", "last_name": "Doe", "country": "Germany", "zip": "10115"}
    for fields, identifiers, traits in (
        ({"email": "Jo.Doe@GMail.com", "phone": "+49 171 1234567"}, [("email", "jo.doe@gmail.com")], {}),
        ({"phone": "0171 1234567"}, [("phone", "+491711234567")], {}),
        (address, [("hubspot_id", "42")], address),
    ):
        made = member(PersonFields(fields))
        assert not isinstance(made, str)
        assert made[0] in member_keys(identifiers, traits)
