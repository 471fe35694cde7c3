"""The relational schema, as SQLAlchemy Core tables.

Every row that belongs to a tenant carries `org_id`, and every query in the
repositories filters on it: that is how org isolation is enforced. Alembic
migrations under `migrations/versions` must produce exactly this metadata (a test
compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names keep migrations portable between SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite would otherwise return naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# An id that is an auto-incrementing BIGINT on PostgreSQL and a rowid alias on SQLite.
SerialId = BigInteger().with_variant(Integer(), "sqlite")

ID = 32  # uuid4 hex

orgs = Table(
    "orgs",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("slug", String(64), nullable=False, unique=True),
    Column("tofu_binding", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime, nullable=False),
)

identities = Table(
    "identities",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("email", String(320)),
    Column("external_id", String(200)),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("org_id", "email"),
    UniqueConstraint("org_id", "external_id"),
)

groups = Table(
    "groups",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("org_id", "name"),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", String(ID), ForeignKey("groups.id"), primary_key=True),
    Column("identity_id", String(ID), ForeignKey("identities.id"), primary_key=True),
)

fleets = Table(
    "fleets",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("org_id", "name"),
)

fleet_members = Table(
    "fleet_members",
    metadata,
    Column("fleet_id", String(ID), ForeignKey("fleets.id"), primary_key=True),
    Column("identity_id", String(ID), ForeignKey("identities.id"), primary_key=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("identity_id", String(ID), ForeignKey("identities.id")),
    # SHA-256 of the token: tokens carry 256 random bits, so a plain hash is enough.
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("imei", String(15), nullable=False),
    Column("eid", String(32)),
    Column("owner_id", String(ID), ForeignKey("identities.id")),
    Column("name", String(200), nullable=False, default=""),
    # What an MDM names the device by when it reports posture without an IMEI (issue 17).
    Column("serial_number", String(64)),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("org_id", "imei"),
    UniqueConstraint("org_id", "serial_number"),
)

stock_imports = Table(
    "stock_imports",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False, index=True),
    Column("filename", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("imported", Integer, nullable=False),
    Column("errors", JSON, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

sims = Table(
    "sims",
    metadata,
    Column("id", SerialId, primary_key=True, autoincrement=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    # ICCID and IMSI are unique across orgs: a SIM exists once, and the AAA looks it up by IMSI.
    Column("iccid", String(20), nullable=False, unique=True),
    Column("imsi", String(15), nullable=False, unique=True),
    Column("msisdn", String(15), unique=True),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("identity_id", String(ID), ForeignKey("identities.id")),
    Column("device_id", String(ID), ForeignKey("devices.id")),
    Column("bound_at", UtcDateTime),
    Column("k_sealed", LargeBinary, nullable=False),
    Column("opc_sealed", LargeBinary, nullable=False),
    Column("pin_sealed", LargeBinary),
    Column("puk_sealed", LargeBinary),
    Column("import_id", String(ID), ForeignKey("stock_imports.id")),
    # SEQ_HE of TS 33.102 Annex C: advanced atomically by every vector issued.
    Column("sqn_seq", BigInteger, nullable=False, default=0, server_default="0"),
    # SIM signals for policy (issue 17): when this SIM replaced another for its subscriber
    # (eSIM re-issue, SIM swap), and since when a clone is suspected (NULL: not).
    Column("swapped_at", UtcDateTime),
    Column("clone_suspected_at", UtcDateTime),
    # The end of the org's cooling-off after that swap (issue 19): `sim.swap_recent` holds
    # until then. Fixed when the swap happens, so a later change of the setting does not
    # reopen or shorten a swap already made.
    Column("swap_recent_until", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "org_id", "iccid"),
    Index(None, "org_id", "state", "iccid"),
    Index(None, "org_id", "identity_id"),
    Index(None, "device_id"),
)

events = Table(
    "events",
    metadata,
    Column("id", SerialId, primary_key=True, autoincrement=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("time", UtcDateTime, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("payload", JSON, nullable=False),
    Index(None, "org_id", "id"),
    Index(None, "org_id", "kind", "id"),
    Index(None, "org_id", "subject", "id"),
    Index(None, "org_id", "time"),
)

# Home-network key pairs for SUCI deconcealment (TS 33.501 Annex C). `id` is the
# home network public key identifier the UE puts in the SUCI (0..255).
home_network_keys = Table(
    "home_network_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("scheme", Integer, nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("private_sealed", LargeBinary, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# Which columns hold sealed secrets, and which column of the same row is their
# associated data: key rotation re-wraps exactly these.
SEALED_COLUMNS: tuple[tuple[Table, str, tuple[str, ...]], ...] = (
    (sims, "iccid", ("k_sealed", "opc_sealed", "pin_sealed", "puk_sealed")),
    (home_network_keys, "id", ("private_sealed",)),
)


# -- eSIM onboarding (issue 4) --------------------------------------------------------------

# One order per eSIM profile: the activation code handed to an employee and its progress
# as the SM-DP+ reports it. The matching ID is a bearer secret: looked up by its SHA-256,
# kept sealed (associated data: the order id) so onboarding packs can be re-rendered.
esim_orders = Table(
    "esim_orders",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("identity_id", String(ID), ForeignKey("identities.id"), nullable=False),
    Column("iccid", String(20), ForeignKey("sims.iccid"), nullable=False, unique=True),
    Column("eid", String(32)),
    Column("state", String(16), nullable=False),
    Column("smdp_address", String(253), nullable=False),
    Column("smdp_oid", String(200)),
    Column("matching_id_hash", LargeBinary(32), nullable=False, unique=True),
    Column("matching_id_sealed", LargeBinary, nullable=False),
    # SHA-256 of the confirmation code: the form ES2+ hands to the SM-DP+ (SGP.22 §5.3.2).
    Column("confirmation_hash", LargeBinary(32)),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("replaces_id", String(ID)),
    Column("replaced_by", String(ID)),
    Column("reason", Text, nullable=False, default=""),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "org_id", "identity_id"),
    Index(None, "org_id", "state", "id"),
)

SEALED_COLUMNS = (*SEALED_COLUMNS, (esim_orders, "id", ("matching_id_sealed",)))


# -- RADIUS AAA: gateways, IP pools and leases, the session table (issue 5) -----------------

# A packet gateway (PGW/GGSN/SMF) that may ask the AAA server. `address` is an IP address or
# a prefix; the shared secret is sealed (associated data: the gateway id).
radius_gateways = Table(
    "radius_gateways",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    # Unique across orgs: a datagram's source address names exactly one client.
    Column("address", String(64), nullable=False, unique=True),
    Column("secret_sealed", LargeBinary, nullable=False),
    Column("apns", JSON, nullable=False),
    Column("require_message_authenticator", Boolean, nullable=False, default=True),
    Column("coa_port", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("org_id", "name"),
)

# One address pool per org: dynamic addresses come from `cidr`, static ones from `static_cidr`.
ip_pools = Table(
    "ip_pools",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False, unique=True),
    Column("cidr", String(64), nullable=False),
    Column("static_cidr", String(64)),
    Column("created_at", UtcDateTime, nullable=False),
)

# Blocks of a pool's dynamic range claimed by one AAA process: the unique constraint is what
# keeps two processes from handing out the same address.
ip_blocks = Table(
    "ip_blocks",
    metadata,
    Column("id", SerialId, primary_key=True, autoincrement=True),
    Column("pool_id", String(ID), ForeignKey("ip_pools.id"), nullable=False),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("start", String(45), nullable=False),
    Column("owner", String(ID), nullable=False),
    Column("claimed_at", UtcDateTime, nullable=False),
    UniqueConstraint("pool_id", "start"),
)

# A SIM's address: stable (kept across sessions), one per SIM and pool, one SIM per address.
ip_leases = Table(
    "ip_leases",
    metadata,
    Column("id", SerialId, primary_key=True, autoincrement=True),
    Column("pool_id", String(ID), ForeignKey("ip_pools.id"), nullable=False),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("address", String(45), nullable=False),
    Column("imsi", String(15), nullable=False),
    Column("static", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("pool_id", "address"),
    UniqueConstraint("pool_id", "imsi"),
)

# One row per accounting session (gateway, Acct-Session-Id): UE address <-> SIM <-> identity
# <-> device <-> gateway, with location and RAT. `stopped_at` is NULL while it is live.
radius_sessions = Table(
    "radius_sessions",
    metadata,
    Column("id", SerialId, primary_key=True, autoincrement=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("gateway_id", String(ID), nullable=False),
    Column("acct_session_id", String(253), nullable=False),
    Column("nas_address", String(45), nullable=False),
    Column("imsi", String(15)),
    Column("iccid", String(20)),
    Column("identity_id", String(ID)),
    Column("device_id", String(ID)),
    Column("imei", String(16)),
    Column("ue_address", String(45)),
    Column("apn", String(253)),
    Column("rat", String(32)),
    Column("location", JSON),
    Column("started_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("stopped_at", UtcDateTime),
    Column("stop_cause", String(64)),
    UniqueConstraint("gateway_id", "acct_session_id"),
    Index(None, "org_id", "stopped_at", "id"),
    Index(None, "org_id", "ue_address"),
    Index(None, "imsi"),
)

# How far into each accounting journal file (`ztsim.radius.serve.journal`) the committed
# records reach, written in the same transaction as they are.
radius_journals = Table(
    "radius_journals",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("applied", BigInteger, nullable=False),
)

SEALED_COLUMNS = (*SEALED_COLUMNS, (radius_gateways, "id", ("secret_sealed",)))


# -- DNS gateway: org DNS settings, ordered rules, block lists, DoH device tokens (issue 6) -

# One row per org that changed its DNS settings; the gateway's defaults apply without one.
dns_settings = Table(
    "dns_settings",
    metadata,
    Column("org_id", String(ID), ForeignKey("orgs.id"), primary_key=True),
    Column("block_answer", String(16), nullable=False),
    Column("block_page_ipv4", String(45)),
    Column("block_page_ipv6", String(45)),
    Column("privacy", String(16), nullable=False),
    Column("pseudonymise", Boolean, nullable=False, default=False),
    Column("allow_list_only_fleets", JSON, nullable=False),
    # CIDRs whose sources without a session get the org's policy (else they are refused).
    Column("networks", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# A block list: uploaded text, or a URL refreshed with conditional GET; `content` is the
# last good copy (a failed refresh keeps it and records `refresh_error`).
dns_lists = Table(
    "dns_lists",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("format", String(16)),
    Column("url", String(2000)),
    Column("content", Text, nullable=False, default=""),
    Column("etag", String(200)),
    Column("last_modified", String(100)),
    Column("good_lines", Integer, nullable=False, default=0),
    Column("bad_lines", Integer, nullable=False, default=0),
    Column("bad_samples", JSON, nullable=False),
    Column("refreshed_at", UtcDateTime),
    Column("refresh_error", Text, nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("org_id", "name"),
)

# The secret of a per-device DoH URL (/dns-query/<token>), looked up by its SHA-256.
dns_device_tokens = Table(
    "dns_device_tokens",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("device_id", String(ID), ForeignKey("devices.id"), nullable=False),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    Index(None, "org_id", "device_id"),
)


# -- The change feed (issue 15): one row per committed change that a plane must apply -----

# Written in the transaction of the change itself; read by every gateway in `seq` order.
# `seq` never goes backwards in commit order (see `ztsim.feed.outbox`), and SQLite's
# AUTOINCREMENT never reuses a number after the oldest rows are pruned.
change_outbox = Table(
    "change_outbox",
    metadata,
    Column("seq", SerialId, primary_key=True, autoincrement=True),
    Column("org_id", String(ID), nullable=False),
    Column("topic", String(32), nullable=False),
    Column("key", String(200), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "created_at"),
    sqlite_autoincrement=True,
)

# One row: the highest sequence number pruned away. A follower behind it missed changes
# and loads a fresh snapshot instead (numbers can have holes, so a gap alone says nothing).
change_feed_state = Table(
    "change_feed_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("pruned_through", BigInteger, nullable=False),
)


# -- Policy (issue 17): rules of every plane, named posture checks, device posture ---------

# Rules in evaluation order per org and plane (`position`, lowest first); `spec` holds the
# subject selectors and the plane's target (`ztsim.policy.rules`). The DNS plane's rules
# were `dns_rules` before migration 0006.
policy_rules = Table(
    "policy_rules",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("plane", String(16), nullable=False),
    Column("name", String(100), nullable=False),
    Column("position", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("org_id", "plane", "name"),
    Index(None, "org_id", "plane", "position"),
)

# A named condition over device posture (`device.managed and device.os_version >= "17.0"`)
# that rules require; a report older than `max_age_s` fails it.
posture_checks = Table(
    "posture_checks",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("expression", String(500), nullable=False),
    Column("max_age_s", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("org_id", "name"),
)

# The last posture report per device (an MDM's view of it), replaced by each newer one.
device_posture = Table(
    "device_posture",
    metadata,
    Column("device_id", String(ID), ForeignKey("devices.id"), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False, index=True),
    Column("source", String(32), nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("observed_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime),
    Column("received_at", UtcDateTime, nullable=False),
)


# -- Risk (issue 19): number history, approvals, detectors, CAMARA exposure ----------------

# Every change of the SIM or the device behind a number (MSISDN), as CAMARA SIM Swap and
# Device Swap define them: `kind` "sim" when the number moves to another SIM (re-issue,
# replacement, a new subscription: `previous` NULL), "device" when the number's SIM is
# seen in another device (`previous` NULL: its first device). `iccid` is the SIM on the
# number after the change; `previous` and `current` are ICCIDs or IMEIs by kind.
number_changes = Table(
    "number_changes",
    metadata,
    Column("id", SerialId, primary_key=True, autoincrement=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("msisdn", String(15), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("iccid", String(20), nullable=False),
    Column("previous", String(20)),
    Column("current", String(20), nullable=False),
    Index(None, "org_id", "msisdn", "kind", "at"),
    sqlite_autoincrement=True,
)

# Per org: the two-person rule, the cooling-off after a swap, how long number history is
# kept (CAMARA's monitored period), and the response chosen per detector.
risk_settings = Table(
    "risk_settings",
    metadata,
    Column("org_id", String(ID), ForeignKey("orgs.id"), primary_key=True),
    Column("approval_required", Boolean, nullable=False),
    Column("cooling_off_s", Integer, nullable=False),
    Column("monitored_days", Integer, nullable=False),
    # detector name -> {"response": "alert"|"restrict"|"suspend", and its parameters}
    Column("detectors", JSON, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# A swap (eSIM re-issue, SIM replacement) waiting for a second admin when the org asks
# for one. `requester` is who asked, as the person behind the token (their identity) or
# the token itself; the approver must be someone else.
swap_requests = Table(
    "swap_requests",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("target", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("requester", String(200), nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("decided_by", String(200)),
    Column("decided_at", UtcDateTime),
    Column("result", JSON),
    Index(None, "org_id", "state", "requested_at"),
)

# What a detector found and the response applied: one row per (detector, source event),
# so a signal read twice (a restart, an overlapping read) is acted on once.
risk_findings = Table(
    "risk_findings",
    metadata,
    Column("id", SerialId, primary_key=True, autoincrement=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("detector", String(32), nullable=False),
    Column("source_event_id", BigInteger, nullable=False),
    Column("iccid", String(20), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("response", String(16), nullable=False),
    Column("detail", JSON, nullable=False),
    UniqueConstraint("detector", "source_event_id"),
    Index(None, "org_id", "at"),
)

# Where a background reader of the risk context got to (events read by the detectors,
# number changes read by the notifier), by reader name.
risk_cursors = Table(
    "risk_cursors",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# An API consumer (an IdP, a bank's fraud check) registered by an admin: OAuth 2.0 client
# credentials (RFC 6749 §4.4). The secret is stored as a hash only; `phone_number` set
# makes its tokens "3-legged": bound to that one number.
api_clients = Table(
    "api_clients",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", LargeBinary(32), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("phone_number", String(16)),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)

# Access tokens issued to API clients, stored as SHA-256 hashes with their grant.
oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("client_id", String(64), ForeignKey("api_clients.id"), nullable=False, index=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("phone_number", String(16)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)

# CAMARA SIM Swap Subscriptions 0.3.0: who is told when a number's SIM changes.
camara_subscriptions = Table(
    "camara_subscriptions",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("client_id", String(64), ForeignKey("api_clients.id"), nullable=False),
    Column("phone_number", String(16), nullable=False),
    Column("types", JSON, nullable=False),
    Column("sink", String(2048), nullable=False),
    # The sink's bearer credential, sealed like K and OPc (it is the subscriber's secret).
    Column("sink_credential_sealed", LargeBinary),
    Column("config", JSON, nullable=False),
    Column("max_events", Integer),
    Column("expires_at", UtcDateTime),
    Column("events_sent", Integer, nullable=False, default=0),
    Column("state", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime),
    Column("ended_reason", String(64)),
    Index(None, "org_id", "phone_number", "state"),
)

SEALED_COLUMNS = (*SEALED_COLUMNS, (camara_subscriptions, "id", ("sink_credential_sealed",)))

# CloudEvents waiting to reach their sink, retried with backoff until delivered or given
# up. One per (subscription, source): a number change read twice is sent once.
camara_deliveries = Table(
    "camara_deliveries",
    metadata,
    Column("id", SerialId, primary_key=True, autoincrement=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("subscription_id", String(ID), ForeignKey("camara_subscriptions.id"), nullable=False),
    Column("source", String(64), nullable=False),
    Column("event", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", String(200)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime),
    UniqueConstraint("subscription_id", "source"),
    Index(None, "state", "next_attempt_at"),
)


# -- Private connectivity (issue 20): sites and the networks behind them -----------------

# A site is where a tunnel from the ztsim gateway ends (an office, a data centre, a VPC's
# edge): its underlay `endpoint` address and UDP `port`, and the `vni` that names the
# tunnel (RFC 8926 §3.4: 24 bits). A VNI is one tunnel on a gateway: unique across orgs.
net_sites = Table(
    "net_sites",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("tunnel", String(16), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("port", Integer, nullable=False),
    Column("vni", Integer, nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # Geneve's inner protocol: "ip" (bare IPv4/IPv6) or "ethernet" (frames, for Open
    # vSwitch), then the MAC behind the site's end that the frames go to (ethernet only).
    Column("inner", String(16), nullable=False, default="ip", server_default="ip"),
    Column("site_mac", String(17), nullable=True),
    UniqueConstraint("org_id", "name"),
)

# A named private network behind a site: traffic from a SIM's address to `cidr` is
# judged by the `network` rules of the SIM's policy class and, if allowed, carried over
# the site's tunnel. A claim on the address space behind the gateway: checked across orgs.
net_networks = Table(
    "net_networks",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("orgs.id"), nullable=False),
    Column("site_id", String(ID), ForeignKey("net_sites.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("cidr", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("org_id", "name"),
)
