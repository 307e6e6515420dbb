#!/usr/bin/env python3
"""Checks every AWS call each Lambda function made against its role's IAM policy in the template.

    python tests/harness/iam_check.py --template infra/template.yaml --calls DIR [--strict-unused]

DIR holds one file per function group, DIR/<group>.jsonl. Its first line is a header
``{"env": {"JHE_TABLE": ..., "JHE_BUNDLE_BUCKET": ..., "JHE_AUDIT_BUCKET": ...,
"JHE_USER_POOL_ID": ...}}`` (the concrete names the test gave the functions); every further line is
one raw HTTP request the function sent to AWS::

    {"method": "POST", "path": "/", "query": "", "headers": {...}, "body": "...", "status": 200}

(``"body_b64": true`` when the body is base64). Each request becomes one or more authorization
requests (action, resource ARN, condition context), which are evaluated against the statements of
the function's role (inline policies, AWS::IAM::Policy / ManagedPolicy resources attached to it)
plus the Deny statements of the template's bucket policies. Output:

    NOTE ...                                            things the checker could not model
    DENY <group> <action> <resource> [<condition detail>]: <why>
    UNUSED <group> <Sid> <action> <leading-key pattern or resource>
    RUNTIME <group> <Sid> <action> <resource>: ...      log grants only the Lambda service uses
    <summary table: group, calls, allowed, denied, unused grants>
    iam_check: N passed, M failed

N counts the recorded calls allowed, M the calls denied (a call is denied when any of its
authorization requests is); with --strict-unused every UNUSED grant counts as failed too. Exits 1
when M > 0, 2 when the template cannot be read.

Names: every logical resource gets a placeholder name ``LOGICAL(<id>)``, so ``!GetAtt Table.Arn`` is
``arn:aws:dynamodb:us-east-1:123456789012:table/LOGICAL(Table)`` and ``!Ref BundleBucket`` is
``LOGICAL(BundleBucket)``. The header's concrete names are mapped onto those placeholders through
the functions' ``Environment.Variables`` (``JHE_TABLE: !Ref Table``), separately per service, so
a table and a bucket may share one concrete name.

AWS semantics implemented, with their sources:

* Evaluation: an explicit Deny in any applicable policy wins; otherwise some Allow must match
  action, resource and every condition; in one account an Allow in either the identity policy or
  the resource (bucket) policy suffices.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
* Condition operators, the missing-key rule ("If the key ... is not present in the request context,
  the values do not match and the condition is false. If the policy condition requires that the key
  is not matched, such as StringNotLike or ArnNotLike, and the right key is not present, the
  condition is true"), IfExists and Null:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
* Several values of one key are ORed, and NORed under a negated operator; operators and keys are
  ANDed: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html
* Set qualifiers: ForAllValues is true when every request value matches some policy value, "also
  returns true if there are no context keys in the request"; ForAnyValue needs at least one value
  and is false for an empty or missing key:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition_examples-multi-valued-context-keys.html
* Condition key names are case-insensitive, values case-sensitive (unless the operator says IgnoreCase):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html
* DynamoDB: dynamodb:LeadingKeys is the partition key value(s) of the items a request touches,
  multivalued (batch requests carry all of theirs); Scan has none (so a ForAllValues LeadingKeys
  Allow admits a Scan: the developer guide leaves Scan out of such policies for that reason):
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html
  For a Query on an index, LeadingKeys is the value bound to the *index's* partition key: the guide
  defines the key as "the first key attribute of a table" and applies LeadingKeys to an index ARN in
  its example 5; an experiment confirms a GSI's own partition key is what is matched
  (https://matt.martz.codes/lock-down-dynamodb-with-iam-policy-conditions).
* DynamoDB transactions have no IAM action of their own: "Permissions for Put, Update, Delete, and
  Get actions are governed by the permissions used for the underlying PutItem, UpdateItem,
  DeleteItem, and GetItem operations. For the ConditionCheck action, you can use the
  dynamodb:ConditionCheckItem permission"; dynamodb:EnclosingOperation names the transaction.
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
  BatchGetItem / BatchWriteItem authorize dynamodb:BatchGetItem / dynamodb:BatchWriteItem per table
  (Service Authorization Reference, "API operations" table:
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html).
* S3: HeadObject needs s3:GetObject (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html),
  ListObjects(V2) s3:ListBucket on the bucket ARN with s3:prefix / s3:delimiter / s3:max-keys
  (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html); PutObject and
  CopyObject also authorize s3:PutObjectRetention, s3:PutObjectLegalHold, s3:PutObjectTagging and
  s3:PutObjectAcl when the request sets object-lock, tagging or ACL headers (Service Authorization
  Reference, https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html);
  a bucket's *default* retention applies without any of them.
* Cognito: admin and management operations are IAM-authorized as cognito-idp:<Operation> on the
  user pool ARN; the public sign-in / token-authorized operations (InitiateAuth, GetUser, ...) are
  not IAM-authorized at all:
  https://docs.aws.amazon.com/cognito/latest/developerguide/user-pools-API-operations.html
* STS GetCallerIdentity needs no permission:
  https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
* AWS::Logs::LogGroup's Arn attribute ends in ":*":
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-logs-loggroup.html
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

REGION = "us-east-1"
ACCOUNT = "123456789012"
PARTITION = "aws"
STACK_NAME = "jhe-stack"
URL_SUFFIX = "amazonaws.com"
GROUPS = ["discovery", "auth", "admin-orgs", "admin-patients", "admin-studies", "admin-catalog", "fhir-read", "fhir-ingest"]

# Grants the Lambda service itself exercises with the role (the function's log stream); no SDK call
# of the function makes them, so they are never in a recording and are not reported as unused.
RUNTIME_ACTIONS = {"logs:createlogstream", "logs:putlogevents", "logs:createloggroup"}


def logical(lid: str) -> str:
    """The placeholder name of a template resource."""
    return f"LOGICAL({lid})"


class Notes:
    """NOTE lines, each printed once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        if text not in self.items:
            self.items.append(text)


# ------------------------------------------------------------------------------------ template


