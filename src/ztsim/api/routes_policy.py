"""The org's policy across planes: posture checks, network and attach rules, the whole
policy as one document (export, apply, dry run), and `explain`.

Admins write; operators, analysts and auditors read. The `dns` plane's rules are listed
here with the others but written as DNS rules (/api/v1/dns/rules): creating, replacing or
deleting one here is a 409 that says so; the policy document replaces them too. Explain
is open to every reading role and to a `self` token about itself only (any other subject
does not exist for it). Each change is a use case of `ztsim.policy.store`; what only the
DNS plane can check is `policy_dns`, and explain's lookups are `policy_explain` (the CLI's too).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel, Field, StringConstraints

from ztsim.api.deps import Ctx, require
from ztsim.api.schemas import Request
from ztsim.dns.store.explained import explanations, find_subjects
from ztsim.dns.store.policy_check import dns_check
from ztsim.errors import InvalidInput, NotFound
from ztsim.identity.roles import Permission, Principal, Role
from ztsim.policy import diff as policy_diff
from ztsim.policy import document as doc
from ztsim.policy.checks import PostureCheck
from ztsim.policy.durations import format_duration, parse_duration
from ztsim.policy.rules import Plane, PolicyRule
from ztsim.policy.store import apply as store
from ztsim.policy.store import checks as check_store
from ztsim.policy.store import facts
from ztsim.policy.store import rules as rule_store

router = APIRouter()
PolicyRead = Annotated[Principal, Depends(require(Permission.POLICY_READ))]
PolicyWrite = Annotated[Principal, Depends(require(Permission.POLICY_WRITE))]
PolicyExplain = Annotated[Principal, Depends(require(Permission.POLICY_EXPLAIN))]
CheckName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Duration = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}[smhd]$")]
Item = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Items = Annotated[list[Item], Field(default_factory=list, max_length=10_000)]
_SPEC_FIELDS = ("plane", "name", "action", "position")


class CheckIn(Request):
    name: CheckName
    expression: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    max_age: Duration = Field(default="24h", description="90s, 15m, 24h, 7d: older reports fail.")

    def to_check(self) -> PostureCheck:
        return PostureCheck(self.name, self.expression, parse_duration(self.max_age))


class CheckOut(BaseModel):
    id: str
    name: str
    expression: str
    max_age: str
    created_at: datetime
    updated_at: datetime


class RuleIn(Request):
    """A rule in its flat form; only its plane's target fields are accepted."""

    plane: Plane
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    action: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    position: int | None = Field(default=None, ge=0, le=1_000_000)
    identities: Items
    groups: Items
    fleets: Items
    sim_kinds: Items
    identity_kinds: Items
    posture: Items
    sim: Items
    domains: Items
    lists: Items
    categories: Items
    qtypes: Annotated[
        list[Annotated[int, Field(ge=1, le=65535)]], Field(default_factory=list, max_length=50)
    ]
    answer: Items
    cidrs: Items
    protocol: Annotated[str, StringConstraints(max_length=8)] | None = None
    ports: Items
    apns: Items

    def to_rule(self) -> PolicyRule:
        spec = {k: getattr(self, k) for k in self.model_fields_set if k not in _SPEC_FIELDS}
        return PolicyRule.from_spec(self.plane.value, self.name, self.action, spec)


class RuleOut(BaseModel):
    id: str
    plane: Plane
    name: str
    position: int
    action: str
    spec: dict[str, Any] = Field(description="The rule's selectors, requirements and target.")
    created_at: datetime
    updated_at: datetime


class ApplyOut(BaseModel):
    applied: bool = Field(description="False for a dry run, or a document already in force.")
    revision: str
    counts: dict[str, int]
    diff: dict[str, Any]


class ExplainOut(BaseModel):
    subject: str
    plane: Plane
    explanations: list[dict[str, Any]] = Field(description="One per SIM of the subject.")


