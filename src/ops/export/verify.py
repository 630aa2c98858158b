#!/usr/bin/env python3
"""Checks a huifang evidence export offline: python3 verify.py EXPORT.zip

Standard library only. Exits 0 when everything holds; otherwise prints the
file at fault and why, and exits 1 (2 when the zip cannot be read). The
checks, as `huifang export verify` makes them:

1. SHA256SUMS lists every other file, and each file's SHA-256 matches;
2. each audit event's hash is SHA-256(previous hash + its canonical form),
   and its fields are those the canonical form holds;
3. the chain's links (audit/audit-chain.txt) run unbroken to the head named
   in export.json and agree with every event above;
4. each recording.wav has the SHA-256 huifang sealed (the recording.sealed
   event), which its manifest.json and its vCon's content_hash also carry.
"""
import base64
import hashlib
import json
import sys
import zipfile


class Tampered(Exception):
    def __init__(self, file, why):
        super().__init__(f"{file}: {why}")
        self.file = file


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


def content_hash(hex_sha):
    raw = bytes.fromhex(hex_sha)
    return "sha256-" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read(path):
    """Every file's SHA-256, and the bytes of all but the WAVs (a WAV is
    hashed as it is read, never held whole)."""
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        print(f"{path}: not a readable zip: {e}", file=sys.stderr)
        sys.exit(2)
    files, hashes, top = {}, {}, None
    with z:
        for info in z.infolist():
            if info.is_dir():
                continue
            head, _, rest = info.filename.partition("/")
            if not rest:
                raise Tampered(info.filename, "not inside the export's folder")
            if top is None:
                top = head
            elif head != top:
                raise Tampered(info.filename, "a second top folder")
            h, kept = hashlib.sha256(), []
            with z.open(info) as f:
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    h.update(chunk)
                    if not rest.endswith(".wav"):
                        kept.append(chunk)
            hashes[rest] = h.hexdigest()
            if not rest.endswith(".wav"):
                files[rest] = b"".join(kept)
    return files, hashes


def check(read_out):
    files, hashes = read_out
    if "SHA256SUMS" not in files:
        raise Tampered("SHA256SUMS", "missing")
    listed = {}
    for line in files["SHA256SUMS"].decode().splitlines():
        digest, sep, path = line.partition("  ")
        if not sep:
            raise Tampered("SHA256SUMS", f"bad line {line!r}")
        listed[path] = digest
    for path, digest in sorted(hashes.items()):
        if path == "SHA256SUMS":
            continue
        if path not in listed:
            raise Tampered(path, "not listed in SHA256SUMS")
        if digest != listed[path]:
            raise Tampered(path, "its SHA-256 differs from SHA256SUMS")
    for path in listed:
        if path not in hashes:
            raise Tampered(path, "listed in SHA256SUMS but missing")

    def load(path):
        if path not in files:
            raise Tampered(path, "missing")
        try:
            return json.loads(files[path])
        except ValueError as e:
            raise Tampered(path, f"not JSON: {e}")

    export = load("export.json")
    ev_file, chain_file = "audit/audit-events.jsonl", "audit/audit-chain.txt"
    if ev_file not in files:
        raise Tampered(ev_file, "missing")
    events, sealed = {}, {}
    for line in files[ev_file].decode().splitlines():
        if not line.strip():
            continue
        e = json.loads(line)
        seq = e.get("seq")
        h = sha256_hex((e["prev_hash"] + e["canonical"]).encode())
        if h != e["hash"]:
            raise Tampered(ev_file, f"event {seq}: its hash does not cover its content")
        c = json.loads(e["canonical"])
        for k in ("seq", "at", "actor", "action", "subject", "detail"):
            if c.get(k) != e.get(k):
                raise Tampered(ev_file, f"event {seq}: {k} differs from what its hash covers")
        if e["action"] == "recording.sealed" and isinstance(e["detail"], dict):
            sealed[e["subject"]] = e["detail"].get("sha256")
        events[seq] = e["hash"]
    if chain_file not in files:
        raise Tampered(chain_file, "missing")
    last, first = None, None
    for line in files[chain_file].decode().splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or not parts[0].isdigit():
            raise Tampered(chain_file, f"bad line {line!r}")
        seq, prev, h = int(parts[0]), parts[1], parts[2]
        if first is None:
            first = seq
        if last is not None and (seq != last[0] + 1 or prev != last[1]):
            raise Tampered(chain_file, f"the link at {seq} does not follow {last[0]}")
        if seq in events and events[seq] != h:
            raise Tampered(chain_file, f"event {seq}'s hash differs from the chain's")
        last = (seq, h)
    if last is None or last[1] != export["audit"]["head_hash"]:
        raise Tampered(chain_file, "does not end at the head named in export.json")
    for seq in events:
        if seq < first:
            raise Tampered(chain_file, f"event {seq} is not among the links")
    recordings = 0
    for path, digest in sorted(hashes.items()):
        if not path.endswith("/recording.wav"):
            continue
        d = path[: -len("/recording.wav")]
        call = d[len("calls/"):]
        if call not in sealed:
            raise Tampered(path, "no recording.sealed event for it")
        if sealed[call] != digest:
            raise Tampered(path, "differs from the SHA-256 huifang sealed (audit recording.sealed)")
        if load(f"{d}/manifest.json").get("sha256") != digest:
            raise Tampered(f"{d}/manifest.json", "its sha256 differs from the recording")
        if load(f"{d}/call.vcon.json")["dialog"][0].get("content_hash") != content_hash(digest):
            raise Tampered(f"{d}/call.vcon.json", "its content_hash differs from the recording")
        recordings += 1
    return len(hashes) - 1, recordings, len(events), len(files[chain_file].splitlines())


def main():
    if len(sys.argv) != 2:
        print("usage: python3 verify.py EXPORT.zip", file=sys.stderr)
        sys.exit(2)
    try:
        n, recs, events, links = check(read(sys.argv[1]))
    except Tampered as t:
        print(f"FAILED {t}", file=sys.stderr)
        sys.exit(1)
    except (KeyError, ValueError, UnicodeDecodeError) as e:
        print(f"FAILED the export is malformed: {e!r}", file=sys.stderr)
        sys.exit(1)
    print(f"OK: {n} files match SHA256SUMS; {recs} recordings match their sealed SHA-256; "
          f"{events} audit events and {links} links to the head hold")


if __name__ == "__main__":
    main()
