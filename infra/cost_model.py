#!/usr/bin/env python3
"""Monthly AWS cost of infra/template.yaml under the workload of infra/COSTS.md.

Standard library only. Every number the model uses is an input below: the workload, the item
sizes measured by the test suite (test-output/iam-calls/*.jsonl), the Lambda assumptions, and the
us-east-1 list prices with their sources. Change an input, run again, paste the tables.

    python3 infra/cost_model.py              # the tables of infra/COSTS.md (markdown)
    python3 infra/cost_model.py --measure    # re-measure item sizes from test-output/iam-calls
    python3 infra/cost_model.py --json       # every line item of months 1 and 12, as JSON

Units: 1 KB = 1,024 bytes (DynamoDB's unit), 1 GB = 2^30 bytes (AWS storage and transfer billing).
"""

import argparse
import base64
import glob
import json
import math
import os
import sys

KB = 1024
GB = 1024**3
DAYS_PER_MONTH = 365 / 12  # 30.42

# ----------------------------------------------------------------------------------------------
# Prices, us-east-1, list (on-demand), USD. (value, unit, source, read on). "ASSUMPTION" in the
# source means the rate was not found in a stored copy of a page and is the usual list rate.
READ_ON = "2026-12-04"
PRICES = {
    "ddb_wru": (0.625 / 1e6, "write request units (on-demand, Standard table class)",
                "https://airbyte.com/data-engineering-resources/dynamodb-pricing (us-east-1, after the Nov 2024 cut); unit rules: https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "ddb_rru": (0.125 / 1e6, "read request units", "same as ddb_wru"),
    "ddb_storage_gb": (0.25, "per GB-month (first 25 GB free)", "https://aws.amazon.com/dynamodb/pricing/ ('$0.25 per GB-month thereafter')"),
    "ddb_pitr_gb": (0.20, "per GB-month of table size, continuous backups (PITR)",
                    "https://finops.com.py/services/dynamodb/backups ; https://www.factualminds.com/blog/aws-backup-pricing-vaults-cross-region-restores/"),
    "backup_ddb_gb": (0.10, "per GB-month, each DynamoDB backup (full copy), warm",
                      "https://finops.com.py/services/dynamodb/backups ; full copies: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateBackup.html"),
    "backup_s3_gb": (0.05, "per GB-month, S3 backup (objects < 128 KB billed as 128 KB)",
                     "https://cloudburn.io/blog/aws-backup-pricing ; 128 KB rule: https://aws.amazon.com/backup/pricing/ (footnote)"),
    "s3_storage_gb": (0.023, "per GB-month, S3 Standard, first 50 TB",
                      "https://gist.github.com/EverettBerry/a37438006529a55f42da6fdbc44a505c ; https://deepeshsoni.com/archives/256"),
    "s3_put": (0.005 / 1000, "PUT/COPY/POST/LIST requests",
               "https://raw.githubusercontent.com/api-evangelist/posts/main/_posts/2015-12-15-dialing-in-your-api-pricing-down-to-the-endpoint-and-verb-level.md (quotes https://aws.amazon.com/s3/pricing/; unchanged since)"),
    "s3_get": (0.0004 / 1000, "GET requests", "same as s3_put"),
    "lambda_req": (0.20 / 1e6, "requests", "https://cloudchipr.com/blog/aws-lambda-pricing"),
    "lambda_gbs_arm": (0.0000133334, "GB-second, arm64 (first 7.5 billion GB-s a month)", "https://cloudchipr.com/blog/aws-lambda-pricing"),
    "apigw_http": (1.00 / 1e6, "HTTP API requests (first 300 M), metered in 512 KB increments",
                   "https://awsforengineers.com/blog/aws-api-gateway-pricing-explained ; 512 KB: https://www.stormit.cloud/blog/amazon-api-gateway-pricing"),
    "cf_out_gb": (0.085, "per GB to the internet, US/Canada/Mexico, first 10 TB", "https://aws.amazon.com/cloudfront/pricing (stored copy, table)"),
    "cf_https_req": (0.0100 / 10000, "HTTPS requests, North America", "https://wring.co/blog/aws-cloudfront-pricing-guide"),
    "cf_origin_gb": (0.020, "per GB sent to the origin (request bodies), US", "ASSUMPTION: usual list rate, not shown in the stored copy of https://aws.amazon.com/cloudfront/pricing"),
    "logs_ingest_gb": (0.50, "per GB ingested, Standard log class", "https://c3x.dev/blog/cloudwatch-logs-cost-optimization ; https://hykell.com/kb/platform-specific-guides/aws-cloudwatch-logs-pricing"),
    "logs_store_gb": (0.03, "per GB-month stored (compressed)", "same as logs_ingest_gb"),
    "cw_alarm": (0.10, "per standard-resolution alarm-month", "https://002-workshop-application-performance-monitoring.huyanh.click/5-optimization ; free tier: https://aws.amazon.com/cloudwatch/pricing/"),
    "cw_metric": (0.30, "per custom metric-month", "https://signoz.io/guides/cloudwatch-pricing"),
    "xray_trace": (5.00 / 1e6, "traces recorded (first 100,000 a month free)", "https://aws.amazon.com/de/xray/pricing/"),
    "kms_key": (1.00, "per customer managed key-month (+$1 per rotation, first two)", "https://aws.amazon.com/kms/pricing/"),
    "kms_req": (0.03 / 10000, "requests (first 20,000 a month free)", "https://aws.amazon.com/kms/pricing/ ; https://www.wring.co/blog/aws-kms-pricing-guide"),
    "waf_acl": (5.00, "per web ACL-month", "https://c3x.dev/blog/aws-waf-cost-explained/"),
    "waf_rule": (1.00, "per rule or managed rule group-month", "https://c3x.dev/blog/aws-waf-cost-explained/"),
    "waf_req": (0.60 / 1e6, "requests inspected", "https://c3x.dev/blog/aws-waf-cost-explained/"),
    "cognito_plus_mau": (0.020, "per MAU, Plus tier (threat protection), no free tier",
                         "https://raw.githubusercontent.com/api-evangelist/amazon-cognito/refs/heads/main/plans/amazon-cognito-plans-pricing.yml (transcribed from https://aws.amazon.com/cognito/pricing/ on 2026-09-20)"),
    "secret": (0.40, "per secret-month", "https://hivebook.wiki/wiki/aws-secrets-manager-rotated-secrets-dynamic-db-credentials-kms (third party)"),
    "sns_email": (2.00 / 100000, "email notifications (first 1,000 free)", "ASSUMPTION: usual list rate, not looked up (alarms only: negligible)"),
}


def price(key):
    return PRICES[key][0]


# ----------------------------------------------------------------------------------------------
# Workload (infra/COSTS.md, "Workload").
WORKLOAD = {
    "patients": 1000,
    "readings_per_day": 288,            # 5-minute CGM
    "bundle_size": 100,                 # observations per FHIR batch Bundle
    "researchers": 10,
    "pull_days": 30,                    # each weekly pull reads every patient's last 30 days
    "pulls_per_month": 52 / 12,         # weekly
    "page_size": 1000,
    "practitioners": 20,                # web UI, light use (assumption)
    "ui_api_requests_per_practitioner": 2000,  # a month: 20 working days x 100 calls (assumption)
    "ui_audited_share": 0.5,            # of those calls, the ones touching patient data (assumption)
    "token_refreshes_per_upload": 1.0,  # access tokens live 60 min, a patient uploads every 8.3 h
    "api_key_grants_per_pull": 2,       # a pull of 9,000 pages takes longer than one 60-min token
}

# ----------------------------------------------------------------------------------------------
# Sizes measured from test-output/iam-calls (2026-12-04); `--measure` re-derives them.
SIZES = {
    # DynamoDB item sizes as DynamoDB counts them (attribute names + values).
    "obs_item": 826,           # OBS#{patient}: fields under short names, the OMH data point's text (dp)
    "obs_item_before": 1349,   # the same before (measured 2026-12-04): base64, long names, FHIR head
    "obsid_item": 92,          # OBSID#{id}
    "obskey_item": 88,         # OBSKEY#{system}|{value} (one identifier per observation)
    "obsuuid_item": 93,        # OBSUUID#{patient}#{time}#{uuid}
    "count_item": 73,          # OBSCOUNT#{patient} / {code}#{first id}, one per chunk
    "count_day_entry": 12,     # bytes a folded count record grows by per day held ("[20426,288],")
    "audit_item": 580,         # AUDIT#{day}#{shard}, projected into gsi1 (AUDITU#{user})
    "auditp_item": 540,        # AUDITP#{patient}, one per patient named
    "audit_copy": 520,         # S3 object of the record in the Object-Lock bucket
    "small_read_item_max": 4096,  # every fixed read (user, roles, patient, studies...) is < 4 KB
    "item_overhead": 100,      # storage overhead per item and per index entry
    "gsi2_keys_only_entry": 125,  # table pk+sk + gsi2pk+gsi2sk of an observation, names included
    # Request/response bodies.
    "bundle_entry_archived": 1200,   # archived raw body per observation (measured 1,177 B + header)
    "upload_response": 150 * 1000,   # batch-response echoing the created resources (BENCHMARKS.md)
    "page_response": 1.15e6,         # a searchset page of 1,000 entries (BENCHMARKS.md)
    "ui_response": 10 * 1000,        # an admin/UI answer (assumption)
    # Logs per request: Lambda platform JSON lines + the app's line + API access log (assumption).
    "log_bytes_per_request": 1100,
    "log_compression": 0.15,          # stored/ingested (assumption)
    "s3_access_log_line": 400,        # S3 server access log record per request (assumption)
}

# Reads, measured call by call in test-output/iam-calls (see COSTS.md "Reads").
READS = {
    "ingest_fixed_rru": 16,          # user, roles, patient, 2 studies x 3, consents, orgs, device, code
    "ingest_rru_per_obs": 7,         # 3 keys checked up front + 4 at indexing (id, identifier, uuid, legacy uuid form)
    "page_fixed_rru": 15,            # user, roles, API key, codes (gsi1, 0.5), patient facts, 2 studies x 3, consents
    "page_count_rru": 2,             # count records, first page of a pull only
    "refresh_rru": 2, "refresh_wru": 1,  # throttle records read, the account's deleted (1 WRU even when absent)
}

# Chunking of an upload (shared/src/repo/observations.rs): 100 writes per transaction, 7 per
# observation at most -> 14 observations per chunk, one count record per chunk and (patient, code).
MAX_TRANSACT = 100
WRITES_PER_OBSERVATION = 7
COUNT_FOLD_AT = 32

# Lambda (template: arm64; fhir-ingest, fhir-read and auth 1,024 MB; admin 512 MB). Durations are
# estimates, not measurements.
LAMBDA = {
    "ingest": {"mb": 1024, "ms": 150},   # per Bundle of 100
    "read": {"mb": 1024, "ms": 100},     # per page of 1,000
    "auth": {"mb": 1024, "ms": 150},     # a refresh through Cognito
    "ui": {"mb": 512, "ms": 50},         # admin and light UI calls
}

# Fixed resources in infra/template.yaml.
FIXED = {
    "kms_keys": 3, "kms_requests": 100_000,   # table-key Decrypts, Lambda env, logs, S3 bucket keys (estimate)
    "waf_acls": 1, "waf_rules": 6,
    "alarms": 29, "custom_metrics": 1, "secrets": 1,
    "backup_retention_days": 35,
    "backup_every_days": 1,          # BackupPlan: cron(0 5 * * ? *), daily
    "backup_audit_bucket": True,     # BackupSelection: table, upload bucket, audit bucket
    "log_retention_days": 365,
    "xray_sample_reads": 0.25,  # default sampling: 1/s + 5%; pulls are bursts, uploads are not (estimate)
}

FREE = {  # always-free allowances (not the 12-month ones), for the "with free tier" line only
    "ddb_storage_gb": 25, "lambda_req": 1e6, "lambda_gbs": 400_000, "cf_out_gb": 1024, "cf_req": 10e6,
    "kms_req": 20_000, "cw_alarms": 10, "cw_metrics": 10, "logs_gb": 5, "xray": 100_000,
}


# ----------------------------------------------------------------------------------------------
# The key design in write units.

def wcu(size, transactional):
    """Write units for one item of `size` bytes: 1 KB rounded up, doubled in a transaction."""
    return math.ceil(size / KB) * (2 if transactional else 1)


def obs_write_units(opts=None):
    """Write units per observation indexed, by item, for the variants of COSTS.md.

    opts: before = the item as stored before (1,349 B), b = gsi2 KEYS_ONLY,
    c = pointers written outside the transaction.
    """
    opts = opts or set()
    s = SIZES
    obs = opts_obs_size(opts)
    chunk = max(MAX_TRANSACT // WRITES_PER_OBSERVATION, 1)
    pointer_tx = "c" not in opts
    gsi2_entry = s["gsi2_keys_only_entry"] if "b" in opts else obs
    return {
        "observation item (OBS#)": wcu(obs, True),
        "OBSID pointer": wcu(s["obsid_item"], pointer_tx),
        "OBSKEY pointer": wcu(s["obskey_item"], pointer_tx),
        "OBSUUID pointer": wcu(s["obsuuid_item"], pointer_tx),
        "gsi2 index entry": wcu(gsi2_entry, False),  # index updates are standard writes
        "count record (1 per 14)": wcu(s["count_item"], pointer_tx) / chunk,
    }


def opts_obs_size(opts):
    """The observation item's size: as measured now, or as it was before."""
    return SIZES["obs_item_before"] if "before" in opts else SIZES["obs_item"]


def fold_wru_per_bundle(days_held):
    """Folding count records: every 4th upload of a (patient, code) folds 33 records into one
    (1 conditional put + 32 deletes, transactional). The kept record holds a count per day."""
    chunks = math.ceil(WORKLOAD["bundle_size"] / (MAX_TRANSACT // WRITES_PER_OBSERVATION))
    uploads_per_fold = math.ceil(COUNT_FOLD_AT / chunks)
    records = uploads_per_fold * chunks + 1
    kept = SIZES["count_item"] + SIZES["count_day_entry"] * days_held
    return (wcu(kept, True) + (records - 1) * wcu(SIZES["count_item"], True)) / uploads_per_fold


# ----------------------------------------------------------------------------------------------
# Volumes per month.

def volumes():
    w = WORKLOAD
    obs = w["patients"] * w["readings_per_day"] * DAYS_PER_MONTH
    uploads = obs / w["bundle_size"]
    per_pull = w["readings_per_day"] * w["pull_days"]
    pages_per_patient = math.ceil(per_pull / w["page_size"])
    pulls = w["researchers"] * w["pulls_per_month"]
    pages = pulls * w["patients"] * pages_per_patient
    first_pages = pulls * w["patients"]
    obs_read = pulls * w["patients"] * per_pull
    items_read = obs_read + pulls * w["patients"] * (pages_per_patient - 1)  # Limit = page + 1
    refreshes = uploads * w["token_refreshes_per_upload"]
    grants = pulls * w["api_key_grants_per_pull"]
    ui = w["practitioners"] * w["ui_api_requests_per_practitioner"]
    return {
        "obs": obs, "uploads": uploads, "pages": pages, "first_pages": first_pages,
        "obs_read": obs_read, "items_read": items_read, "pages_per_patient": pages_per_patient,
        "refreshes": refreshes, "grants": grants, "ui": ui,
        "audited": uploads + pages + refreshes + grants + ui * w["ui_audited_share"],
        "audited_with_patient": uploads + pages + ui * w["ui_audited_share"],
    }


def pull_rru(item_size):
    """RRU of one patient's pull: full pages read page_size + 1 items (to know there is more)."""
    w = WORKLOAD
    n = w["readings_per_day"] * w["pull_days"]
    pages = math.ceil(n / w["page_size"])
    last = n - (pages - 1) * w["page_size"]
    return (pages - 1) * page_rru(w["page_size"] + 1, item_size) + page_rru(last, item_size)


def page_rru(items, item_size):
    """A strongly consistent Query: item sizes summed, 4 KB rounding per 1 MB response."""
    total = items * item_size
    calls = max(1, math.ceil(total / (1024 * KB)))
    return sum(math.ceil(min(1024 * KB, total - i * 1024 * KB) / (4 * KB)) for i in range(calls))


# ----------------------------------------------------------------------------------------------
# Storage over time (continuous growth from day 0).

def storage_bytes_per_month(opts=None):
    opts = opts or set()
    v, s = volumes(), SIZES
    ovh = s["item_overhead"]
    obs_item = opts_obs_size(opts)
    table_obs = v["obs"] * (obs_item + ovh + s["obsid_item"] + s["obskey_item"] + s["obsuuid_item"] + 3 * ovh)
    gsi2 = v["obs"] * ((s["gsi2_keys_only_entry"] if "b" in opts else obs_item) + ovh)
    table_audit = v["audited"] * (s["audit_item"] + ovh) + v["audited_with_patient"] * (s["auditp_item"] + ovh)
    gsi1_audit = v["audited"] * (s["audit_item"] + ovh)
    bundles = v["uploads"] * WORKLOAD["bundle_size"] * s["bundle_entry_archived"]
    audit_copies = v["audited"] * s["audit_copy"]
    s3_requests = v["uploads"] + v["audited"]
    return {
        "table": table_obs + table_audit,       # base table (what PITR and backups copy)
        "gsi": gsi2 + gsi1_audit,
        "gsi2": gsi2,
        "bundles": bundles, "bundle_objects": v["uploads"],
        "audit_copies": audit_copies, "audit_objects": v["audited"],
        "access_logs": s3_requests * 2 * s["s3_access_log_line"],  # the PUT and the backup's GET
        "logs": (v["uploads"] + v["pages"] + v["refreshes"] + v["grants"] + v["ui"]) * s["log_bytes_per_request"],
    }


def month_days(m):
    return range(round((m - 1) * DAYS_PER_MONTH) + 1, round(m * DAYS_PER_MONTH) + 1)


def avg_stored(m, per_month):
    """Average content during month m of something that grows by `per_month` and is kept."""
    return per_month * (m - 0.5)


def avg_retained(m, per_month, retention_days):
    """Average content during month m of something kept `retention_days` (a rolling window)."""
    per_day = per_month / DAYS_PER_MONTH
    days = month_days(m)
    return sum(per_day * min(d, retention_days) for d in days) / len(days)


def avg_backup_copies(m, table_per_month, retention_days, every_days=1):
    """Average GB-month of full copies of a growing table taken every `every_days`, each kept
    `retention_days`."""
    per_day = table_per_month / DAYS_PER_MONTH
    days = month_days(m)
    total = 0.0
    for d in days:
        first = max(1, d - retention_days + 1)
        total += sum(per_day * k for k in range(first, d + 1) if k % every_days == 0)
    return total / len(days)


# ----------------------------------------------------------------------------------------------
# The bill.

def bill(m, opts=None, free_tier=False):
    """Line items of month m: list of (service, item, quantity text, USD)."""
    opts = opts or set()
    v, s, r, f = volumes(), SIZES, READS, FIXED
    lines = []

    def add(service, item, qty, usd):
        lines.append((service, item, qty, usd))

    # DynamoDB writes.
    per_obs = obs_write_units(opts)
    gsi2_units = per_obs["gsi2 index entry"]
    index_units = sum(per_obs.values()) - gsi2_units
    days_held = (m - 0.5) * DAYS_PER_MONTH
    fold = fold_wru_per_bundle(days_held) * v["uploads"]
    audit_wru_each = wcu(s["audit_item"], True) + wcu(s["audit_item"], False)  # record + its gsi1 entry
    audit_wru = v["audited"] * audit_wru_each + v["audited_with_patient"] * wcu(s["auditp_item"], True)
    counter = v["obs"] / 1000  # one id-block reservation (conditional put) per 1,000 ids
    other_wru = fold + counter + v["refreshes"] * r["refresh_wru"]
    add("DynamoDB", "writes: observations indexed (table items)", f"{v['obs'] / 1e6:.2f} M obs x {index_units:.2f} WRU", v["obs"] * index_units * price("ddb_wru"))
    add("DynamoDB", "writes: gsi2 entries (standard writes)", f"{v['obs'] / 1e6:.2f} M x {gsi2_units} WRU", v["obs"] * gsi2_units * price("ddb_wru"))
    add("DynamoDB", "writes: audit trail (AUDIT + gsi1 + AUDITP)", f"{v['audited'] / 1e3:.0f} k records", audit_wru * price("ddb_wru"))
    add("DynamoDB", "writes: count folds, id blocks, token refreshes", f"{other_wru / 1e6:.2f} M WRU", other_wru * price("ddb_wru"))

    # DynamoDB reads.
    ingest_rru = v["uploads"] * r["ingest_fixed_rru"] + v["obs"] * r["ingest_rru_per_obs"] + v["uploads"] * 2
    obs_rru = v["first_pages"] * pull_rru(opts_obs_size(opts))
    page_rru_total = v["pages"] * r["page_fixed_rru"] + v["first_pages"] * r["page_count_rru"] + obs_rru
    other_rru = v["refreshes"] * r["refresh_rru"] + v["ui"] * 8
    add("DynamoDB", "reads: uploads (checks, duplicate keys)", f"{ingest_rru / 1e6:.1f} M RRU", ingest_rru * price("ddb_rru"))
    add("DynamoDB", "reads: search pages (strongly consistent)", f"{page_rru_total / 1e6:.1f} M RRU", page_rru_total * price("ddb_rru"))
    add("DynamoDB", "reads: auth, UI", f"{other_rru / 1e6:.2f} M RRU", other_rru * price("ddb_rru"))

    # DynamoDB storage, PITR.
    st = storage_bytes_per_month(opts)
    table_gb = avg_stored(m, st["table"]) / GB
    gsi_gb = avg_stored(m, st["gsi"]) / GB
    ddb_free = FREE["ddb_storage_gb"] if free_tier else 0
    billable_table = max(0.0, table_gb - ddb_free)
    billable_gsi = max(0.0, gsi_gb - max(0.0, ddb_free - table_gb))
    add("DynamoDB", "storage: table items", f"{table_gb:.1f} GB", billable_table * price("ddb_storage_gb"))
    add("DynamoDB", "storage: GSI entries (gsi2 observations, gsi1 audit)", f"{gsi_gb:.1f} GB", billable_gsi * price("ddb_storage_gb"))
    add("DynamoDB", "point-in-time recovery (35 days)", f"{table_gb:.1f} GB", table_gb * price("ddb_pitr_gb"))

    # S3.
    s3_puts = v["uploads"] + v["audited"]
    add("S3", "PUTs: upload archive", f"{v['uploads'] / 1e3:.1f} k", v["uploads"] * price("s3_put"))
    add("S3", "PUTs: audit copies (Object Lock)", f"{v['audited'] / 1e3:.0f} k", v["audited"] * price("s3_put"))
    bundles_gb = avg_stored(m, st["bundles"]) / GB
    audit_gb = avg_stored(m, st["audit_copies"]) / GB
    access_gb = avg_retained(m, st["access_logs"], f["log_retention_days"]) / GB
    add("S3", "storage: upload archive", f"{bundles_gb:.1f} GB", bundles_gb * price("s3_storage_gb"))
    add("S3", "storage: audit copies + access logs", f"{audit_gb + access_gb:.2f} GB", (audit_gb + access_gb) * price("s3_storage_gb"))

    # AWS Backup.
    copies_gb = avg_backup_copies(m, st["table"], f["backup_retention_days"], f["backup_every_days"]) / GB
    add("AWS Backup", "DynamoDB: daily full copies kept 35 days", f"{copies_gb:,.0f} GB-month", copies_gb * price("backup_ddb_gb"))
    min_obj = 128 * KB
    audit_objects = st["audit_objects"] if f["backup_audit_bucket"] else 0
    s3_backup_per_month = (st["bundle_objects"] * max(st["bundles"] / st["bundle_objects"], min_obj)
                           + audit_objects * max(st["audit_copies"] / st["audit_objects"], min_obj))
    s3_backup_gb = avg_stored(m, s3_backup_per_month) / GB
    objects_now = (st["bundle_objects"] + audit_objects) * m
    s3_backup_requests = (st["bundle_objects"] + audit_objects) * price("s3_get") + objects_now / 1000 * DAYS_PER_MONTH * price("s3_put")
    add("AWS Backup", "S3: upload + audit buckets (each object >= 128 KB)", f"{s3_backup_gb:,.0f} GB-month", s3_backup_gb * price("backup_s3_gb"))
    add("AWS Backup", "S3: GETs of new objects, daily LISTs (estimate)", f"{objects_now / 1e6:.1f} M objects", s3_backup_requests)

    # Lambda.
    inv = {"ingest": v["uploads"], "read": v["pages"] + v["ui"] * 0.5, "auth": v["refreshes"] + v["grants"] + 1000, "ui": v["ui"] * 0.5}
    requests = sum(inv.values())
    gbs = sum(n * LAMBDA[k]["mb"] / 1024 * LAMBDA[k]["ms"] / 1000 for k, n in inv.items())
    lreq = max(0.0, requests - (FREE["lambda_req"] if free_tier else 0))
    lgbs = max(0.0, gbs - (FREE["lambda_gbs"] if free_tier else 0))
    add("Lambda", "requests", f"{requests / 1e3:.0f} k", lreq * price("lambda_req"))
    add("Lambda", "compute (arm64)", f"{gbs / 1e3:.0f} k GB-s", lgbs * price("lambda_gbs_arm"))

    # API Gateway (HTTP API, 512 KB metering of request and response, the larger).
    units = (v["uploads"] * math.ceil(max(s["upload_response"], WORKLOAD["bundle_size"] * s["bundle_entry_archived"]) / (512 * KB))
             + v["pages"] * math.ceil(s["page_response"] / (512 * KB))
             + v["refreshes"] + v["grants"] + v["ui"])
    add("API Gateway", "HTTP API requests (512 KB units)", f"{units / 1e3:,.0f} k", units * price("apigw_http"))

    # CloudFront.
    ui_sessions = WORKLOAD["practitioners"] * 20
    cf_req = requests + ui_sessions * 30  # + static files of the web UI
    out_gb = (v["pages"] * s["page_response"] + v["uploads"] * s["upload_response"] + (v["refreshes"] + v["grants"]) * 4000
              + v["ui"] * s["ui_response"] + ui_sessions * 1.5e6) / GB
    origin_gb = v["uploads"] * WORKLOAD["bundle_size"] * s["bundle_entry_archived"] / GB
    add("CloudFront", "HTTPS requests", f"{cf_req / 1e3:.0f} k", max(0.0, cf_req - (FREE["cf_req"] if free_tier else 0)) * price("cf_https_req"))
    add("CloudFront", "data out to the internet", f"{out_gb:.0f} GB", max(0.0, out_gb - (FREE["cf_out_gb"] if free_tier else 0)) * price("cf_out_gb"))
    add("CloudFront", "data to the origin (upload bodies)", f"{origin_gb:.1f} GB", origin_gb * price("cf_origin_gb"))

    # WAF.
    add("WAF", "web ACL + 6 rules (3 AWS managed groups, 3 rate rules)", "1 ACL, 6 rules", f["waf_acls"] * price("waf_acl") + f["waf_rules"] * price("waf_rule"))
    add("WAF", "requests inspected", f"{cf_req / 1e3:.0f} k", cf_req * price("waf_req"))

    # CloudWatch, X-Ray, SNS.
    logs_gb = st["logs"] / GB
    logs_stored = avg_retained(m, st["logs"] * s["log_compression"], f["log_retention_days"]) / GB
    add("CloudWatch", "logs ingested (functions, API access log)", f"{logs_gb:.2f} GB", max(0.0, logs_gb - (FREE["logs_gb"] if free_tier else 0)) * price("logs_ingest_gb"))
    add("CloudWatch", "logs stored (365-day retention)", f"{logs_stored:.2f} GB", logs_stored * price("logs_store_gb"))
    add("CloudWatch", "29 alarms + 1 custom metric", "29 + 1", max(0, f["alarms"] - (FREE["cw_alarms"] if free_tier else 0)) * price("cw_alarm")
        + max(0, f["custom_metrics"] - (FREE["cw_metrics"] if free_tier else 0)) * price("cw_metric"))
    traces = v["uploads"] + v["refreshes"] + v["ui"] + v["pages"] * f["xray_sample_reads"]
    add("X-Ray", "traces recorded (active tracing, default sampling)", f"{traces / 1e3:.0f} k", max(0.0, traces - (FREE["xray"] if free_tier else 0)) * price("xray_trace"))
    add("SNS", "alarm topic (email on alarm only)", "~0", 0.0)

    # KMS, Cognito, Secrets Manager.
    add("KMS", "3 customer managed keys", "3 keys", f["kms_keys"] * price("kms_key"))
    add("KMS", "requests (estimate)", f"{f['kms_requests'] / 1e3:.0f} k", max(0, f["kms_requests"] - (FREE["kms_req"] if free_tier else 0)) * price("kms_req"))
    mau = WORKLOAD["patients"] + WORKLOAD["researchers"] + WORKLOAD["practitioners"]
    add("Cognito", "MAU, Plus tier (threat protection ENFORCED in prod)", f"{mau:,} MAU", mau * price("cognito_plus_mau"))
    add("Secrets Manager", "origin secret", "1 secret", f["secrets"] * price("secret"))
    return lines


def total(lines):
    return sum(x[3] for x in lines)


def by_service(lines):
    out = {}
    for service, _, _, usd in lines:
        out[service] = out.get(service, 0.0) + usd
    return out


# ----------------------------------------------------------------------------------------------
# Unit costs.

def unit_costs():
    v, s, r = volumes(), SIZES, READS
    u = {}
    per_obs = sum(obs_write_units().values())
    audit_up = wcu(s["audit_item"], True) + wcu(s["audit_item"], False) + wcu(s["auditp_item"], True)
    bundle_wru = WORKLOAD["bundle_size"] * per_obs + audit_up + fold_wru_per_bundle(0) + WORKLOAD["bundle_size"] / 1000
    bundle_rru = r["ingest_fixed_rru"] + WORKLOAD["bundle_size"] * r["ingest_rru_per_obs"] + 2
    lam = LAMBDA["ingest"]
    u["bundle"] = [
        ("DynamoDB writes", f"{bundle_wru:,.0f} WRU", bundle_wru * price("ddb_wru")),
        ("DynamoDB reads", f"{bundle_rru} RRU", bundle_rru * price("ddb_rru")),
        ("S3 PUTs (archive + audit copy)", "2", 2 * price("s3_put")),
        ("Lambda", f"{lam['ms']} ms x 1 GB", price("lambda_req") + lam["ms"] / 1000 * lam["mb"] / 1024 * price("lambda_gbs_arm")),
        ("API Gateway", "1 unit", price("apigw_http")),
        ("CloudFront + WAF", "1 request, 150 KB out, 120 KB to origin", price("cf_https_req") + price("waf_req") + s["upload_response"] / GB * price("cf_out_gb")
         + WORKLOAD["bundle_size"] * s["bundle_entry_archived"] / GB * price("cf_origin_gb")),
        ("CloudWatch Logs + X-Ray", "1 KB, 1 trace", s["log_bytes_per_request"] / GB * price("logs_ingest_gb") + price("xray_trace")),
    ]
    obs_rru = page_rru(WORKLOAD["page_size"] + 1, s["obs_item"])
    audit_read = wcu(s["audit_item"], True) + wcu(s["audit_item"], False) + wcu(s["auditp_item"], True)
    lam = LAMBDA["read"]
    u["page"] = [
        ("DynamoDB reads", f"{obs_rru + r['page_fixed_rru']} RRU ({obs_rru} for 1,001 observations)", (obs_rru + r["page_fixed_rru"]) * price("ddb_rru")),
        ("DynamoDB writes (audit)", f"{audit_read} WRU", audit_read * price("ddb_wru")),
        ("S3 PUT (audit copy)", "1", price("s3_put")),
        ("Lambda", f"{lam['ms']} ms x 1 GB", price("lambda_req") + lam["ms"] / 1000 * lam["mb"] / 1024 * price("lambda_gbs_arm")),
        ("API Gateway", "3 units (1.15 MB answer)", 3 * price("apigw_http")),
        ("CloudFront + WAF", "1 request, 1.15 MB out", price("cf_https_req") + price("waf_req") + s["page_response"] / GB * price("cf_out_gb")),
        ("CloudWatch Logs + X-Ray", "1 KB, 0.25 trace", s["log_bytes_per_request"] / GB * price("logs_ingest_gb") + FIXED["xray_sample_reads"] * price("xray_trace")),
    ]
    # One patient-month of data kept, per month it stays (steady state: backups hold 35 copies).
    st = storage_bytes_per_month()
    share = 1 / WORKLOAD["patients"]
    table = st["table"] * share / GB
    gsi = st["gsi"] * share / GB
    bundles = st["bundles"] * share / GB
    audit = st["audit_copies"] * share / GB
    s3b = (st["bundle_objects"] * max(st["bundles"] / st["bundle_objects"], 128 * KB)
           + st["audit_objects"] * max(st["audit_copies"] / st["audit_objects"], 128 * KB)) * share / GB
    u["patient_month"] = [
        ("DynamoDB storage (table + GSIs)", f"{(table + gsi) * 1024:.1f} MB", (table + gsi) * price("ddb_storage_gb")),
        ("DynamoDB PITR", f"{table * 1024:.1f} MB", table * price("ddb_pitr_gb")),
        ("AWS Backup, DynamoDB (35 daily full copies)", f"35 x {table * 1024:.1f} MB", FIXED["backup_retention_days"] * table * price("backup_ddb_gb")),
        ("S3 (archive + audit copies)", f"{(bundles + audit) * 1024:.1f} MB", (bundles + audit) * price("s3_storage_gb")),
        ("AWS Backup, S3 (128 KB minimum per object)", f"{s3b * 1024:.1f} MB", s3b * price("backup_s3_gb")),
    ]
    return u


# ----------------------------------------------------------------------------------------------
# Options (COSTS.md "Where the write units go").

OPTIONS = [
    ("before (1,349 B item)", {"before"}),
    ("now (measured)", set()),
    ("(b) gsi2 KEYS_ONLY", {"b"}),
    ("(c) pointers outside the transaction", {"c"}),
    ("(b) + (c)", {"b", "c"}),
]


def lastupdated_page_rru(opts):
    """RRU of one page of 1,000 read through gsi2 (sorted by _lastUpdated)."""
    obs = opts_obs_size(opts)
    if "b" not in opts:
        return page_rru(1001, obs) / 2  # gsi2 queries are eventually consistent
    keys = page_rru(1001, SIZES["gsi2_keys_only_entry"]) / 2
    base = 1000 * math.ceil(obs / (4 * KB))  # BatchGetItem, strongly consistent, per item
    return keys + base


# ----------------------------------------------------------------------------------------------
# Output.

def money(x):
    if x < 0:
        return "-" + money(-x)
    if x >= 100:
        return f"${x:,.0f}"
    if x >= 1:
        return f"${x:,.2f}"
    if x >= 0.01:
        return f"${x:.3f}"
    if x == 0:
        return "$0"
    return f"${x:.2g}"


def sig3(x):
    """USD with three significant figures, no exponent."""
    if x == 0:
        return "$0"
    decimals = max(0, 2 - math.floor(math.log10(abs(x))))
    return f"${x:,.{decimals}f}"


def micro(x):
    """A unit cost: USD each, and per 1,000 units."""
    return sig3(x), sig3(x * 1000)


def md_table(header, rows, left=1):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def report():
    v = volumes()
    m1, m12 = bill(1), bill(12)
    out = []
    out.append("<!-- generated by `python3 infra/cost_model.py`; do not edit by hand -->\n")
    out.append("### Totals\n")
    out.append(md_table(["", "month 1", "month 12"], [
        ["list price", money(total(m1)), money(total(m12))],
        ["with the always-free allowances", money(total(bill(1, free_tier=True))), money(total(bill(12, free_tier=True)))],
    ]))
    top = sorted(m12, key=lambda x: -x[3])[:3]
    out.append("\nThree biggest line items in month 12: " + "; ".join(f"{x[0]} {x[1]} {money(x[3])}" for x in top) + ".\n")

    out.append("### By service\n")
    s1, s12 = by_service(m1), by_service(m12)
    rows = [[k, money(s1[k]), money(s12[k])] for k in sorted(s12, key=lambda k: -s12[k])]
    rows.append(["**total**", f"**{money(total(m1))}**", f"**{money(total(m12))}**"])
    out.append(md_table(["service", "month 1", "month 12"], rows))

    out.append("\n### Line items\n")
    rows = [[a, b, q1, money(c1), q12, money(c12)] for (a, b, q1, c1), (_, _, q12, c12) in zip(m1, m12)]
    out.append(md_table(["service", "item", "month 1 quantity", "month 1", "month 12 quantity", "month 12"], rows, left=2))

    out.append("\n### Volumes a month\n")
    out.append(md_table(["what", "a month"], [
        ["observations uploaded", f"{v['obs']:,.0f}"],
        ["Bundles of 100 uploaded", f"{v['uploads']:,.0f}"],
        ["search pages read (9 per patient per pull)", f"{v['pages']:,.0f}"],
        ["observations read", f"{v['obs_read']:,.0f}"],
        ["token refreshes (patients) / API-key grants (researchers)", f"{v['refreshes']:,.0f} / {v['grants']:,.0f}"],
        ["web UI API calls (estimate)", f"{v['ui']:,.0f}"],
        ["audit records", f"{v['audited']:,.0f}"],
    ]))

    u = unit_costs()
    out.append("\n### Unit costs\n")
    for key, title in [("bundle", "Per Bundle of 100 uploaded (its token refresh not included)"),
                       ("page", "Per page of 1,000 read"),
                       ("patient_month", "Per patient-month stored, each month it is kept")]:
        rows = [[a, b, *micro(c)] for a, b, c in u[key]]
        t = micro(sum(x[2] for x in u[key]))
        rows.append(["**total**", "", f"**{t[0]}**", f"**{t[1]}**"])
        out.append(f"\n{title}:\n")
        out.append(md_table(["", "quantity", "USD each", "USD per 1,000"], rows))

    out.append("\n### Write units per observation\n")
    rows = []
    for label, opts in OPTIONS:
        wu = obs_write_units(opts)
        rows.append([label, f"{opts_obs_size(opts):,} B"] + [f"{x:g}" if x == int(x) else f"{x:.2f}" for x in wu.values()] + [f"**{sum(wu.values()):.2f}**"])
    out.append(md_table(["", "OBS# item", "OBS#", "OBSID", "OBSKEY", "OBSUUID", "gsi2", "count", "WRU/obs"], rows))

    out.append("\n### Monthly effect of the options\n")
    rows = []
    base1, base12 = bill(1), bill(12)
    for label, opts in OPTIONS:
        b1, b12 = bill(1, opts), bill(12, opts)
        w1 = sum(x[3] for x in b1 if x[0] == "DynamoDB" and x[1].startswith("writes"))
        st12 = sum(x[3] for x in b12 if (x[0] == "DynamoDB" and not x[1].startswith(("writes", "reads"))) or x[1].startswith("DynamoDB: daily"))
        rows.append([label, f"{sum(obs_write_units(opts).values()):.2f}", money(w1), money(st12),
                     money(total(b1)), money(total(b12)), money(total(b12) - total(base12))])
    out.append(md_table(["", "WRU/obs", "DynamoDB writes (all), a month", "DynamoDB storage + PITR + backups, month 12", "total month 1", "total month 12", "month 12 vs now"], rows))

    out.append("\n### Reads sorted by _lastUpdated (gsi2), per page of 1,000\n")
    rows = []
    for label, opts in [("gsi2 ALL, before (1,349 B item)", {"before"}), ("gsi2 ALL (now)", set()), ("gsi2 KEYS_ONLY + BatchGetItem", {"b"})]:
        rru = lastupdated_page_rru(opts)
        rows.append([label, f"{rru:,.0f}", *micro(rru * price("ddb_rru"))])
    out.append(md_table(["", "RRU", "USD each", "USD per 1,000 pages"], rows))
    out.append("\n### Backup settings (template changes, no application code)\n")
    rows = []
    base = total(bill(12))
    for label, changes in [("now: table daily, kept 35 days; both buckets", {}),
                           ("table weekly, kept 35 days", {"backup_every_days": 7}),
                           ("table daily, kept 7 days (the vault lock's minimum)", {"backup_retention_days": 7}),
                           ("audit bucket left out of AWS Backup", {"backup_audit_bucket": False}),
                           ("table weekly, kept 35 days; audit bucket left out", {"backup_every_days": 7, "backup_audit_bucket": False})]:
        saved = {k: FIXED[k] for k in changes}
        FIXED.update(changes)
        b = bill(12)
        FIXED.update(saved)
        backup = sum(x[3] for x in b if x[0] == "AWS Backup")
        rows.append([label, money(backup), money(total(b)), money(total(b) - base)])
    out.append(md_table(["", "AWS Backup, month 12", "total month 12", "vs now"], rows))

    saving_b = total(bill(12)) - total(bill(12, {"b"}))
    extra = (lastupdated_page_rru({"b"}) - lastupdated_page_rru(set())) * price("ddb_rru")
    out.append(f"\n(b) alone saves {money(saving_b)} in month 12 and costs {money(extra)} more per _lastUpdated page: "
               f"it pays off below about {float(f'{saving_b / extra:.2g}'):,.0f} such pages a month.\n")
    return "\n".join(out)


# How each price is usually quoted (per this many units).
QUOTED_PER = {"ddb_wru": 1e6, "ddb_rru": 1e6, "s3_put": 1e3, "s3_get": 1e3, "lambda_req": 1e6, "apigw_http": 1e6,
              "cf_https_req": 1e4, "xray_trace": 1e6, "kms_req": 1e4, "waf_req": 1e6, "sns_email": 1e5}


def human_price(key, v):
    per = QUOTED_PER.get(key)
    if per:
        return f"${v * per:.10g} per {per:,.0f}"
    return "$" + f"{v:.10f}".rstrip("0").rstrip(".")


def prices_table():
    rows = [[f"`{k}`", human_price(k, v[0]), v[1], v[2]] for k, v in PRICES.items()]
    return md_table(["input", "price", "unit", f"source (read {READ_ON})"], rows, left=4)


# ----------------------------------------------------------------------------------------------
# Re-measuring item sizes from the recorded AWS calls.

def item_size(item):
    """DynamoDB item size: attribute names + values (numbers: 1 byte per 2 digits + 1)."""
    n = 0
    for name, value in item.items():
        (kind, x), = value.items()
        n += len(name.encode())
        if kind == "S":
            n += len(x.encode())
        elif kind == "N":
            digits = x.lstrip("-").replace(".", "").strip("0") or "0"
            n += math.ceil(len(digits) / 2) + 1
        elif kind == "B":
            n += len(base64.b64decode(x))
        else:
            n += 1
    return n


def measure(folder):
    files = sorted(glob.glob(os.path.join(folder, "*.jsonl")))
    if not files:
        print(f"no recorded calls in {folder}", file=sys.stderr)
        return 1
    sizes = {}
    for f in files:
        for line in open(f).read().splitlines()[1:]:
            r = json.loads(line)
            if not r["headers"].get("x-amz-target", "").endswith("TransactWriteItems"):
                continue
            for t in json.loads(r["body"])["TransactItems"]:
                item = t.get("Put", {}).get("Item")
                if not item:
                    continue
                prefix = item["pk"]["S"].split("#")[0]
                sizes.setdefault(prefix, []).append(item_size(item))
                if prefix == "OBS":
                    sizes.setdefault("OBS d", []).append(len(item["d"]["S"].encode()))
    for k, v in sorted(sizes.items()):
        v.sort()
        print(f"{k:10} n={len(v):3}  min {v[0]:5}  median {v[len(v) // 2]:5}  max {v[-1]:5}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--measure", nargs="?", const="test-output/iam-calls", help="re-measure item sizes from recorded calls")
    ap.add_argument("--json", action="store_true", help="line items of months 1 and 12 as JSON")
    ap.add_argument("--prices", action="store_true", help="the price inputs as a markdown table")
    a = ap.parse_args()
    if a.measure:
        return measure(a.measure)
    if a.json:
        print(json.dumps({m: [dict(zip(("service", "item", "quantity", "usd"), x)) for x in bill(m)] for m in (1, 12)}, indent=1))
        return 0
    if a.prices:
        print(prices_table())
        return 0
    print(report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
