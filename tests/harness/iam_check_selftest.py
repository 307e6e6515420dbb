#!/usr/bin/env python3
"""Self-test of tests/harness/iam_check.py: no fixtures in the repository.

Usage:
    python tests/harness/iam_check_selftest.py

Builds, in a temporary folder, tiny SAM templates (short-form tags: !GetAtt, !Sub, !Ref) and
recorded-call files, runs the checker on them and asserts its verdicts:

- PutItem on OBSUUID#x is denied under ForAllValues:StringLike LeadingKeys ["OBS#*"] (`#` is
  literal, so OBS#* does not match OBSUUID#...) and allowed once OBSUUID#* is added;
- TransactWriteItems with a Put and a Delete needs dynamodb:PutItem and dynamodb:DeleteItem;
- an explicit Deny wins over an Allow (and a ForAnyValue Deny does not fire on other keys);
- a GSI query is checked against <table>/index/<name>, with the index's partition key as LeadingKeys;
- an S3 PutObject outside the granted prefix is denied, object-lock headers need PutObjectRetention;
- the table and the bucket may share one concrete name;
- unused grants are reported, and fail the run under --strict-unused;
- condition-operator corner cases (empty sets under ForAllValues / ForAnyValue, a missing key under
  a negated operator, Null, IfExists).

Prints one line per check and ``iam_check selftest: N passed, M failed``; exit status 1 on failure.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import iam_check  # noqa: E402

PASSED = 0
FAILED = 0


def check(ok: bool, what: str, output: str = "") -> None:
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"PASS {what}")
    else:
        FAILED += 1
        print(f"FAIL {what}")
        if output:
            print(textwrap.indent(output.rstrip(), "    | "))


TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Environment:
      Variables:
        JHE_TABLE: !Ref Table
        JHE_BUNDLE_BUCKET: !Ref BundleBucket
        JHE_AUDIT_BUCKET: !Ref AuditBucket
        JHE_USER_POOL_ID: !Ref UserPool
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: gsi1
          KeySchema:
            - {AttributeName: gsi1pk, KeyType: HASH}
            - {AttributeName: gsi1sk, KeyType: RANGE}
  BundleBucket:
    Type: AWS::S3::Bucket
  AuditBucket:
    Type: AWS::S3::Bucket
    Properties:
      ObjectLockEnabled: true
  AuditBucketPolicy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref AuditBucket
      PolicyDocument:
        Statement:
          - Sid: DenyInsecureTransport
            Effect: Deny
            Principal: "*"
            Action: "s3:*"
            Resource: [!GetAtt AuditBucket.Arn, !Sub "${AuditBucket.Arn}/*"]
            Condition:
              Bool:
                aws:SecureTransport: "false"
  UserPool:
    Type: AWS::Cognito::UserPool
  LogGroup:
    Type: AWS::Logs::LogGroup
  TestFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: jhe-fhir-ingest
    Properties:
      Role: !GetAtt TestRole.Arn
  TestRole:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: test
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Sid: Logs
                Effect: Allow
                Action: [logs:CreateLogStream, logs:PutLogEvents]
                Resource: !GetAtt LogGroup.Arn
{statements}
"""

HEADER = {"env": {"JHE_TABLE": "jhe-t", "JHE_BUNDLE_BUCKET": "jhe-t", "JHE_AUDIT_BUCKET": "jhe-t-audit",
                  "JHE_USER_POOL_ID": "us-east-1_pool"}}
TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/LOGICAL(Table)"


def ddb(op: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"method": "POST", "path": "/", "query": "",
            "headers": {"x-amz-target": f"DynamoDB_20120810.{op}", "content-type": "application/x-amz-json-1.0"},
            "body": json.dumps(body), "status": 200}


def s3(method: str, path: str, query: str = "", headers: dict[str, str] | None = None, body: str = "") -> dict[str, Any]:
    return {"method": method, "path": path, "query": query, "headers": headers or {}, "body": body, "status": 200}


def put_item(pk: str) -> dict[str, Any]:
    return ddb("PutItem", {"TableName": "jhe-t", "Item": {"pk": {"S": pk}, "sk": {"S": "A"}}})


def delete_item(pk: str) -> dict[str, Any]:
    return ddb("DeleteItem", {"TableName": "jhe-t", "Key": {"pk": {"S": pk}, "sk": {"S": "A"}}})