def load_template(path: Path) -> dict[str, Any]:
    """The template as plain data; short-form tags become their long forms ({"Fn::Sub": ...})."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def constructor(tag: str):
        key = {"Ref": "Ref", "Condition": "Condition"}.get(tag, f"Fn::{tag}")

        def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
            value: Any
            if isinstance(node, yaml.ScalarNode):
                value = loader.construct_scalar(node)
                if tag == "GetAtt":  # !GetAtt A.B.C -> ["A", "B.C"]
                    value = str(value).split(".", 1)
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)
            return {key: value}

        return construct

    for tag in ("Ref", "GetAtt", "Sub", "If", "Join", "Select", "Split", "Equals", "Not", "And", "Or",
                "FindInMap", "ImportValue", "Condition", "Base64", "Cidr", "GetAZs", "Transform", "Length",
                "ToJsonString"):
        Loader.add_constructor(f"!{tag}", constructor(tag))
    with open(path, encoding="utf-8") as f:
        data = yaml.load(f, Loader=Loader)
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise ValueError("no Resources mapping")
    return data


NO_VALUE = object()  # AWS::NoValue: dropped from lists and mappings


class Resolver:
    """Resolves intrinsic functions to strings with LOGICAL(<id>) placeholders."""

    def __init__(self, template: dict[str, Any], notes: Notes) -> None:
        self.t = template
        self.resources: dict[str, Any] = template.get("Resources") or {}
        self.parameters: dict[str, Any] = template.get("Parameters") or {}
        self.notes = notes

    def rtype(self, lid: str) -> str:
        return str((self.resources.get(lid) or {}).get("Type", ""))

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION,
            "AWS::StackName": STACK_NAME, "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/id",
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            p = self.parameters[name] or {}
            return str(p["Default"]) if "Default" in p else f"PARAM({name})"
        if name in self.resources:
            t, L = self.rtype(name), logical(name)
            by_type = {
                "AWS::SNS::Topic": f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{L}",
                "AWS::SQS::Queue": f"https://sqs.{REGION}.{URL_SUFFIX}/{ACCOUNT}/{L}",
                "AWS::IAM::ManagedPolicy": f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{L}",
                "AWS::SecretsManager::Secret": f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{L}",
            }
            return by_type.get(t, L)  # tables, buckets, pools, log groups, roles, functions: a name/id
        self.notes.add(f"unresolved !Ref {name}")
        return f"REF({name})"

    def get_att(self, lid: str, attr: str) -> str:
        t, L = self.rtype(lid), logical(lid)
        arns = {
            "AWS::DynamoDB::Table": f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{L}",
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{L}",
            "AWS::Cognito::UserPool": f"arn:{PARTITION}:cognito-idp:{REGION}:{ACCOUNT}:userpool/{L}",
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{L}:*",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{L}",
            "AWS::Serverless::Function": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{L}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{L}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{L}",
            "AWS::KMS::Key": f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/{L}",
        }
        if attr == "Arn" and t in arns:
            return arns[t]
        if t == "AWS::DynamoDB::Table" and attr == "StreamArn":
            return f"{arns[t]}/stream/*"
        if t == "AWS::Cognito::UserPool" and attr == "ProviderName":
            return f"cognito-idp.{REGION}.{URL_SUFFIX}/{L}"
        if t == "AWS::S3::Bucket" and attr in ("DomainName", "RegionalDomainName"):
            return f"{L}.s3.{URL_SUFFIX}"
        if lid not in self.resources:
            self.notes.add(f"unresolved !GetAtt {lid}.{attr}: no such resource")
        return f"GETATT({lid}.{attr})"

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            out = [self.resolve(x) for x in node]
            return [x for x in out if x is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (k, v), = node.items()
            if k == "Ref":
                return self.ref(str(v))
            if k == "Fn::GetAtt":
                parts = v if isinstance(v, list) else str(v).split(".", 1)
                return self.get_att(str(parts[0]), str(self.resolve(parts[1])))
            if k == "Fn::Sub":
                return self.sub(v)
            if k == "Fn::If":
                cond, yes, no = v
                # Conditions are not evaluated: the first branch stands for the deployment unless it
                # is AWS::NoValue (the brief's choice; say so, since the other branch may differ).
                branch = no if yes == {"Ref": "AWS::NoValue"} else yes
                self.notes.add(f"!If [{cond}, ...] resolved to its {'second' if branch is no else 'first'} branch "
                               f"without evaluating the condition")
                return self.resolve(branch)
            if k == "Fn::Join":
                sep, items = v
                items = self.resolve(items)
                return str(sep).join(str(x) for x in (items if isinstance(items, list) else [items]))
            if k == "Fn::Select":
                idx, items = v
                items = self.resolve(items)
                return items[int(self.resolve(idx))] if isinstance(items, list) else items
            if k == "Fn::Split":
                sep, s = v
                return str(self.resolve(s)).split(str(sep))
            if k == "Fn::FindInMap":
                m, a, b = (self.resolve(x) for x in v)
                try:
                    return self.resolve(self.t["Mappings"][m][a][b])
                except (KeyError, TypeError):
                    self.notes.add(f"unresolved !FindInMap {m}.{a}.{b}")
                    return f"FINDINMAP({m}.{a}.{b})"
            if k == "Fn::ImportValue":
                name = self.resolve(v)
                self.notes.add(f"!ImportValue {name} is another stack's value: kept as IMPORT({name})")
                return f"IMPORT({name})"
            if k == "Fn::Base64":
                return self.resolve(v)
            if k == "Fn::GetAZs":
                return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
            if k == "Fn::Cidr":
                return ["CIDR"]
        out = {k: self.resolve(x) for k, x in node.items()}
        return {k: x for k, x in out.items() if x is not NO_VALUE}

    def sub(self, v: Any) -> str:
        text, variables = (v[0], v[1] or {}) if isinstance(v, list) else (v, {})

        def repl(m: re.Match[str]) -> str:
            inner = m.group(1)
            if inner.startswith("!"):  # ${!Literal} stays literal
                return "${" + inner[1:] + "}"
            if inner in variables:
                return str(self.resolve(variables[inner]))
            if "." in inner and not inner.startswith("AWS::"):
                lid, attr = inner.split(".", 1)
                return self.get_att(lid, attr)
            value = self.ref(inner)
            return "" if value is NO_VALUE else str(value)

        return re.sub(r"\$\{([^}]+)\}", repl, str(text))


@dataclass
class Statement:
    sid: str
    effect: str  # "Allow" | "Deny"
    actions: list[str] | None
    not_actions: list[str] | None
    resources: list[str] | None
    not_resources: list[str] | None
    condition: dict[str, dict[str, list[str]]]
    source: str  # where it comes from, for messages
    principal: Any = None  # bucket-policy statements only

    @property
    def label(self) -> str:
        return f"{self.sid} ({self.source})"


def as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def policy_str(x: Any) -> str:
    """A policy value as IAM sees it: YAML booleans and numbers become their JSON spelling."""
    if isinstance(x, bool):
        return "true" if x else "false"
    return str(x)


def parse_statements(doc: Any, source: str, res: Resolver) -> list[Statement]:
    doc = res.resolve(doc)
    out: list[Statement] = []
    for i, s in enumerate(as_list((doc or {}).get("Statement"))):
        if not isinstance(s, dict):
            continue
        cond: dict[str, dict[str, list[str]]] = {}
        for op, keys in (s.get("Condition") or {}).items():
            cond[str(op)] = {str(k): [policy_str(x) for x in as_list(vals)] for k, vals in (keys or {}).items()}

        def strs(key: str) -> list[str] | None:
            return [str(x) for x in as_list(s[key])] if key in s else None

        out.append(Statement(
            sid=str(s.get("Sid") or f"{source}[{i}]"),
            effect=str(s.get("Effect", "")),
            actions=strs("Action"), not_actions=strs("NotAction"),
            resources=strs("Resource"), not_resources=strs("NotResource"),
            condition=cond, source=source,
        ))
    return out


@dataclass
class TableInfo:
    lid: str
    hash_key: str
    indexes: dict[str, str]  # index name -> its partition key attribute


@dataclass
class Function:
    group: str
    lid: str
    role: str | None  # logical id of the role
    env: dict[str, Any]  # merged Environment.Variables (unresolved)


@dataclass
class Model:
    resolver: Resolver
    functions: dict[str, Function]  # by group
    role_statements: dict[str, list[Statement]]  # role logical id -> statements
    bucket_statements: dict[str, list[Statement]]  # bucket logical id -> resource-policy statements
    tables: dict[str, TableInfo]


def role_arn(role: str) -> str:
    return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{logical(role)}"


def build_model(template: dict[str, Any], notes: Notes) -> Model:
    res = Resolver(template, notes)
    resources: dict[str, Any] = template["Resources"]

    # Functions: group from the binary name, role from Properties.Role.
    globals_env = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get("Variables") or {}
    functions: dict[str, Function] = {}
    for lid, r in resources.items():
        if not isinstance(r, dict) or r.get("Type") not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            continue
        binary = str(((r.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary") or "")
        if not binary.startswith("jhe-"):
            notes.add(f"function {lid} has no Metadata.BuildProperties.Binary jhe-<group>: skipped")
            continue
        group = binary.removeprefix("jhe-")
        props = r.get("Properties") or {}
        role_node = props.get("Role")
        role: str | None = None
        if isinstance(role_node, dict) and "Fn::GetAtt" in role_node:
            ga = role_node["Fn::GetAtt"]
            role = str(ga[0] if isinstance(ga, list) else str(ga).split(".")[0])
        elif isinstance(role_node, dict) and "Ref" in role_node and role_node["Ref"] in resources:
            role = str(role_node["Ref"])
        elif role_node is not None:
            notes.add(f"function {lid}: Role {role_node!r} is not a role of this template: its policy is unknown")
        elif props.get("Policies") is not None:
            notes.add(f"function {lid}: SAM-generated role (Policies) is not modelled")
        if role is not None and (resources.get(role) or {}).get("Type") != "AWS::IAM::Role":
            notes.add(f"function {lid}: Role {role} is not an AWS::IAM::Role resource")
            role = None
        env = dict(globals_env)
        env.update(((props.get("Environment") or {}).get("Variables")) or {})
        if group in functions:
            notes.add(f"group {group} has two functions ({functions[group].lid}, {lid}): using the first")
            continue
        functions[group] = Function(group, lid, role, env)

    # Role statements: inline Policies, managed policies by ARN, Policy/ManagedPolicy resources.
    role_statements: dict[str, list[Statement]] = defaultdict(list)
    for lid, r in resources.items():
        if not isinstance(r, dict) or r.get("Type") != "AWS::IAM::Role":
            continue
        props = r.get("Properties") or {}
        for p in as_list(props.get("Policies")):
            name = str(res.resolve(p.get("PolicyName", "inline")))
            role_statements[lid] += parse_statements(p.get("PolicyDocument"), f"{lid}/{name}", res)
        for arn_node in as_list(props.get("ManagedPolicyArns")):
            if isinstance(arn_node, dict) and "Ref" in arn_node and \
                    (resources.get(arn_node["Ref"]) or {}).get("Type") == "AWS::IAM::ManagedPolicy":
                continue  # attached below with the resource itself
            arn = str(res.resolve(arn_node))
            if re.match(r"arn:[^:]+:iam::aws:policy/", arn):
                notes.add(f"role {lid}: AWS-managed policy {arn} is not evaluated")
            else:
                notes.add(f"role {lid}: managed policy {arn} is not in this template: not evaluated")
        if props.get("PermissionsBoundary") is not None:
            notes.add(f"role {lid}: PermissionsBoundary is not evaluated")
        if r.get("Condition"):
            notes.add(f"role {lid} exists only under Condition {r['Condition']}: assumed created")
    for lid, r in resources.items():
        if not isinstance(r, dict) or r.get("Type") not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        props = r.get("Properties") or {}
        attached = {str(x["Ref"]) for x in as_list(props.get("Roles")) if isinstance(x, dict) and "Ref" in x}
        # A ManagedPolicy may also be attached from a role's ManagedPolicyArns: [!Ref Policy].
        for rid, rr in resources.items():
            if isinstance(rr, dict) and rr.get("Type") == "AWS::IAM::Role":
                if {"Ref": lid} in as_list((rr.get("Properties") or {}).get("ManagedPolicyArns")):
                    attached.add(rid)
        for role in sorted(attached):
            role_statements[role] += parse_statements(props.get("PolicyDocument"), lid, res)

    # Bucket policies: their statements apply to requests on that bucket whose role the Principal covers.
    bucket_statements: dict[str, list[Statement]] = defaultdict(list)
    for lid, r in resources.items():
        if not isinstance(r, dict) or r.get("Type") != "AWS::S3::BucketPolicy":
            continue
        props = r.get("Properties") or {}
        b = props.get("Bucket")
        if not (isinstance(b, dict) and "Ref" in b):
            notes.add(f"bucket policy {lid}: Bucket {b!r} is not a bucket of this template: ignored")
            continue
        doc = props.get("PolicyDocument") or {}
        for node, st in zip(as_list(doc.get("Statement")), parse_statements(doc, lid, res)):
            st.principal = res.resolve(node.get("Principal")) if isinstance(node, dict) else None
            if st.effect == "Allow" and principal_kind(st.principal) == "*":
                notes.add(f"bucket policy {lid}: {st.sid} allows Principal \"*\" (public): evaluated as a grant")
            bucket_statements[str(b["Ref"])].append(st)

    # Tables: key schema for LeadingKeys.
    tables: dict[str, TableInfo] = {}
    for lid, r in resources.items():
        if not isinstance(r, dict) or r.get("Type") != "AWS::DynamoDB::Table":
            continue
        props = r.get("Properties") or {}

        def hash_of(schema: Any) -> str:
            return next((str(k.get("AttributeName")) for k in as_list(schema) if k.get("KeyType") == "HASH"), "pk")

        idx = {str(i.get("IndexName")): hash_of(i.get("KeySchema"))
               for i in as_list(props.get("GlobalSecondaryIndexes")) + as_list(props.get("LocalSecondaryIndexes"))}
        tables[lid] = TableInfo(lid, hash_of(props.get("KeySchema")), idx)

    return Model(res, functions, dict(role_statements), dict(bucket_statements), tables)


def principal_kind(principal: Any) -> str | None:
    """'*' when the principal is everyone, 'aws' when it names IAM principals, None otherwise."""
    if principal == "*" or (isinstance(principal, dict) and "*" in as_list(principal.get("AWS"))):
        return "*"
    if isinstance(principal, dict) and principal.get("AWS") is not None:
        return "aws"
    return None


def bucket_statement_applies(st: Statement, role: str | None) -> bool:
    """Whether a bucket-policy statement's Principal covers the function's role (same account)."""
    kind = principal_kind(st.principal)
    if kind == "*":
        return True
    if kind == "aws" and role is not None:
        names = [str(x) for x in as_list(st.principal.get("AWS"))]
        return any(n in (role_arn(role), f"arn:{PARTITION}:iam::{ACCOUNT}:root", ACCOUNT) for n in names)
    return False


# ------------------------------------------------------------------------------------ matching


@lru_cache(maxsize=4096)
def glob_re(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM wildcards: * any run of characters, ? one character; everything else literal."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return glob_re(pattern, ignore_case).fullmatch(value) is not None


def arn_like(pattern: str, value: str) -> bool:
    """ArnLike/ArnEquals: each of the six colon-separated parts matched on its own."""
    p, v = pattern.split(":", 5), value.split(":", 5)
    if pattern == "*":
        return True
    return len(p) == 6 and len(v) == 6 and all(glob(a, b) for a, b in zip(p, v))


def substitute_variables(pattern: str, ctx: dict[str, list[str]]) -> str:
    """Policy variables: ${*}, ${?}, ${$} escapes and single-valued context keys."""
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in ("*", "?", "$"):
            return name
        vals = ctx.get(name.lower())
        return vals[0] if vals and len(vals) == 1 else m.group(0)
    return re.sub(r"\$\{([^}]+)\}", repl, pattern)


# Condition keys this checker computes. Another key is unknown: its statement cannot match.
KNOWN_KEYS = {k.lower() for k in (
    "aws:SecureTransport", "aws:RequestedRegion", "aws:PrincipalAccount", "aws:PrincipalArn",
    "aws:PrincipalType", "aws:ResourceAccount",
    "dynamodb:LeadingKeys", "dynamodb:Attributes", "dynamodb:Select", "dynamodb:ReturnValues",
    "dynamodb:ReturnConsumedCapacity", "dynamodb:EnclosingOperation",
    "s3:prefix", "s3:delimiter", "s3:max-keys", "s3:x-amz-acl", "s3:x-amz-server-side-encryption",
    "s3:x-amz-server-side-encryption-aws-kms-key-id", "s3:object-lock-mode",
    "s3:object-lock-retain-until-date", "s3:object-lock-legal-hold", "s3:if-none-match",
    "s3:if-match", "s3:VersionId", "s3:x-amz-copy-source", "s3:x-amz-storage-class",
)}

NEGATED = {"stringnotequals", "stringnotequalsignorecase", "stringnotlike", "arnnotequals", "arnnotlike",
           "numericnotequals"}


def value_matches(base: str, policy_value: str, v: str) -> bool | None:
    """One request value against one policy value under a positive base operator; None: unknown op."""
    b = base.lower().replace("not", "", 1) if base.lower() in NEGATED else base.lower()
    if b == "stringequals":
        return v == policy_value
    if b == "stringequalsignorecase":
        return v.lower() == policy_value.lower()
    if b == "stringlike":
        return glob(policy_value, v)
    if b in ("arnequals", "arnlike"):
        return arn_like(policy_value, v)
    if b == "bool":
        return v.lower() == policy_value.lower()
    if b.startswith("numeric"):
        try:
            x, y = float(v), float(policy_value)
        except ValueError:
            return False
        return {"numericequals": x == y, "numericlessthan": x < y, "numericlessthanequals": x <= y,
                "numericgreaterthan": x > y, "numericgreaterthanequals": x >= y}.get(b)
    return None


@dataclass
class CondResult:
    ok: bool
    failed: str = ""  # which clause failed, for messages
    unknown: list[str] = field(default_factory=list)  # unknown keys / operators


def eval_conditions(cond: dict[str, dict[str, list[str]]], ctx: dict[str, list[str]]) -> CondResult:
    """The Condition block: operators ANDed, keys ANDed, values ORed (NORed when negated)."""
    for op, keys in cond.items():
        qualifier, base = "", op
        if ":" in op:
            qualifier, base = op.split(":", 1)
            qualifier = qualifier.lower()
            if qualifier not in ("forallvalues", "foranyvalue"):
                return CondResult(False, op, [f"operator {op}"])
        if_exists = base.endswith("IfExists")
        base = base.removesuffix("IfExists")
        negated = base.lower() in NEGATED
        for key, values in keys.items():
            k = key.lower()
            if k not in KNOWN_KEYS:
                return CondResult(False, f"{op} {key}", [f"condition key {key}"])
            present = ctx.get(k)
            clause = f"{op} {key} {json.dumps(values)} vs {json.dumps(present) if present is not None else 'absent'}"
            if base.lower() == "null":
                absent = not present
                if (values[0].lower() == "true") != absent:
                    return CondResult(False, clause)
                continue
            values = [substitute_variables(p, ctx) for p in values]

            def one(v: str) -> bool | None:
                hits = [value_matches(base, p, v) for p in values]
                if any(h is None for h in hits):
                    return None
                return not any(hits) if negated else any(hits)

            if not present:
                if qualifier == "forallvalues":
                    ok = True  # vacuous truth: no values, none fails
                elif qualifier == "foranyvalue":
                    ok = False
                else:
                    ok = if_exists or negated
            else:
                results = [one(v) for v in present]
                if any(r is None for r in results):
                    return CondResult(False, clause, [f"operator {op}"])
                ok = all(results) if qualifier == "forallvalues" else any(results)
            if not ok:
                return CondResult(False, clause)
    return CondResult(True)


# ------------------------------------------------------------------------------------ requests


@dataclass
class AuthRequest:
    action: str
    resource: str
    context: dict[str, list[str]]  # lower-cased key -> values
    via: str = ""  # the enclosing API operation, when it differs from the action

    def detail(self) -> str:
        """The condition values worth showing in a DENY line."""
        shown = [f"{name}={json.dumps(self.context[name.lower()])}"
                 for name in ("dynamodb:LeadingKeys", "s3:prefix", "s3:object-lock-mode") if name.lower() in self.context]
        if self.via:
            shown.append(f"via {self.via}")
        return " ".join(shown)


@dataclass
class Call:
    lineno: int
    operation: str
    requests: list[AuthRequest]
    error: str = ""  # set: the call cannot be authorized at all (unrecognized, ...)
    no_iam: str = ""  # set: AWS does not IAM-authorize this operation (why)


@dataclass
class Names:
    """Concrete names from the header, per service, -> logical ids."""
    dynamodb: dict[str, str] = field(default_factory=dict)
    s3: dict[str, str] = field(default_factory=dict)
    cognito: dict[str, str] = field(default_factory=dict)


KIND_OF_TYPE = {"AWS::DynamoDB::Table": "dynamodb", "AWS::S3::Bucket": "s3", "AWS::Cognito::UserPool": "cognito"}


def names_from_env(fn: Function | None, header_env: dict[str, str], model: Model, notes: Notes, group: str) -> Names:
    names = Names()
    if fn is None:
        return names
    for var, node in fn.env.items():
        lid = None
        if isinstance(node, dict) and "Ref" in node:
            lid = str(node["Ref"])
        elif isinstance(node, dict) and "Fn::GetAtt" in node:
            ga = node["Fn::GetAtt"]
            lid = str(ga[0] if isinstance(ga, list) else str(ga).split(".")[0])
        kind = KIND_OF_TYPE.get(model.resolver.rtype(lid)) if lid else None
        if kind is None:
            continue
        concrete = header_env.get(var)
        if not concrete:
            notes.add(f"{group}: header has no {var} (the template's {lid}): its calls cannot be mapped")
            continue
        getattr(names, kind)[concrete] = lid
    return names


def av_str(av: Any) -> str:
    """A DynamoDB JSON attribute value as the string IAM compares."""
    if isinstance(av, dict) and len(av) == 1:
        (t, v), = av.items()
        if t in ("S", "N", "B"):
            return str(v)
    return json.dumps(av, sort_keys=True)


EXPR_WORDS = {"and", "or", "not", "between", "in", "set", "remove", "add", "delete", "attribute_exists",
              "attribute_not_exists", "attribute_type", "begins_with", "contains", "size", "if_not_exists",
              "list_append"}


def expression_attributes(expr: str | None, names: dict[str, str]) -> set[str]:
    """Top-level attribute names an expression refers to (dynamodb:Attributes, best effort)."""
    out: set[str] = set()
    for tok in re.findall(r"(?<![:\w#])#?[A-Za-z_][\w]*", expr or ""):
        if tok.startswith("#"):
            out.add(names.get(tok, tok))
        elif tok.lower() not in EXPR_WORDS:
            out.add(tok)
    # Document paths: only the first segment is an attribute (a.b[0] -> a): drop tokens after '.'.
    for m in re.finditer(r"\.\s*(#?[A-Za-z_]\w*)", expr or ""):
        tok = m.group(1)
        out.discard(names.get(tok, tok) if tok.startswith("#") else tok)
    return out


def partition_value(body: dict[str, Any], hash_attr: str) -> str | None:
    """The value a Query binds to the partition key (KeyConditionExpression or KeyConditions)."""
    names: dict[str, str] = body.get("ExpressionAttributeNames") or {}
    values: dict[str, Any] = body.get("ExpressionAttributeValues") or {}
    expr = body.get("KeyConditionExpression")
    if expr:
        for a, op, b in re.findall(r"(#?\w+|:\w+)\s*([<>]?=)\s*(#?\w+|:\w+)", expr):
            if op != "=":
                continue
            for name_tok, val_tok in ((a, b), (b, a)):
                if val_tok.startswith(":") and not name_tok.startswith(":"):
                    name = names.get(name_tok, name_tok)
                    if name == hash_attr and val_tok in values:
                        return av_str(values[val_tok])
    kc = (body.get("KeyConditions") or {}).get(hash_attr)
    if isinstance(kc, dict) and kc.get("ComparisonOperator") == "EQ" and kc.get("AttributeValueList"):
        return av_str(kc["AttributeValueList"][0])
    return None


class CallParser:
    def __init__(self, model: Model, names: Names, notes: Notes, group: str, role: str | None) -> None:
        self.model, self.names, self.notes, self.group, self.role = model, names, notes, group, role

    def base_context(self) -> dict[str, list[str]]:
        ctx = {"aws:securetransport": ["true"], "aws:requestedregion": [REGION],
               "aws:principalaccount": [ACCOUNT], "aws:principaltype": ["AssumedRole"],
               "aws:resourceaccount": [ACCOUNT]}
        if self.role:
            ctx["aws:principalarn"] = [role_arn(self.role)]
        return ctx

    # -- DynamoDB

    def table(self, name: str) -> tuple[str, TableInfo | None]:
        if name.startswith("arn:"):
            name = name.split(":table/", 1)[-1].split("/", 1)[0]
        lid = self.names.dynamodb.get(name)
        if lid is None:
            self.notes.add(f"{self.group}: table {name!r} is not a table the header names: checked under its own name")
            return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}", None
        return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{logical(lid)}", self.model.tables.get(lid)

    def ddb_request(self, action: str, table_name: str, part: dict[str, Any], keys: list[dict[str, Any]] | None,
                    via: str = "", enclosing: str = "", index: str | None = None) -> AuthRequest:
        arn, info = self.table(table_name)
        hash_key = info.hash_key if info else "pk"
        ctx = self.base_context()
        names: dict[str, str] = part.get("ExpressionAttributeNames") or {}
        if index:
            arn = f"{arn}/index/{index}"
            hash_key = (info.indexes.get(index) if info else None) or hash_key
            if info and index not in info.indexes:
                self.notes.add(f"{self.group}: index {index} is not in the template's table {info.lid}")
        op = action.split(":", 1)[1]
        if op in ("Query",):
            # LeadingKeys of an index query: the index's own partition key (see the module doc).
            v = partition_value(part, hash_key)
            if v is not None:
                ctx["dynamodb:leadingkeys"] = [v]
        elif keys is not None:
            lk = sorted({av_str(k[hash_key]) for k in keys if hash_key in k})
            if lk:
                ctx["dynamodb:leadingkeys"] = lk
        attrs: set[str] = set()
        for k in keys or []:
            attrs |= set(k)
        for e in ("ProjectionExpression", "ConditionExpression", "FilterExpression", "UpdateExpression",
                  "KeyConditionExpression"):
            attrs |= expression_attributes(part.get(e), names)
        attrs |= {str(a) for a in part.get("AttributesToGet") or []}
        if attrs:
            ctx["dynamodb:attributes"] = sorted(attrs)
        if op in ("Query", "Scan"):
            sel = part.get("Select") or ("SPECIFIC_ATTRIBUTES" if part.get("ProjectionExpression") or part.get("AttributesToGet")
                                         else "ALL_PROJECTED_ATTRIBUTES" if index else "ALL_ATTRIBUTES")
            ctx["dynamodb:select"] = [sel]
        if op in ("PutItem", "UpdateItem", "DeleteItem"):
            ctx["dynamodb:returnvalues"] = [part.get("ReturnValues") or "NONE"]
        if part.get("ReturnConsumedCapacity"):
            ctx["dynamodb:returnconsumedcapacity"] = [part["ReturnConsumedCapacity"]]
        if enclosing:
            ctx["dynamodb:enclosingoperation"] = [enclosing]
        return AuthRequest(action, arn, ctx, via)

    def dynamodb(self, op: str, body: dict[str, Any]) -> list[AuthRequest]:
        a = f"dynamodb:{op}"
        if op in ("GetItem", "DeleteItem", "UpdateItem"):
            return [self.ddb_request(a, body["TableName"], body, [body.get("Key") or {}])]
        if op == "PutItem":
            return [self.ddb_request(a, body["TableName"], body, [body.get("Item") or {}])]
        if op in ("Query", "Scan"):
            return [self.ddb_request(a, body["TableName"], body, None, index=body.get("IndexName"))]
        if op == "BatchGetItem":
            return [self.ddb_request(a, t, spec, list(spec.get("Keys") or []))
                    for t, spec in (body.get("RequestItems") or {}).items()]
        if op == "BatchWriteItem":
            out = []
            for t, writes in (body.get("RequestItems") or {}).items():
                keys = [w["PutRequest"].get("Item") or {} if "PutRequest" in w else (w.get("DeleteRequest") or {}).get("Key") or {}
                        for w in writes]
                out.append(self.ddb_request(a, t, {}, keys))
            return out
        if op == "TransactWriteItems":
            per = {"Put": ("PutItem", "Item"), "Delete": ("DeleteItem", "Key"), "Update": ("UpdateItem", "Key"),
                   "ConditionCheck": ("ConditionCheckItem", "Key")}
            out = []
            for item in body.get("TransactItems") or []:
                for kind, part in item.items():
                    action, keyfield = per.get(kind, (kind, "Key"))
                    out.append(self.ddb_request(f"dynamodb:{action}", part["TableName"], part,
                                                [part.get(keyfield) or {}], via=op, enclosing=op))
            return out
        if op == "TransactGetItems":
            return [self.ddb_request("dynamodb:GetItem", item["Get"]["TableName"], item["Get"], [item["Get"].get("Key") or {}],
                                     via=op, enclosing=op)
                    for item in body.get("TransactItems") or [] if "Get" in item]
        if op in ("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"):
            self.notes.add(f"{self.group}: PartiQL {op} is not modelled (actions dynamodb:PartiQL*): checked as dynamodb:{op}")
        if body.get("TableName"):
            return [self.ddb_request(a, body["TableName"], body, None)]
        return [AuthRequest(a, "*", self.base_context())]

    # -- Cognito

    # Operations Cognito does not IAM-authorize (public sign-in, or authorized by the user's token).
    COGNITO_NO_IAM = {
        "InitiateAuth", "RespondToAuthChallenge", "SignUp", "ConfirmSignUp", "ResendConfirmationCode",
        "ForgotPassword", "ConfirmForgotPassword", "RevokeToken", "GetTokensFromRefreshToken",
        "AssociateSoftwareToken", "VerifySoftwareToken", "ChangePassword", "GetUser", "DeleteUser",
        "UpdateUserAttributes", "DeleteUserAttributes", "GetUserAttributeVerificationCode",
        "VerifyUserAttribute", "GlobalSignOut", "SetUserMFAPreference", "SetUserSettings", "ConfirmDevice",
        "ForgetDevice", "GetDevice", "ListDevices", "UpdateDeviceStatus", "UpdateAuthEventFeedback",
        "GetUserAuthFactors", "ListWebAuthnCredentials", "DeleteWebAuthnCredential",
        "StartWebAuthnRegistration", "CompleteWebAuthnRegistration",
    }

    def cognito(self, op: str, body: dict[str, Any]) -> list[AuthRequest]:
        pool = body.get("UserPoolId")
        if not pool:
            return [AuthRequest(f"cognito-idp:{op}", "*", self.base_context())]
        lid = self.names.cognito.get(pool)
        if lid is None:
            self.notes.add(f"{self.group}: user pool {pool!r} is not the pool the header names")
            name = pool
        else:
            name = logical(lid)
        return [AuthRequest(f"cognito-idp:{op}", f"arn:{PARTITION}:cognito-idp:{REGION}:{ACCOUNT}:userpool/{name}",
                            self.base_context())]

    # -- S3

    def bucket_arn(self, bucket: str) -> str:
        lid = self.names.s3.get(bucket)
        if lid is None:
            self.notes.add(f"{self.group}: bucket {bucket!r} is not a bucket the header names: checked under its own name")
            return f"arn:{PARTITION}:s3:::{bucket}"
        return f"arn:{PARTITION}:s3:::{logical(lid)}"

    def s3(self, method: str, path: str, query: str, headers: dict[str, str], body: str) -> tuple[str, list[AuthRequest]]:
        host = headers.get("host", "")
        first = host.split(".", 1)[0]
        if first and first in self.names.s3 and "." in host:  # virtual-hosted style
            bucket, key = first, path.lstrip("/")
        else:
            bucket, _, key = path.lstrip("/").partition("/")
        bucket, key = unquote(bucket), unquote(key)
        q = dict(parse_qsl(query, keep_blank_values=True))
        barn = self.bucket_arn(bucket) if bucket else "*"
        oarn = f"{barn}/{key}"
        ctx = self.base_context()
        for h, k in (("x-amz-acl", "s3:x-amz-acl"), ("x-amz-server-side-encryption", "s3:x-amz-server-side-encryption"),
                     ("x-amz-server-side-encryption-aws-kms-key-id", "s3:x-amz-server-side-encryption-aws-kms-key-id"),
                     ("x-amz-object-lock-mode", "s3:object-lock-mode"),
                     ("x-amz-object-lock-retain-until-date", "s3:object-lock-retain-until-date"),
                     ("x-amz-object-lock-legal-hold", "s3:object-lock-legal-hold"),
                     ("if-none-match", "s3:if-none-match"), ("if-match", "s3:if-match"),
                     ("x-amz-copy-source", "s3:x-amz-copy-source"), ("x-amz-storage-class", "s3:x-amz-storage-class")):
            if h in headers:
                ctx[k] = [headers[h]]
        if "versionId" in q:
            ctx["s3:versionid"] = [q["versionId"]]

        def req(action: str, resource: str, op: str, extra: dict[str, list[str]] | None = None) -> AuthRequest:
            c = dict(ctx)
            c.update(extra or {})
            return AuthRequest(f"s3:{action}", resource, c, op if op.lower() != action.lower() else "")

        def write_extras(op: str) -> list[AuthRequest]:
            """Actions a PutObject-like request also authorizes, by the headers it sets."""
            out = []
            if "x-amz-object-lock-mode" in headers or "x-amz-object-lock-retain-until-date" in headers:
                out.append(req("PutObjectRetention", oarn, op))
            if "x-amz-object-lock-legal-hold" in headers:
                out.append(req("PutObjectLegalHold", oarn, op))
            if "x-amz-tagging" in headers:
                out.append(req("PutObjectTagging", oarn, op))
            if "x-amz-acl" in headers or any(h.startswith("x-amz-grant-") for h in headers):
                out.append(req("PutObjectAcl", oarn, op))
            return out

        def copy_source() -> list[AuthRequest]:
            src = headers.get("x-amz-copy-source")
            if not src:
                return []
            src_path, _, src_q = unquote(src).lstrip("/").partition("?")
            sb, _, sk = src_path.partition("/")
            action = "GetObjectVersion" if "versionId=" in src_q else "GetObject"
            return [req(action, f"{self.bucket_arn(sb)}/{sk}", "CopyObject")]

        bypass = [req("BypassGovernanceRetention", oarn, "")] if headers.get("x-amz-bypass-governance-retention", "").lower() == "true" else []
        m = method.upper()
        if not bucket:
            return ("ListBuckets", [req("ListAllMyBuckets", "*", "ListBuckets")])
        if not key:
            sub = next((s for s in ("versions", "uploads", "location", "object-lock", "versioning", "policy", "tagging",
                                    "acl", "encryption", "cors", "lifecycle", "delete") if s in q), "")
            if m == "GET":
                if sub == "versions":
                    return ("ListObjectVersions", [req("ListBucketVersions", barn, "ListObjectVersions",
                                                       {f"s3:{k}": [q[k]] for k in ("prefix", "delimiter", "max-keys") if k in q})])
                if sub == "uploads":
                    return ("ListMultipartUploads", [req("ListBucketMultipartUploads", barn, "ListMultipartUploads")])
                getters = {"location": "GetBucketLocation", "object-lock": "GetBucketObjectLockConfiguration",
                           "versioning": "GetBucketVersioning", "policy": "GetBucketPolicy", "tagging": "GetBucketTagging",
                           "acl": "GetBucketAcl", "encryption": "GetEncryptionConfiguration", "cors": "GetBucketCORS",
                           "lifecycle": "GetLifecycleConfiguration"}
                if sub in getters:
                    return (getters[sub], [req(getters[sub], barn, getters[sub])])
                op = "ListObjectsV2" if q.get("list-type") == "2" else "ListObjects"
                extra = {f"s3:{k}": [q[k]] for k in ("prefix", "delimiter", "max-keys") if k in q}
                return (op, [req("ListBucket", barn, op, extra)])
            if m == "HEAD":
                return ("HeadBucket", [req("ListBucket", barn, "HeadBucket")])
            if m == "PUT":
                putters = {"object-lock": "PutBucketObjectLockConfiguration", "versioning": "PutBucketVersioning",
                           "policy": "PutBucketPolicy", "tagging": "PutBucketTagging", "acl": "PutBucketAcl",
                           "encryption": "PutEncryptionConfiguration", "cors": "PutBucketCORS",
                           "lifecycle": "PutLifecycleConfiguration"}
                action = putters.get(sub, "CreateBucket")
                return (action, [req(action, barn, action)])
            if m == "DELETE":
                return ("DeleteBucket", [req("DeleteBucket", barn, "DeleteBucket")])
            if m == "POST" and sub == "delete":
                out = []
                for obj in re.findall(r"<Object>(.*?)</Object>", body or "", re.S):
                    k = re.search(r"<Key>(.*?)</Key>", obj, re.S)
                    v = re.search(r"<VersionId>(.*?)</VersionId>", obj, re.S)
                    if k:
                        out.append(req("DeleteObjectVersion" if v else "DeleteObject",
                                       f"{barn}/{html.unescape(k.group(1))}", "DeleteObjects"))
                return ("DeleteObjects", out + bypass)
            return ("", [])
        # Object-level operations.
        has_version = "versionId" in q
        if m in ("GET", "HEAD"):
            subs = {"retention": "GetObjectRetention", "legal-hold": "GetObjectLegalHold",
                    "tagging": "GetObjectVersionTagging" if has_version else "GetObjectTagging",
                    "acl": "GetObjectVersionAcl" if has_version else "GetObjectAcl",
                    "attributes": "GetObjectAttributes", "uploadId": "ListMultipartUploadParts"}
            sub = next((s for s in subs if s in q), "")
            if sub and m == "GET":
                return (subs[sub], [req(subs[sub], oarn, subs[sub])])
            op = "HeadObject" if m == "HEAD" else "GetObject"
            return (op, [req("GetObjectVersion" if has_version else "GetObject", oarn, op)])
        if m == "PUT":
            subs = {"retention": "PutObjectRetention", "legal-hold": "PutObjectLegalHold",
                    "tagging": "PutObjectVersionTagging" if has_version else "PutObjectTagging",
                    "acl": "PutObjectVersionAcl" if has_version else "PutObjectAcl"}
            sub = next((s for s in subs if s in q), "")
            if sub:
                return (subs[sub], [req(subs[sub], oarn, subs[sub])] + (bypass if sub == "retention" else []))
            if "partNumber" in q and "uploadId" in q:
                op = "UploadPartCopy" if "x-amz-copy-source" in headers else "UploadPart"
                return (op, [req("PutObject", oarn, op)] + copy_source())
            op = "CopyObject" if "x-amz-copy-source" in headers else "PutObject"
            return (op, [req("PutObject", oarn, op)] + write_extras(op) + copy_source())
        if m == "POST":
            if "uploads" in q:
                return ("CreateMultipartUpload", [req("PutObject", oarn, "CreateMultipartUpload")] + write_extras("CreateMultipartUpload"))
            if "uploadId" in q:
                return ("CompleteMultipartUpload", [req("PutObject", oarn, "CompleteMultipartUpload")])
            if "restore" in q:
                return ("RestoreObject", [req("RestoreObject", oarn, "RestoreObject")])
            if "select" in q:
                return ("SelectObjectContent", [req("GetObject", oarn, "SelectObjectContent")])
            return ("", [])
        if m == "DELETE":
            if "uploadId" in q:
                return ("AbortMultipartUpload", [req("AbortMultipartUpload", oarn, "AbortMultipartUpload")])
            if "tagging" in q:
                a = "DeleteObjectVersionTagging" if has_version else "DeleteObjectTagging"
                return (a, [req(a, oarn, a)])
            a = "DeleteObjectVersion" if has_version else "DeleteObject"
            return ("DeleteObject", [req(a, oarn, "DeleteObject")] + bypass)
        return ("", [])

    # -- any recorded request

    TARGETS = {"DynamoDB_20120810": "dynamodb", "AWSCognitoIdentityProviderService": "cognito-idp",
               "Logs_20140328": "logs", "TrentService": "kms", "secretsmanager": "secretsmanager",
               "AmazonSSM": "ssm", "AmazonSQS": "sqs", "AWSEvents": "events", "AWSStepFunctions": "states"}

    def parse(self, lineno: int, rec: dict[str, Any]) -> Call:
        headers = {str(k).lower(): str(v) for k, v in (rec.get("headers") or {}).items()}
        raw = rec.get("body") or ""
        if rec.get("body_b64"):
            try:
                raw = base64.b64decode(raw).decode("utf-8", "replace")
            except ValueError:
                return Call(lineno, "?", [], error="body_b64 is not base64")
        method, path, query = str(rec.get("method", "")), str(rec.get("path", "/")), str(rec.get("query", "")).lstrip("?")
        if "?" in path and not query:
            path, query = path.split("?", 1)
        scope = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/aws4_request", headers.get("authorization", ""))
        service = scope.group(1) if scope else ""
        target = headers.get("x-amz-target", "")
        if target:
            prefix, _, op = target.rpartition(".")
            svc = self.TARGETS.get(prefix, service or prefix.lower())
            try:
                body = json.loads(raw) if raw.strip() else {}
            except json.JSONDecodeError:
                return Call(lineno, op, [], error=f"{target}: body is not JSON")
            try:
                if svc == "dynamodb":
                    return Call(lineno, op, self.dynamodb(op, body))
                if svc == "cognito-idp":
                    if op in self.COGNITO_NO_IAM:
                        return Call(lineno, op, [], no_iam=f"cognito-idp {op} is not IAM-authorized (public or token-authorized API)")
                    return Call(lineno, op, self.cognito(op, body))
            except (KeyError, TypeError, AttributeError) as e:
                return Call(lineno, op, [], error=f"{target}: cannot read the request ({type(e).__name__}: {e})")
            self.notes.add(f"{self.group}: {svc} is not modelled: its calls are checked as {svc}:<Operation> on \"*\"")
            return Call(lineno, op, [AuthRequest(f"{svc}:{op}", "*", self.base_context())])
        form = dict(parse_qsl(raw, keep_blank_values=True)) if "Action=" in raw else {}
        if form.get("Action") or (service in ("sts", "iam", "sqs", "sns") and "Action" in dict(parse_qsl(query))):
            action = form.get("Action") or dict(parse_qsl(query))["Action"]
            svc = service or ("sts" if action in ("GetCallerIdentity", "AssumeRole", "AssumeRoleWithWebIdentity",
                                                  "GetSessionToken", "DecodeAuthorizationMessage") else "")
            if svc == "sts" and action == "GetCallerIdentity":
                return Call(lineno, action, [], no_iam="sts:GetCallerIdentity needs no permission")
            if not svc:
                return Call(lineno, action, [], error=f"query-protocol call {action} of an unknown service")
            return Call(lineno, action, [AuthRequest(f"{svc}:{action}", "*", self.base_context())])
        if service in ("", "s3"):
            op, reqs = self.s3(method, path, query, headers, raw)
            if not reqs:
                return Call(lineno, f"{method} {path}", [], error=f"unrecognized S3 request {method} {path}?{query}")
            return Call(lineno, op, reqs)
        return Call(lineno, f"{method} {path}", [], error=f"unrecognized {service} request {method} {path}")


# ------------------------------------------------------------------------------------ evaluation


@dataclass
class Unit:
    """One grant of the reverse report: (statement, action pattern, leading-key pattern or resource)."""
    stmt: Statement
    action: str
    kind: str  # "leading" | "resource"
    value: str
    used: bool = False


def leading_key_patterns(st: Statement) -> list[tuple[str, str]]:
    """(operator, pattern) pairs of a statement's positive dynamodb:LeadingKeys conditions."""
    out = []
    for op, keys in st.condition.items():
        base = op.split(":", 1)[-1].removesuffix("IfExists")
        if base.lower() in NEGATED or base.lower() == "null":
            continue
        for k, vals in keys.items():
            if k.lower() == "dynamodb:leadingkeys":
                out += [(base, v) for v in vals]
    return out


