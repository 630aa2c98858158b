#!/usr/bin/env python3
"""The rtpengine side of huifang's media benchmark (scripts/bench/media.sh).

Sets up N recorded calls on a running rtpengine over its ng control protocol
(bencode over UDP: `offer` with the agent's SDP and "record call": "yes",
`answer` with the client's SDP, `delete` at the end), has the `phones`
example stream both legs of every call through it (`--rtp-only` mode, the
same generator and audio as the huifang run, ramped up at --rate calls/s),
and measures rtpengine's CPU time (utime + stime from /proc/PID/stat) and
RSS (VmRSS from /proc/PID/status) over the steady window when all N calls
are up -- plus rtpengine-recording's when --rec-pid is given. Checks that
the recording files appeared. Prints one JSON line on stdout (appended to
--out too) and a summary on stderr.

Python 3 standard library only.
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time

USER_HZ = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ bencode

def bencode(x):
    if isinstance(x, bytes):
        return str(len(x)).encode() + b":" + x
    if isinstance(x, str):
        return bencode(x.encode())
    if isinstance(x, bool):
        raise TypeError("bencode has no booleans: use 'yes'/'no'")
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, (list, tuple)):
        return b"l" + b"".join(bencode(i) for i in x) + b"e"
    if isinstance(x, dict):
        keys = sorted(x, key=lambda k: k.encode() if isinstance(k, str) else k)
        return b"d" + b"".join(bencode(k) + bencode(x[k]) for k in keys) + b"e"
    raise TypeError(type(x))


def bdecode(b, i=0):
    c = b[i:i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    if c == b"l":
        i += 1
        out = []
        while b[i:i + 1] != b"e":
            v, i = bdecode(b, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while b[i:i + 1] != b"e":
            k, i = bdecode(b, i)
            v, i = bdecode(b, i)
            out[k.decode()] = v
        return out, i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1:j + 1 + n], j + 1 + n


class Ng:
    """ng protocol client: `COOKIE bencoded-dict` over UDP, the reply
    carries the same cookie. Retries reuse the cookie (rtpengine caches
    replies by cookie, so a retried offer is not applied twice)."""

    def __init__(self, addr):
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(1.0)
        self.n = 0

    def __call__(self, cmd):
        self.n += 1
        cookie = b"%d_%d" % (os.getpid(), self.n)
        data = cookie + b" " + bencode(cmd)
        for _ in range(5):
            self.sock.sendto(data, self.addr)
            try:
                while True:
                    reply = self.sock.recv(65535)
                    c, _, body = reply.partition(b" ")
                    if c == cookie:
                        r, _ = bdecode(body)
                        if r.get("result") != b"ok" and cmd["command"] != "ping":
                            raise RuntimeError("ng %s: %r" % (cmd["command"], r))
                        return r
            except socket.timeout:
                continue
        raise RuntimeError("ng %s: no reply from %s:%d" % ((cmd["command"],) + self.addr))


# ---------------------------------------------------------------- /proc

def cpu_us(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) * 1_000_000 // USER_HZ


def status_kib(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return os.cpu_count(), model


# ------------------------------------------------------------------ calls

def sdp(port, session):
    return ("v=0\r\no=phones %d 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
            "t=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n"
            "a=sendrecv\r\n" % (session, port))


def media_port(body):
    m = re.search(rb"m=audio (\d+) ", body)
    if not m:
        raise RuntimeError("no audio m-line in rtpengine's SDP")
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=30, help="steady window, s")
    ap.add_argument("--rate", type=float, default=50.0, help="calls started per second")
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--ng", default="127.0.0.1:22222", help="rtpengine's ng address")
    ap.add_argument("--pid", type=int, required=True, help="rtpengine's pid")
    ap.add_argument("--rec-pid", type=int, help="rtpengine-recording's pid, if running")
    ap.add_argument("--rec-dir", required=True,
                    help="rtpengine's --recording-dir (pcap method) or "
                         "rtpengine-recording's --output-dir")
    ap.add_argument("--recording-method", default="pcap")
    ap.add_argument("--phones-bin", default="target/release/examples/phones")
    ap.add_argument("--wav", default="tests/fixtures/audio/agent.wav")
    ap.add_argument("--phones-first-port", type=int, default=16000)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", help="append the JSON line to this file too")
    a = ap.parse_args()

    host, port = a.ng.rsplit(":", 1)
    ng = Ng((host, int(port)))
    if ng({"command": "ping"}).get("result") != b"pong":
        sys.exit("rtpengine does not answer ping on %s" % a.ng)
    pids = [a.pid] + ([a.rec_pid] if a.rec_pid else [])
    nproc, model = machine()
    os.makedirs(a.workdir, exist_ok=True)

    ramp = a.calls / a.rate
    call_len = ramp + a.seconds + 2 * a.settle + 1

    time.sleep(1.0)
    rss_idle = sum(status_kib(p, "VmRSS") or 0 for p in pids)

    # Signalling, all up front (rtpengine keeps an idle call for --timeout s).
    tag = "%d-%d" % (os.getpid(), int(time.time()))
    streams = []
    calls = []
    t_sig = time.monotonic()
    for i in range(a.calls):
        agent_port = a.phones_first_port + 4 * i
        client_port = agent_port + 2
        call_id = "bench-%s-%d" % (tag, i)
        offer = ng({
            "command": "offer", "call-id": call_id, "from-tag": "agent%d" % i,
            "sdp": sdp(agent_port, 2 * i + 1), "record call": "yes",
            "replace": ["origin", "session connection"], "ICE": "remove",
        })
        to_client = media_port(offer["sdp"])  # where the client sends
        answer = ng({
            "command": "answer", "call-id": call_id, "from-tag": "agent%d" % i,
            "to-tag": "client%d" % i, "sdp": sdp(client_port, 2 * i + 2),
            "replace": ["origin", "session connection"], "ICE": "remove",
        })
        to_agent = media_port(answer["sdp"])  # where the agent sends
        start_ms = 500 + int(i * 1000 / a.rate)
        for who, local, remote in (("agent", agent_port, to_agent),
                                   ("client", client_port, to_client)):
            streams.append({"id": "%s%d" % (who, i), "local": local,
                            "remote": "127.0.0.1:%d" % remote,
                            "start_ms": start_ms, "duration_ms": int(call_len * 1000)})
        calls.append((call_id, "agent%d" % i))
    signalling_s = time.monotonic() - t_sig

    plan = os.path.join(a.workdir, "plan.json")
    stats = os.path.join(a.workdir, "phones.json")
    with open(plan, "w") as f:
        json.dump({"streams": streams}, f)
    cap = int(call_len + ramp + 60)
    phones = subprocess.Popen(
        [a.phones_bin, "--rtp-only", plan, "--wav", a.wav, "--duration", str(cap),
         "--stats", stats], stdout=subprocess.PIPE, text=True)
    try:
        line = phones.stdout.readline()
        if "ready" not in line:
            sys.exit("phones did not start: %r" % line)
        t0 = time.monotonic()  # ~ the phones' start-up instant

        # The steady window: every call streaming.
        w_start = t0 + 0.5 + ramp + a.settle
        time.sleep(max(0.0, w_start - time.monotonic()))
        cpu0 = [cpu_us(p) for p in pids]
        phones_cpu0 = cpu_us(phones.pid)
        r0 = time.monotonic()
        rss = []
        while time.monotonic() - r0 < a.seconds:
            time.sleep(0.5)
            rss.append(sum(status_kib(p, "VmRSS") or 0 for p in pids))
        cpu1 = [cpu_us(p) for p in pids]
        load = os.getloadavg()[0]
        phones_cpu1 = cpu_us(phones.pid)
        window_s = time.monotonic() - r0
        w_from_ms = (r0 - t0) * 1000
        w_to_ms = w_from_ms + window_s * 1000
        print("rtpengine_driver: window done (%.1f s); waiting for the streams to end"
              % window_s, file=sys.stderr)
        phones.wait(timeout=cap + 10)
    finally:
        if phones.poll() is None:
            phones.kill()
            phones.wait()

    for call_id, from_tag in calls:
        ng({"command": "delete", "call-id": call_id, "from-tag": from_tag})
    time.sleep(1.0)

    with open(stats) as f:
        gen = json.load(f)
    gt = gen["totals"]
    up_streams = sum(1 for s in gen["streams"]
                     if s["started_ms"] <= w_from_ms and s["ended_ms"] >= w_to_ms
                     and s["received"] > 0)
    up = up_streams // 2

    # The recordings: pcap files (pcap method) or rtpengine-recording's output.
    files, nbytes = 0, 0
    for root, _, names in os.walk(a.rec_dir):
        for n in names:
            if tag in n and n.endswith((".pcap", ".wav", ".mp3")):
                files += 1
                nbytes += os.path.getsize(os.path.join(root, n))

    cpu = sum((b or 0) - (x or 0) for x, b in zip(cpu0, cpu1))
    rss_mean = sum(rss) // max(1, len(rss))
    out = {
        "system": "rtpengine",
        "calls": a.calls,
        "seconds": a.seconds,
        "nproc": nproc,
        "cpu_model": model,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "recording_method": a.recording_method,
        "processes": "rtpengine" + (" + rtpengine-recording" if a.rec_pid else ""),
        "signalling_s": round(signalling_s, 2),
        "calls_up_in_window": up,
        "window_s": round(window_s, 2),
        "loadavg_1m_at_window_end": round(load, 2),
        "cpu_us": cpu,
        "cpu_us_rtpengine": (cpu1[0] or 0) - (cpu0[0] or 0),
        "cpu_us_per_call_s": round(cpu / (up * window_s)) if up else None,
        "rss_idle_kib": rss_idle,
        "rss_window_kib": rss_mean,
        "rss_window_max_kib": max(rss) if rss else 0,
        "rss_peak_kib": sum(status_kib(p, "VmHWM") or 0 for p in pids),
        "rss_per_call_kib": round((rss_mean - rss_idle) / up, 1) if up else None,
        "recording_files": files,
        "recording_bytes": nbytes,
        "generator": {
            "sent": gt["sent"], "received": gt["received"], "lost": gt["lost"],
            "late": gt["late"], "send_dropped": gt["send_dropped"],
            "silent_streams": gt["silent_streams"],
            "cpu_us_window": (phones_cpu1 - phones_cpu0)
            if phones_cpu0 is not None and phones_cpu1 is not None else None,
        },
    }
    line = json.dumps(out, sort_keys=True)
    print(line)
    if a.out:
        with open(a.out, "a") as f:
            f.write(line + "\n")
    print("rtpengine (%s), %d calls, %.1f s window on %d cores (%s):\n"
          "  up during the window %d; recording files %d (%d bytes)\n"
          "  CPU %s us per call-second, RSS %s KiB per call (idle %d KiB, window %d KiB)\n"
          "  generator: sent %d, received %d, lost %d (relay loss), late %d"
          % (out["processes"], a.calls, window_s, nproc, model, up, files, nbytes,
             out["cpu_us_per_call_s"], out["rss_per_call_kib"], rss_idle, rss_mean,
             gt["sent"], gt["received"], gt["lost"], gt["late"]), file=sys.stderr)


if __name__ == "__main__":
    main()
