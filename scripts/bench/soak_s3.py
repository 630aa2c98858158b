#!/usr/bin/env python3
"""The soak's look at the archive through RGW's own S3 API (standard library only).

    soak_s3.py check --endpoint http://127.0.0.1:7480 --bucket B < rows.tsv

Keys from HUIFANG_S3_ACCESS_KEY / HUIFANG_S3_SECRET_KEY. Each stdin line
(tab-separated) is one archived recording as the database has it:

    recording_id  archive_key  object_version  manifest_key  manifest_version  retain_until_epoch

It lists every object version and delete marker in the bucket
(ListObjectVersions, SigV4), then HEADs each recorded version (WAV and
manifest) for its Object Lock. A recording passes when both of its keys hold
exactly one version, no delete marker, that version is the one the database
recorded, and it is locked in COMPLIANCE mode until the row's retain_until
(to the second). Prints one JSON object: counts, and every failure by
recording id (at most 50 listed per kind).
"""

import argparse
import concurrent.futures
import datetime
import hashlib
import hmac
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

REGION = "us-east-1"
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def request(endpoint, method, path, query, access, secret, timeout=30):
    """One SigV4-signed request (path-style); returns (status, headers, body)."""
    u = urllib.parse.urlsplit(endpoint)
    host = u.netloc
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    canon_uri = urllib.parse.quote(path, safe="/~")
    q = sorted((k, v) for k, v in query.items())
    canon_query = "&".join(
        f"{urllib.parse.quote(k, safe='~')}={urllib.parse.quote(v, safe='~')}" for k, v in q
    )
    headers = {"host": host, "x-amz-content-sha256": EMPTY_SHA, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canon_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
    creq = "\n".join([method, canon_uri, canon_query, canon_headers, signed, EMPTY_SHA])
    scope = f"{day}/{REGION}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = _sign(("AWS4" + secret).encode(), day)
    k = _sign(k, REGION)
    k = _sign(k, "s3")
    k = _sign(k, "aws4_request")
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    auth = f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={signed}, Signature={sig}"
    url = f"{u.scheme}://{host}{canon_uri}" + (f"?{canon_query}" if canon_query else "")
    req = urllib.request.Request(url, method=method)
    req.add_header("x-amz-date", amz_date)
    req.add_header("x-amz-content-sha256", EMPTY_SHA)
    req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def list_versions(endpoint, bucket, access, secret):
    """Every version and delete marker: {key: [(version_id, is_marker, is_latest)]}."""
    out = {}
    key_marker, vid_marker = None, None
    while True:
        query = {"versions": "", "max-keys": "1000"}
        if key_marker is not None:
            query["key-marker"] = key_marker
            if vid_marker:
                query["version-id-marker"] = vid_marker
        st, _, body = request(endpoint, "GET", f"/{bucket}", query, access, secret)
        if st != 200:
            raise SystemExit(f"soak_s3.py: ListObjectVersions: HTTP {st}: {body[:300]!r}")
        root = ET.fromstring(body)
        for tag, marker in (("Version", False), ("DeleteMarker", True)):
            for v in root.iter(NS + tag):
                key = v.findtext(NS + "Key")
                out.setdefault(key, []).append(
                    (v.findtext(NS + "VersionId"), marker, v.findtext(NS + "IsLatest") == "true")
                )
        if root.findtext(NS + "IsTruncated") != "true":
            return out
        key_marker = root.findtext(NS + "NextKeyMarker")
        vid_marker = root.findtext(NS + "NextVersionIdMarker")


def parse_time(s):
    s = s.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(s).timestamp()


def head_lock(endpoint, bucket, key, version, access, secret):
    query = {"versionId": version} if version else {}
    for _ in range(3):
        try:
            st, h, _ = request(endpoint, "HEAD", f"/{bucket}/{key}", query, access, secret)
            break
        except OSError as e:  # a reset under load: try again
            st, h = None, {"error": str(e)}
    if st != 200:
        return f"HEAD {key} {version}: HTTP {st}"
    mode = h.get("x-amz-object-lock-mode")
    until = h.get("x-amz-object-lock-retain-until-date")
    if mode != "COMPLIANCE" or not until:
        return f"{key}: lock mode {mode!r} until {until!r}"
    return parse_time(until)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["check"])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--parallel", type=int, default=16)
    a = ap.parse_args()
    access = os.environ["HUIFANG_S3_ACCESS_KEY"]
    secret = os.environ["HUIFANG_S3_SECRET_KEY"]

    rows = []
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        f = line.split("\t")
        rows.append(
            {"id": f[0], "key": f[1], "ver": f[2], "mkey": f[3], "mver": f[4], "until": float(f[5])}
        )

    listing = list_versions(a.endpoint, a.bucket, access, secret)
    versions = sum(1 for vs in listing.values() for v in vs if not v[1])
    markers = sum(1 for vs in listing.values() for v in vs if v[1])
    multi = sorted(k for k, vs in listing.items() if len(vs) != 1)
    known = set()
    for r in rows:
        known.add(r["key"])
        known.add(r["mkey"])
    orphans = sorted(k for k in listing if k not in known)

    bad = {}

    def fail(rid, why):
        bad.setdefault(rid, []).append(why)

    jobs = []
    for r in rows:
        for key, ver in ((r["key"], r["ver"]), (r["mkey"], r["mver"])):
            vs = listing.get(key)
            if not vs:
                fail(r["id"], f"{key}: no object")
                continue
            if len(vs) != 1:
                fail(r["id"], f"{key}: {len(vs)} versions/markers {vs}")
            if any(v[1] for v in vs):
                fail(r["id"], f"{key}: delete marker")
            if ver and not any(v[0] == ver and not v[1] for v in vs):
                fail(r["id"], f"{key}: recorded version {ver} not in the bucket ({vs})")
            jobs.append((r, key, ver))

    with concurrent.futures.ThreadPoolExecutor(a.parallel) as pool:
        futs = {
            pool.submit(head_lock, a.endpoint, a.bucket, key, ver, access, secret): (r, key)
            for r, key, ver in jobs
        }
        for fut in concurrent.futures.as_completed(futs):
            r, key = futs[fut]
            res = fut.result()
            if isinstance(res, str):
                fail(r["id"], res)
            elif abs(res - r["until"]) > 1.0:
                fail(r["id"], f"{key}: locked until {res} but the row says {r['until']}")

    def cut(xs):
        return xs[:50]

    print(
        json.dumps(
            {
                "rows": len(rows),
                "keys_in_bucket": len(listing),
                "object_versions": versions,
                "delete_markers": markers,
                "keys_not_one_version": len(multi),
                "keys_not_one_version_list": cut(multi),
                "orphan_keys": len(orphans),
                "orphan_keys_list": cut(orphans),
                "recordings_ok": len(rows) - len(bad),
                "recordings_bad": len(bad),
                "recordings_bad_list": dict(list(bad.items())[:50]),
            }
        )
    )


if __name__ == "__main__":
    main()
