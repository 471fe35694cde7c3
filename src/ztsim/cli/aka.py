"""`ztsim aka`: authentication vectors for debugging an attach, and home-network keys."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from ztsim.aka.kdf import serving_network_name
from ztsim.cli.common import (
    ConfigOpt,
    DataDirOpt,
    OrgOpt,
    err,
    fail,
    org_transaction,
    out,
    platform_for,
    say_error,
)
from ztsim.clock import utc_now
from ztsim.errors import ZtsimError
from ztsim.inventory import repository as inventory
from ztsim.udm import hn_keys, service

app = typer.Typer(help="3GPP authentication (UDM/ARPF).", no_args_is_help=True)
keys_app = typer.Typer(help="Home-network keys for SUCI.", no_args_is_help=True)
app.add_typer(keys_app, name="hn-key")


@app.command("vector")
def vector(
    iccid: str,
    snn: Annotated[
        str | None,
        typer.Option("--snn", help="Serving network name (default: from the IMSI's PLMN)."),
    ] = None,
    node: Annotated[
        str, typer.Option("--node", help="Serving node id (picks the SQN slot).")
    ] = "cli",
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Issue one 5G HE vector for a SIM, as an AUSF would get it (advances its SQN)."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        sim = inventory.get_sim(conn, org_id, iccid)
        name = snn or serving_network_name(sim.imsi[:3], sim.imsi[3:5])
        result = service.generate(
            conn,
            platform.sealer,
            org_id,
            sim.imsi,
            serving_network_name=name,
            node_id=node,
            now=utc_now(),
            rand=os.urandom,
        )
    if isinstance(result, service.Refusal):
        err.print(f"[red]refused:[/red] {result.reason}", soft_wrap=True)
        raise typer.Exit(1)
    v = result.vector
    table = Table("field", "value", title=f"5G HE AV for {result.supi} ({name})")
    for label, value in (
        ("SQN", f"{result.sqn:012x}"),
        ("RAND", v.rand.hex()),
        ("AUTN", v.autn.hex()),
        ("XRES*", v.xres_star.hex()),
        ("HXRES*", v.hxres_star.hex()),
        ("KAUSF", v.kausf.hex()),
    ):
        table.add_row(label, value)
    out.print(table)


@keys_app.command("create")
def hn_key_create(
    key_id: Annotated[
        int, typer.Option("--id", min=0, max=255, help="Home network public key identifier.")
    ],
    profile: Annotated[str, typer.Option("--profile", help="A (X25519) or B (secp256r1).")] = "A",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a home-network key pair; prints the public key to provision on USIMs."""
    platform = platform_for(config, data_dir)
    if profile.upper() not in hn_keys.SCHEMES:
        say_error("--profile is A or B")
        raise typer.Exit(2)
    try:
        with platform.engine.begin() as conn:
            key = hn_keys.create(
                conn,
                platform.sealer,
                key_id=key_id,
                scheme=hn_keys.SCHEMES[profile.upper()],
                now=utc_now(),
                random=os.urandom,
            )
    except ZtsimError as exc:
        raise fail(exc) from None
    out.print(f"Home network key {key.id} (Profile {profile.upper()}), public key:")
    out.print(key.public_key.hex(), markup=False, highlight=False)


@keys_app.command("list")
def hn_key_list(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List home-network keys (public halves only)."""
    platform = platform_for(config, data_dir)
    with platform.engine.begin() as conn:
        keys = hn_keys.list_keys(conn)
    table = Table("id", "profile", "active", "public key")
    for k in keys:
        table.add_row(
            str(k.id),
            "A" if k.scheme == 1 else "B",
            "yes" if k.active else "no",
            k.public_key.hex(),
        )
    out.print(table)


@keys_app.command("retire")
def hn_key_retire(key_id: int, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Stop deconcealing SUCIs made with this key."""
    platform = platform_for(config, data_dir)
    try:
        with platform.engine.begin() as conn:
            hn_keys.retire(conn, key_id)
    except ZtsimError as exc:
        raise fail(exc) from None
    out.print(f"Home network key {key_id} retired.")