def query(index: str | None, value: str, hash_attr: str) -> dict[str, Any]:
    body: dict[str, Any] = {"TableName": "jhe-t", "KeyConditionExpression": "#k = :v AND begins_with(#s, :p)",
                            "ExpressionAttributeNames": {"#k": hash_attr, "#s": "gsi1sk" if index else "sk"},
                            "ExpressionAttributeValues": {":v": {"S": value}, ":p": {"S": "X"}}}
    if index:
        body["IndexName"] = index
    return ddb("Query", body)


def statements(yaml_text: str) -> str:
    return textwrap.indent(textwrap.dedent(yaml_text).strip("\n"), " " * 14)


def run(stmts: str, calls: list[dict[str, Any]], strict: bool = False) -> tuple[int, str]:
    """Runs the checker on a template with these extra statements and one fhir-ingest call file."""
    with tempfile.TemporaryDirectory() as d:
        tpl = Path(d) / "template.yaml"
        tpl.write_text(TEMPLATE.replace("{statements}", statements(stmts)), encoding="utf-8")
        calls_dir = Path(d) / "calls"
        calls_dir.mkdir()
        lines = [json.dumps(HEADER)] + [json.dumps(c) for c in calls]
        (calls_dir / "fhir-ingest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        out = io.StringIO()
        argv = ["--template", str(tpl), "--calls", str(calls_dir)] + (["--strict-unused"] if strict else [])
        with contextlib.redirect_stdout(out):
            rc = iam_check.main(argv)
        return rc, out.getvalue()


def lines(output: str, prefix: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(prefix)]


def last(output: str) -> str:
    return output.rstrip().splitlines()[-1]


PUT_OBS_ONLY = """
- Sid: PutObservations
  Effect: Allow
  Action: dynamodb:PutItem
  Resource: !GetAtt Table.Arn
  Condition:
    ForAllValues:StringLike:
      dynamodb:LeadingKeys: ["OBS#*"]
"""

PUT_OBS_AND_UUID = PUT_OBS_ONLY.replace('["OBS#*"]', '["OBS#*", "OBSUUID#*"]')


def test_leading_keys() -> None:
    rc, out = run(PUT_OBS_ONLY, [put_item("OBSUUID#x"), put_item("OBS#1")])
    denies = lines(out, "DENY ")
    check(rc == 1 and any("dynamodb:PutItem" in d and '"OBSUUID#x"' in d for d in denies),
          "PutItem OBSUUID#x is denied under LeadingKeys [OBS#*] ('#' is literal)", out)
    check(not any('"OBS#1"' in d for d in denies), "PutItem OBS#1 is allowed under LeadingKeys [OBS#*]", out)
    check(last(out) == "iam_check: 1 passed, 1 failed", "counts: 1 passed, 1 failed", out)
    rc, out = run(PUT_OBS_AND_UUID, [put_item("OBSUUID#x"), put_item("OBS#1")])
    check(rc == 0 and not lines(out, "DENY "), "PutItem OBSUUID#x is allowed once OBSUUID#* is granted", out)
    check(last(out) == "iam_check: 2 passed, 0 failed", "counts: 2 passed, 0 failed", out)
    # BatchWriteItem is its own action, and every item's partition key must match (ForAllValues).
    batch = ddb("BatchWriteItem", {"RequestItems": {"jhe-t": [
        {"PutRequest": {"Item": {"pk": {"S": "OBS#2"}, "sk": {"S": "A"}}}},
        {"PutRequest": {"Item": {"pk": {"S": "USER#1"}, "sk": {"S": "A"}}}}]}})
    rc, out = run(PUT_OBS_AND_UUID + """
- Sid: Batch
  Effect: Allow
  Action: dynamodb:BatchWriteItem
  Resource: !GetAtt Table.Arn
  Condition:
    ForAllValues:StringLike:
      dynamodb:LeadingKeys: ["OBS#*"]
""", [batch])
    check(rc == 1 and any("dynamodb:BatchWriteItem" in d and "USER#1" in d for d in lines(out, "DENY ")),
          "BatchWriteItem with one key outside the patterns is denied (ForAllValues over all items)", out)


def test_transactions() -> None:
    tx = ddb("TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "jhe-t", "Item": {"pk": {"S": "OBS#1"}, "sk": {"S": "A"}}}},
        {"Delete": {"TableName": "jhe-t", "Key": {"pk": {"S": "OBSCOUNT#1"}, "sk": {"S": "A"}}}}]})
    put_only = """
- Sid: Put
  Effect: Allow
  Action: dynamodb:PutItem
  Resource: !GetAtt Table.Arn
"""
    rc, out = run(put_only, [tx])
    denies = lines(out, "DENY ")
    check(rc == 1 and len(denies) == 1 and "dynamodb:DeleteItem" in denies[0] and "via TransactWriteItems" in denies[0]
          and '"OBSCOUNT#1"' in denies[0],
          "TransactWriteItems Put+Delete with only PutItem: its Delete is denied as dynamodb:DeleteItem", out)
    check(last(out) == "iam_check: 0 passed, 1 failed", "a transaction counts as one call", out)
    rc, out = run(put_only + """
- Sid: Delete
  Effect: Allow
  Action: dynamodb:DeleteItem
  Resource: !GetAtt Table.Arn
""", [tx])
    check(rc == 0 and not lines(out, "DENY "), "TransactWriteItems Put+Delete with PutItem and DeleteItem is allowed", out)
    rc, out = run("""
- Sid: TransactWrite
  Effect: Allow
  Action: dynamodb:TransactWriteItems
  Resource: !GetAtt Table.Arn
""", [tx])
    check(rc == 1 and len(lines(out, "DENY ")) == 2,
          "dynamodb:TransactWriteItems alone authorizes none of a transaction's items", out)