def units_of(st: Statement) -> list[Unit]:
    actions = st.actions if st.actions is not None else [f"NotAction:{json.dumps(st.not_actions)}"]
    lk = leading_key_patterns(st)
    out = []
    for a in actions:
        if lk:
            out += [Unit(st, a, "leading", p) for _, p in lk]
        else:
            for r in (st.resources if st.resources is not None else [f"NotResource:{json.dumps(st.not_resources)}"]):
                out.append(Unit(st, a, "resource", r))
    return out


@dataclass
class Match:
    stage: int  # 0 action no, 1 action yes / resource no, 2 resource yes / condition no, 3 full match
    why: str = ""
    unknown: list[str] = field(default_factory=list)


def match_statement(st: Statement, req: AuthRequest) -> Match:
    if st.actions is not None:
        if not any(glob(a, req.action, ignore_case=True) for a in st.actions):
            return Match(0)
    elif st.not_actions is not None:
        if any(glob(a, req.action, ignore_case=True) for a in st.not_actions):
            return Match(0)
    else:
        return Match(0)
    if st.resources is not None:
        if not any(glob(substitute_variables(r, req.context), req.resource) for r in st.resources):
            return Match(1, f"{st.label} covers {req.action} but not this resource")
    elif st.not_resources is not None:
        if any(glob(substitute_variables(r, req.context), req.resource) for r in st.not_resources):
            return Match(1, f"{st.label} excludes this resource (NotResource)")
    c = eval_conditions(st.condition, req.context)
    if not c.ok:
        why = f"{st.label} matches action and resource but its condition fails: {c.failed}"
        if c.unknown:
            why = f"{st.label} cannot match: unknown {', '.join(c.unknown)}"
        return Match(2, why, c.unknown)
    return Match(3)


