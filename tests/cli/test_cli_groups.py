"""`ztsim groups` and `ztsim fleets`: by name, members by email or name."""

from __future__ import annotations

from collections.abc import Callable

Cli = Callable[..., tuple[int, str]]


def test_groups_by_name_and_members_by_email_or_name(cli: Cli, org: list[str]) -> None:
    cli("identities", "create", "--name", "Ann Lee", "--email", "ann@example.test")
    cli("identities", "create", "--name", "Bo Chen", "--email", "bo@example.test")
    assert cli("groups", "create", "Sales")[0] == 0
    code, output = cli("groups", "add", "Sales", "ann@example.test", "Bo Chen")
    assert code == 0, output
    assert "Group Sales has 2 members." in output
    code, output = cli("groups", "list")
    assert "ann@example.test, bo@example.test" in output
    assert "1 group" in output
    assert "1 groups" not in output
    code, output = cli("groups", "add", "Marketing", "Ann Lee")
    assert code == 1
    assert "no group named 'Marketing'" in output
    # A fleet is not a group: the same name is looked up among fleets only.
    code, output = cli("fleets", "add", "Sales", "Ann Lee")
    assert code == 1
    assert "no fleet named 'Sales'" in output


def test_ambiguous_name_is_refused_and_adds_nobody(cli: Cli, org: list[str]) -> None:
    cli("identities", "create", "--name", "Sam", "--email", "sam1@example.test")
    cli("identities", "create", "--name", "Sam", "--email", "sam2@example.test")
    cli("identities", "create", "--name", "Kim", "--kind", "service")
    cli("fleets", "create", "Meters")
    code, output = cli("fleets", "add", "Meters", "Kim", "Sam")
    assert code == 1
    assert "2 identities are named 'Sam'" in output
    code, output = cli("fleets", "list")
    assert "Kim" not in output
    assert "1 fleet" in output


def test_remove_members_all_or_none(cli: Cli, org: list[str]) -> None:
    for name, email in (("Ann Lee", "ann@example.test"), ("Bo Chen", "bo@example.test")):
        assert cli("identities", "create", "--name", name, "--email", email)[0] == 0
    assert cli("groups", "create", "Sales")[0] == 0
    assert cli("groups", "add", "Sales", "Ann Lee", "Bo Chen")[0] == 0
    code, output = cli("groups", "remove", "Sales", "Bo Chen", "nobody@example.test")
    assert code == 1
    assert output == "error: no identity 'nobody@example.test' in this org\n"
    assert "ann@example.test, bo@example.test" in cli("groups", "list")[1]
    cli("identities", "create", "--name", "Cy", "--email", "cy@example.test")
    code, output = cli("groups", "remove", "Sales", "bo@example.test", "Cy")
    assert code == 1
    assert "not a member" in output
    assert "ann@example.test, bo@example.test" in cli("groups", "list")[1]  # Bo stays
    code, output = cli("groups", "remove", "Sales", "bo@example.test", "Ann Lee")
    assert (code, output) == (0, "Group Sales has 0 members.\n")
    cli("identities", "create", "--name", "Kim", "--kind", "service")
    cli("fleets", "create", "Meters")
    cli("fleets", "add", "Meters", "Kim")
    assert cli("fleets", "remove", "Meters", "Kim") == (0, "Fleet Meters has 0 members.\n")