def test_explicit_deny() -> None:
    stmts = """
- Sid: Delete
  Effect: Allow
  Action: dynamodb:DeleteItem
  Resource: !GetAtt Table.Arn
- Sid: AuditIsAppendOnly
  Effect: Deny
  Action: [dynamodb:DeleteItem, dynamodb:UpdateItem]
  Resource: !GetAtt Table.Arn
  Condition:
    ForAnyValue:StringLike:
      dynamodb:LeadingKeys: ["AUDIT#*", "AUDITP#*"]
"""
    rc, out = run(stmts, [delete_item("AUDIT#2024-01-01"), delete_item("OBSCOUNT#1")])
    denies = lines(out, "DENY ")
    check(rc == 1 and len(denies) == 1 and "AUDIT#2024-01-01" in denies[0] and "explicit Deny AuditIsAppendOnly" in denies[0],
          "an explicit Deny wins over an Allow", out)
    check(last(out) == "iam_check: 1 passed, 1 failed", "the ForAnyValue Deny leaves other keys to the Allow", out)


def test_gsi_query() -> None:
    table_only = """
- Sid: Read
  Effect: Allow
  Action: dynamodb:Query
  Resource: !GetAtt Table.Arn
"""
    rc, out = run(table_only, [query("gsi1", "G#1", "gsi1pk"), query(None, "OBS#1", "pk")])
    denies = lines(out, "DENY ")
    check(rc == 1 and len(denies) == 1 and f"{TABLE_ARN}/index/gsi1 " in denies[0],
          "a GSI query is checked against <table>/index/gsi1 (a table-only grant denies it)", out)
    check(last(out) == "iam_check: 1 passed, 1 failed", "the table query is allowed", out)
    index_keys = """
- Sid: ReadIndex
  Effect: Allow
  Action: dynamodb:Query
  Resource: !Sub "${Table.Arn}/index/*"
  Condition:
    ForAllValues:StringLike:
      dynamodb:LeadingKeys: ["G#*"]
"""
    rc, out = run(index_keys, [query("gsi1", "G#1", "gsi1pk"), query("gsi1", "H#1", "gsi1pk")])
    denies = lines(out, "DENY ")
    check(rc == 1 and len(denies) == 1 and '"H#1"' in denies[0],
          "a GSI query's LeadingKeys is its index partition key value (G#1 allowed, H#1 denied)", out)


def test_s3() -> None:
    stmts = """
- Sid: Archive
  Effect: Allow
  Action: s3:PutObject
  Resource: !Sub "${BundleBucket.Arn}/uploads/*"
- Sid: AuditCopies
  Effect: Allow
  Action: s3:PutObject
  Resource: !Sub "${AuditBucket.Arn}/*"
"""
    calls = [s3("PUT", "/jhe-t/other/x.json", "x-id=PutObject"), s3("PUT", "/jhe-t/uploads/x.json", "x-id=PutObject"),
             s3("PUT", "/jhe-t-audit/2024-01-01/a.json", "x-id=PutObject", {"if-none-match": "*"})]
    rc, out = run(stmts, calls)
    denies = lines(out, "DENY ")
    check(rc == 1 and len(denies) == 1 and "s3:PutObject arn:aws:s3:::LOGICAL(BundleBucket)/other/x.json" in denies[0],
          "S3 PutObject outside the granted prefix is denied", out)
    check(last(out) == "iam_check: 2 passed, 1 failed",
          "PutObject inside the prefix and to the audit bucket (bucket policy Deny not triggered over TLS) pass", out)
    lock = s3("PUT", "/jhe-t-audit/2024-01-01/b.json", "",
              {"x-amz-object-lock-mode": "COMPLIANCE", "x-amz-object-lock-retain-until-date": "2030-01-01T00:00:00Z"})
    rc, out = run(stmts, [lock])
    denies = lines(out, "DENY ")
    check(rc == 1 and len(denies) == 1 and "s3:PutObjectRetention" in denies[0],
          "PutObject with x-amz-object-lock-* headers also needs s3:PutObjectRetention", out)
    # Same concrete name for table and bundle bucket: each service maps it to its own resource.
    rc, out = run(stmts + PUT_OBS_ONLY, [put_item("OBS#1"), s3("PUT", "/jhe-t/uploads/y", "")])
    check(rc == 0, "table and bucket sharing the concrete name jhe-t resolve to Table and BundleBucket", out)