@dataclass
class Decision:
    allowed: bool
    why: str
    allows: list[Statement]


def evaluate(req: AuthRequest, statements: list[Statement], notes: Notes, group: str) -> Decision:
    allows: list[Statement] = []
    best: Match = Match(0)
    for st in statements:
        m = match_statement(st, req)
        for u in m.unknown:
            notes.add(f"{group}: statement {st.label} uses {u}, which this checker cannot compute: it never matches")
        if m.stage == 3:
            if st.effect == "Deny":
                return Decision(False, f"explicit Deny {st.label}", [])
            if st.effect == "Allow":
                allows.append(st)
        elif st.effect == "Allow" and m.stage > best.stage:
            best = m
    if allows:
        return Decision(True, "", allows)
    return Decision(False, best.why or f"no Allow statement covers {req.action}", [])


def mark_used(units: list[Unit], st: Statement, req: AuthRequest) -> None:
    lk = req.context.get("dynamodb:leadingkeys") or []
    ops = {p: base for base, p in leading_key_patterns(st)}
    for u in units:
        if u.stmt is not st or u.used:
            continue
        if not (u.action.startswith("NotAction:") or glob(u.action, req.action, ignore_case=True)):
            continue
        if u.kind == "leading":
            u.used = any(value_matches(ops.get(u.value, "StringLike"), substitute_variables(u.value, req.context), v)
                         for v in lk)
        else:
            u.used = u.value.startswith("NotResource:") or glob(substitute_variables(u.value, req.context), req.resource)


