"""phone.sender_key skips phonenumbers for E.164 input: that is only right if phonenumbers would give
back the very same string, so check it for every region's example numbers of every kind."""
from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from router.definition import phone

KINDS = [PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.TOLL_FREE,
         PhoneNumberType.VOIP, PhoneNumberType.PAGER, PhoneNumberType.UAN, PhoneNumberType.PERSONAL_NUMBER]


def example_numbers():
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in KINDS:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                yield phonenumbers.format_number(example, PhoneNumberFormat.E164)


def test_e164_numbers_are_their_own_normal_form():
    numbers = list(example_numbers())
    assert len(numbers) > 800
    for number in numbers:
        assert phone.sender_key(number) == (phone.normalise_sender(number) or number) == number


@pytest.mark.parametrize("raw, expected", [
    ("07400 123456", "+447400123456"), ("+44 7400 123456", "+447400123456"),
    ("00447400123456", "+447400123456"), ("anonymous", "anonymous"), ("", ""), (None, ""),
    ("+447400123456", "+447400123456"), ("+4474001234567890", "+4474001234567890")])
def test_other_forms_are_normalised_as_before(raw, expected):
    assert phone.sender_key(raw) == expected