def test_unused() -> None:
    stmts = PUT_OBS_AND_UUID + """
- Sid: NeverUsed
  Effect: Allow
  Action: cognito-idp:AdminDeleteUser
  Resource: !GetAtt UserPool.Arn
"""
    rc, out = run(stmts, [put_item("OBS#1")])
    unused = lines(out, "UNUSED ")
    check(rc == 0 and "UNUSED fhir-ingest NeverUsed cognito-idp:AdminDeleteUser "
          "arn:aws:cognito-idp:us-east-1:123456789012:userpool/LOGICAL(UserPool)" in unused,
          "an unused resource grant is reported", out)
    check("UNUSED fhir-ingest PutObservations dynamodb:PutItem OBSUUID#*" in unused
          and not any(u.endswith(" OBS#*") for u in unused),
          "unused leading-key patterns are reported, used ones are not", out)
    check(not any(" Logs " in u for u in unused) and any(line.startswith("RUNTIME fhir-ingest Logs") for line in out.splitlines()),
          "log-group grants are listed as RUNTIME, not UNUSED", out)
    check(any(line.split()[:2] == ["fhir-ingest", "1"] and line.split()[-1] == "2" for line in out.splitlines()),
          "the summary table has the group's calls and unused grants", out)
    rc, out = run(stmts, [put_item("OBS#1")], strict=True)
    check(rc == 1 and last(out) == "iam_check: 1 passed, 2 failed", "--strict-unused counts unused grants as failed", out)


def test_conditions() -> None:
    ev = iam_check.eval_conditions
    lk = "dynamodb:LeadingKeys"
    check(ev({"ForAllValues:StringLike": {lk: ["OBS#*"]}}, {}).ok,
          "ForAllValues is true when the request has no value (Scan: AWS fails open)")
    check(not ev({"ForAnyValue:StringLike": {lk: ["AUDIT#*"]}}, {}).ok, "ForAnyValue is false when the request has no value")
    check(ev({"StringNotLike": {"s3:prefix": ["secret/*"]}}, {}).ok, "a negated operator is true when the key is missing")
    check(not ev({"StringLike": {"s3:prefix": ["pub/*"]}}, {}).ok, "a positive operator is false when the key is missing")
    check(ev({"StringLikeIfExists": {"s3:prefix": ["pub/*"]}}, {}).ok, "IfExists is true when the key is missing")
    check(ev({"Null": {"s3:prefix": ["true"]}}, {}).ok and not ev({"Null": {"s3:prefix": ["false"]}}, {}).ok,
          "Null tests presence")
    check(not ev({"StringNotEquals": {"s3:prefix": ["a", "b"]}}, {"s3:prefix": ["b"]}).ok,
          "negated operator values are NORed")
    check(ev({"ForAllValues:StringLike": {lk: ["OBS#*", "OBSKEY#*"]}}, {"dynamodb:leadingkeys": ["OBS#1", "OBSKEY#2"]}).ok
          and not ev({"ForAllValues:StringLike": {lk: ["OBS#*"]}}, {"dynamodb:leadingkeys": ["OBS#1", "OBSKEY#2"]}).ok,
          "ForAllValues needs every value to match some pattern")
    r = ev({"StringEquals": {"aws:SourceVpce": ["vpce-1"]}}, {})
    check(not r.ok and r.unknown == ["condition key aws:SourceVpce"], "an unknown condition key makes the statement not match")
    check(iam_check.glob("OBS#*", "OBS#1") and not iam_check.glob("OBS#*", "OBSUUID#1") and iam_check.glob("O?S#*", "OBS#1"),
          "IAM wildcards: * and ?, everything else literal")


def main() -> int:
    for test in (test_leading_keys, test_transactions, test_explicit_deny, test_gsi_query, test_s3, test_unused,
                 test_conditions):
        test()
    print(f"iam_check selftest: {PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