def _check_out(s: check_store.StoredCheck) -> CheckOut:
    return CheckOut(
        id=s.id,
        name=s.name,
        expression=s.check.expression,
        max_age=format_duration(s.check.max_age),
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


def _rule_out(s: rule_store.StoredPolicyRule) -> RuleOut:
    return RuleOut(
        id=s.id,
        plane=s.plane,
        name=s.name,
        position=s.position,
        action=s.rule.action,
        spec=s.rule.to_spec(),
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


# -- checks --------------------------------------------------------------------------------


@router.get("/policy/checks", tags=["policy"])
def list_checks(ctx: Ctx, p: PolicyRead) -> list[CheckOut]:
    """The org's named posture checks: each a condition on a device's posture report
    (`device.managed and device.os_version >= "17.0"`) and the oldest report it accepts
    (`max_age`). Admins, operators, analysts and auditors (`policy:read`)."""
    with ctx.read() as conn:
        return [_check_out(s) for s in check_store.list_checks(conn, p.org_id)]


@router.post("/policy/checks", status_code=201, tags=["policy"])
def create_check(ctx: Ctx, p: PolicyWrite, body: CheckIn) -> CheckOut:
    """Add a named posture check, which DNS, network and attach rules can then require.
    Every plane picks it up at once. Admins only (`policy:write`); 409 when a check has that
    name, 422 for an expression that does not parse or a `max_age` out of range."""
    check = body.to_check()
    with ctx.tx() as conn:
        stored = check_store.create_check(conn, p.org_id, check, actor=p.actor, now=ctx.clock())
    return _check_out(stored)


@router.get("/policy/checks/{check_id}", tags=["policy"])
def get_check(ctx: Ctx, p: PolicyRead, check_id: str) -> CheckOut:
    """One posture check, by id or name. Admins, operators, analysts and auditors
    (`policy:read`); 404 for a check that is unknown or another org's."""
    with ctx.read() as conn:
        return _check_out(check_store.get_check(conn, p.org_id, check_id))


@router.put("/policy/checks/{check_id}", tags=["policy"])
def replace_check(ctx: Ctx, p: PolicyWrite, check_id: str, body: CheckIn) -> CheckOut:
    """Replace a posture check's name, expression and maximum age (found by id or name);
    rules that require it use the new one at once. Admins only (`policy:write`); 409 when
    renaming a check that rules require or taking another check's name, 404 for a check that
    is unknown or another org's."""
    check = body.to_check()
    with ctx.tx() as conn:
        stored = check_store.replace_check(
            conn, p.org_id, check_id, check, actor=p.actor, now=ctx.clock()
        )
    return _check_out(stored)


@router.delete("/policy/checks/{check_id}", status_code=204, tags=["policy"])
def delete_check(ctx: Ctx, p: PolicyWrite, check_id: str) -> Response:
    """Delete a posture check (by id or name). Admins only (`policy:write`); 409 while rules
    require it (the answer names them), 404 for a check that is unknown or another org's."""
    with ctx.tx() as conn:
        check_store.delete_check(conn, p.org_id, check_id, actor=p.actor, now=ctx.clock())
    return Response(status_code=204)


# -- rules ---------------------------------------------------------------------------------


@router.get("/policy/rules", tags=["policy"])
def list_rules(ctx: Ctx, p: PolicyRead, plane: Plane | None = None) -> list[RuleOut]:
    """Every plane's rules in order (dns, network, attach), or one plane's. Admins,
    operators, analysts and auditors (`policy:read`)."""
    with ctx.read() as conn:
        return [_rule_out(s) for s in rule_store.list_rules(conn, p.org_id, plane)]


@router.post("/policy/rules", status_code=201, tags=["policy"])
def create_rule(ctx: Ctx, p: PolicyWrite, body: RuleIn) -> RuleOut:
    """Add a `network` or `attach` rule; without `position` it goes last in its plane. The
    planes that enforce it apply it at once. Admins only (`policy:write`); 409 for a `dns`
    rule (those are written at /api/v1/dns/rules) or a name taken in the plane, 404 when it
    requires a posture check the org does not have, 422 for fields its plane does not take."""
    rule = body.to_rule()
    with ctx.tx() as conn:
        stored = rule_store.create_rule(
            conn, p.org_id, rule, body.position, actor=p.actor, now=ctx.clock()
        )
    return _rule_out(stored)


@router.get("/policy/rules/{policy_rule_id}", tags=["policy"])
def get_rule(ctx: Ctx, p: PolicyRead, policy_rule_id: str) -> RuleOut:
    """One rule of any plane, with its selectors, requirements and target (`spec`). Admins,
    operators, analysts and auditors (`policy:read`); 404 for a rule that is unknown or
    another org's."""
    with ctx.read() as conn:
        return _rule_out(rule_store.get_rule(conn, p.org_id, policy_rule_id))


@router.put("/policy/rules/{policy_rule_id}", tags=["policy"])
def replace_rule(ctx: Ctx, p: PolicyWrite, policy_rule_id: str, body: RuleIn) -> RuleOut:
    """Replace a `network` or `attach` rule; it keeps its plane (422 otherwise) and, without
    `position`, its place. The planes apply it at once. Admins only (`policy:write`); 409
    for a `dns` rule (edit it at /api/v1/dns/rules) or a name taken in the plane, 404 for a
    rule or required posture check the org does not have."""
    rule = body.to_rule()
    with ctx.tx() as conn:
        stored = rule_store.replace_rule(
            conn, p.org_id, policy_rule_id, rule, body.position, actor=p.actor, now=ctx.clock()
        )
    return _rule_out(stored)


@router.delete("/policy/rules/{policy_rule_id}", status_code=204, tags=["policy"])
def delete_rule(ctx: Ctx, p: PolicyWrite, policy_rule_id: str) -> Response:
    """Delete a `network` or `attach` rule; the planes stop applying it at once. Admins only
    (`policy:write`); 409 for a `dns` rule (delete it at /api/v1/dns/rules), 404 for a rule
    that is unknown or another org's."""
    with ctx.tx() as conn:
        rule_store.delete_rule(conn, p.org_id, policy_rule_id, actor=p.actor, now=ctx.clock())
    return Response(status_code=204)


# -- the whole policy ------------------------------------------------------------------------


@router.get("/policy/document", tags=["policy"])
def export_document(ctx: Ctx, p: PolicyRead) -> dict[str, Any]:
    """The org's policy in the policy file's form (POST it back: nothing changes). Admins,
    operators, analysts and auditors (`policy:read`)."""
    with ctx.read() as conn:
        return store.export(conn, p.org_id).to_json()


@router.post("/policy/document", tags=["policy"])
def apply_document(
    ctx: Ctx,
    p: PolicyWrite,
    body: Annotated[dict[str, Any], Body()],
    dry_run: Annotated[bool, Query(description="Only say what would change.")] = False,
) -> ApplyOut:
    """Replace the org's checks and every plane's rules, all or nothing. With `dry_run=true`
    it only answers what would change. Admins only (`policy:write`); 422 for a document that
    does not validate."""
    now = ctx.clock()
    with ctx.tx() as conn:
        document = doc.from_json(body, "document", check_dns=dns_check(conn, p.org_id))
        current = store.export(conn, p.org_id)
        found = policy_diff.diff(current, document, facts.subjects(conn, p.org_id), now)
        if dry_run:
            return ApplyOut(
                applied=False,
                revision=document.revision,
                counts=store.counts(document),
                diff=found.to_json(),
            )
        applied = store.apply(
            conn, p.org_id, document, actor=p.actor, now=now, base_revision=current.revision
        )
    return ApplyOut(
        applied=applied.changed,
        revision=applied.revision,
        counts=applied.counts,
        diff=found.to_json(),
    )


# -- explain -------------------------------------------------------------------------------


@router.get("/policy/explain", tags=["policy"])
def explain_decision(
    ctx: Ctx,
    p: PolicyExplain,
    plane: Plane,
    target: Annotated[str, Query(min_length=1, max_length=300)],
    subject: Annotated[str | None, Query(max_length=64)] = None,
) -> ExplainOut:
    """Why the subject gets its decision for `target` in `plane`, rule by rule, per SIM: an
    identity id, ICCID or MSISDN of the org; a `self` token's own identity only. Admins,
    operators, analysts, auditors and self (`policy:explain`); 404 for a subject not in the
    org or, for a self token, anyone else."""
    now = ctx.clock()
    with ctx.read() as conn:
        if p.role is Role.SELF:
            if p.identity_id is None or subject not in (None, p.identity_id):
                raise NotFound("no such subject")
            subject = p.identity_id
            found = facts.subjects(conn, p.org_id, identity_id=subject)
        elif not subject:
            raise InvalidInput("subject: an identity id, an ICCID or an MSISDN")
        else:
            found = find_subjects(conn, p.org_id, subject)
        out = explanations(conn, p.org_id, found, plane, target, now)
    return ExplainOut(subject=subject, plane=plane, explanations=out)
