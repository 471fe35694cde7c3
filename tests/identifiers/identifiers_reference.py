"""Independent restatements of the check-digit rules, so tests do not trust the code under test."""


def luhn_valid(number: str) -> bool:
    # ISO/IEC 7812-1 Annex B, stated as a check over the whole number: double every
    # second digit counting from the right (the check digit is not doubled).
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
        total += digit
    return total % 10 == 0


def mod97_valid(number: str) -> bool:
    # ISO/IEC 7064 MOD 97-10 as used by GSMA SGP.29: the number mod 97 is 1.
    return int(number) % 97 == 1