# ------------------------------------------------------------------------------------ main


def read_calls(path: Path, notes: Notes, group: str) -> tuple[dict[str, str], list[tuple[int, Any]]]:
    env: dict[str, str] = {}
    records: list[tuple[int, Any]] = []
    if not path.exists():
        notes.add(f"{group}: no {path.name}: no calls recorded")
        return env, records
    first = True
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            records.append((lineno, e))
            first = False
            continue
        if first and isinstance(rec, dict) and "env" in rec and "method" not in rec:
            env = {str(k): str(v) for k, v in (rec.get("env") or {}).items()}
        else:
            if first:
                notes.add(f"{group}: {path.name} has no header line {{\"env\": ...}}: names cannot be mapped")
            records.append((lineno, rec))
        first = False
    return env, records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--template", required=True, type=Path)
    ap.add_argument("--calls", required=True, type=Path, help="folder of <group>.jsonl files")
    ap.add_argument("--strict-unused", action="store_true", help="count every unused grant as a failure")
    args = ap.parse_args(argv)

    notes = Notes()
    try:
        template = load_template(args.template)
    except Exception as e:  # noqa: BLE001 - any reason the template cannot be read
        print(f"iam_check: cannot read {args.template}: {e}")
        return 2
    model = build_model(template, notes)
    if not model.functions:
        print(f"iam_check: no function with Metadata.BuildProperties.Binary jhe-<group> in {args.template}")
        return 2
    if not args.calls.is_dir():
        print(f"iam_check: {args.calls} is not a folder")
        return 2

    groups = list(dict.fromkeys(
        [g for g in GROUPS if g in model.functions] + sorted(model.functions)
        + sorted(p.stem for p in args.calls.glob("*.jsonl"))))
    for g in GROUPS:
        if g not in model.functions:
            notes.add(f"group {g}: no function jhe-{g} in the template")

    deny_lines: dict[str, int] = {}
    unused_lines: list[str] = []
    runtime_lines: list[str] = []
    summary: list[tuple[str, int, int, int, int]] = []
    passed = failed = unused_total = 0

    for group in groups:
        fn = model.functions.get(group)
        role = fn.role if fn else None
        statements = list(model.role_statements.get(role, [])) if role else []
        if fn is not None and role is not None and not statements:
            notes.add(f"{group}: role {role} has no policy statements")
        header_env, records = read_calls(args.calls / f"{group}.jsonl", notes, group)
        names = names_from_env(fn, header_env, model, notes, group)
        bucket_lids = set(names.s3.values()) | set(model.bucket_statements)
        units = [u for st in statements if st.effect == "Allow" for u in units_of(st)]
        parser = CallParser(model, names, notes, group, role)
        g_allowed = g_denied = 0

        def deny(line: str) -> None:
            deny_lines[line] = deny_lines.get(line, 0) + 1

        for lineno, rec in records:
            if isinstance(rec, Exception) or not isinstance(rec, dict):
                deny(f"DENY {group} ? line {lineno}: not a JSON object ({rec})")
                g_denied += 1
                continue
            if fn is None or role is None:
                deny(f"DENY {group} * * line {lineno}: no function jhe-{group} with a role of this template")
                g_denied += 1
                continue
            call = parser.parse(lineno, rec)
            if call.error:
                deny(f"DENY {group} {call.operation} * line {lineno}: {call.error}")
                g_denied += 1
                continue
            if call.no_iam:
                notes.add(f"{group}: {call.no_iam}: counted as allowed")
                g_allowed += 1
                continue
            ok = True
            for req in call.requests:
                # The bucket policy of the bucket the request names applies too (resource-based).
                extra: list[Statement] = []
                if req.action.lower().startswith("s3:"):
                    for b in bucket_lids:
                        if req.resource.startswith(f"arn:{PARTITION}:s3:::{logical(b)}"):
                            extra += [s for s in model.bucket_statements.get(b, []) if bucket_statement_applies(s, role)]
                d = evaluate(req, statements + extra, notes, group)
                for st in d.allows:
                    mark_used(units, st, req)
                if not d.allowed:
                    ok = False
                    detail = req.detail()
                    deny(f"DENY {group} {req.action} {req.resource}{' ' + detail if detail else ''}: {d.why}")
            if ok:
                g_allowed += 1
            else:
                g_denied += 1

        g_unused = 0
        for u in units:
            if u.used:
                continue
            sid = u.stmt.sid
            if u.action.lower() in RUNTIME_ACTIONS:
                runtime_lines.append(f"RUNTIME {group} {sid} {u.action} {u.value}: used by the Lambda service for "
                                     f"the function's logs, never by a recorded call; not counted")
                continue
            unused_lines.append(f"UNUSED {group} {sid} {u.action} {u.value}")
            g_unused += 1
        passed += g_allowed
        failed += g_denied
        unused_total += g_unused
        summary.append((group, len(records), g_allowed, g_denied, g_unused))

    for n in notes.items:
        print(f"NOTE {n}")
    for line, count in deny_lines.items():
        print(line + (f" [x{count}]" if count > 1 else ""))
    for line in unused_lines + runtime_lines:
        print(line)
    width = max(len(g) for g, *_ in summary) if summary else 5
    print(f"{'group':<{width}}  {'calls':>6}  {'allowed':>7}  {'denied':>6}  {'unused grants':>13}")
    for g, c, a, d, u in summary:
        print(f"{g:<{width}}  {c:>6}  {a:>7}  {d:>6}  {u:>13}")
    if args.strict_unused:
        failed += unused_total
    print(f"iam_check: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
